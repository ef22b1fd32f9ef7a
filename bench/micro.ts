/**
 * `npm run bench:micro`: the fixed costs under a warm run, measured alone — a chain of four BullMQ
 * jobs (the four stages with empty bodies) and the three SQS calls of a run through the AWS SDK.
 * Prints CPU per unit; see README "Where the milliseconds go".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startFauxqs } from 'fauxqs';
import { CreateQueueCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startRedis } from '../src/local/services.ts';

const N = 300;
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

async function bullmqChain(): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ng-micro-'));
  const redis = await startRedis(dir, pino({ level: 'silent' }));
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  const names = ['fetch-code', 'execute', 'bind-outputs', 'publish'];
  const queues = names.map((n) => new Queue(n, { connection }));
  const opts = { removeOnComplete: { age: 3600, count: 1000 }, attempts: 5, backoff: { type: 'exponential', delay: 500 } };
  let finished: (() => void) | null = null;
  const workers = names.map(
    (n, i) =>
      new Worker(
        n,
        async (job) => {
          const next = queues[i + 1];
          if (next) await next.add(names[i + 1] as string, job.data, { ...opts, jobId: job.id });
          else finished?.();
        },
        { connection, concurrency: 16 },
      ),
  );
  await new Promise((r) => setTimeout(r, 500));
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    await new Promise<void>((resolve) => {
      finished = resolve;
      void queues[0]?.add(names[0] as string, { requestId: `r${i}` }, { ...opts, jobId: `r${i}` });
    });
  }
  const line = `BullMQ, four chained stage jobs: ${(cpuMs(process.cpuUsage(cpu)) / N).toFixed(2)} ms CPU, ${((performance.now() - started) / N).toFixed(2)} ms wall per run`;
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all(queues.map((q) => q.close()));
  connection.disconnect();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
  return line;
}

async function sqsCalls(): Promise<string> {
  const fauxqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  const sqs = new SQSClient({ endpoint: fauxqs.address, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const QueueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'micro' }))).QueueUrl as string;
  const MessageBody = JSON.stringify({ requestId: crypto.randomUUID(), functionId: 'fn', version: 1, runtime: 'python', s3Bucket: 'b', s3Key: 'k', timeoutMs: 1000, memoryMb: 128, inputData: {} });
  const spent = { send: 0, receive: 0, delete: 0 };
  for (let i = 0; i < N; i++) {
    let cpu = process.cpuUsage();
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody }));
    spent.send += cpuMs(process.cpuUsage(cpu));
    cpu = process.cpuUsage();
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1 }));
    spent.receive += cpuMs(process.cpuUsage(cpu));
    cpu = process.cpuUsage();
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl, Entries: [{ Id: '0', ReceiptHandle: got.Messages?.[0]?.ReceiptHandle as string }] }));
    spent.delete += cpuMs(process.cpuUsage(cpu));
  }
  await fauxqs.stop();
  sqs.destroy();
  const per = (ms: number) => (ms / N).toFixed(2);
  return `AWS SDK v3 + in-process fauxqs, per call: SendMessage ${per(spent.send)} ms, ReceiveMessage ${per(spent.receive)} ms, DeleteMessageBatch ${per(spent.delete)} ms CPU (the emulator's share included)`;
}

console.log(await bullmqChain());
console.log(await sqsCalls());
process.exit(0);
