import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import S3rver from 's3rver';
import { startFauxqs, type FauxqsServer } from 'fauxqs';
import { Redis } from 'ioredis';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { startRedis, type Service } from '../../src/local/services.ts';
import { freePort } from '../../src/local/processes.ts';
import { provisionResources, stackEnv } from '../../src/local/stack.ts';
import { createSqsClient } from '../../src/queue/sqs.ts';
import { startController, type RunningController } from '../../src/controller/main.ts';
import { fromRedis, type ResultBus } from '../../src/bus/resultBus.ts';
import type { RunResult } from '../../src/contracts/result.ts';
import { silentLogger } from '../fakes/log.ts';
import { upload, run, leftoverContainers } from './helpers.ts';
import { spawnWorker, type WorkerProcess } from './processes.ts';

/**
 * Fault injection against the real stack: the worker is a separate process (so it can be killed),
 * and Redis and the S3 server can be stopped and started again on the same port and data.
 */
describe('results are never lost', () => {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'ng-faults-'));
  const tag = randomBytes(4).toString('hex');
  const workerId = `faults-${tag}`;
  let redisPort: number;
  let redis: Service;
  let s3Port: number;
  let s3: S3rver;
  let fauxqs: FauxqsServer;
  let config: Config;
  let controller: RunningController;
  let worker: WorkerProcess;
  let probe: Redis;
  let probeSub: Redis;
  let bus: ResultBus;

  const startS3 = async () => {
    s3 = new S3rver({ port: s3Port, address: '127.0.0.1', directory: path.join(stateDir, 's3'), silent: true });
    await s3.run();
  };
  const workerEnv = () => ({
    ...stackEnv(config),
    NANOGRID_WORKER_ID: workerId,
    NANOGRID_WORKER_CONCURRENCY: '4',
    NANOGRID_WORKER_JOB_LOCK_MS: '4000',
    NANOGRID_WORKER_STAGE_BACKOFF_MS: '300',
    NANOGRID_WORKER_CALLBACK_BACKOFF_MS: '200',
    NANOGRID_WORKER_SHUTDOWN_GRACE_MS: '20000',
  });
  const startWorkerProcess = async () => {
    worker = spawnWorker(workerEnv());
    await worker.waitForLine((l) => l.msg === 'worker started', 60_000);
  };
  const ofRun = (requestId: string, msg: string) => (l: Record<string, unknown>) => l.requestId === requestId && l.msg === msg;
  const streamLength = (requestId: string) => probe.xlen(`${config.results.prefix}${requestId}`);
  const finalResult = async (requestId: string, timeoutMs = 60_000): Promise<RunResult> => {
    const result = await bus.read(requestId, timeoutMs);
    assert.ok(result, `no result for ${requestId} within ${timeoutMs} ms`);
    return result;
  };

  before(async () => {
    redisPort = await freePort();
    redis = await startRedis(stateDir, silentLogger, redisPort);
    s3Port = await freePort();
    await startS3();
    fauxqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
    config = loadConfig({
      ...process.env,
      NANOGRID_STATE_DIR: stateDir,
      REDIS_URL: redis.url,
      NANOGRID_REDIS_KEY_PREFIX: `f${tag}`,
      AWS_ENDPOINT_URL: `http://127.0.0.1:${s3Port}`,
      AWS_ENDPOINT_URL_SQS: fauxqs.address,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      NANOGRID_QUEUE_NAME: `faults-${tag}`,
      NANOGRID_QUEUE_DEAD_LETTER_NAME: `faults-${tag}-dlq`,
      NANOGRID_QUEUE_VISIBILITY_TIMEOUT_SECONDS: '5',
      NANOGRID_CONTROLLER_PORT: '0',
      NANOGRID_CONTROLLER_WAIT_BUDGET_MS: '1000',
    });
    await provisionResources(config);
    probe = new Redis(redis.url, { maxRetriesPerRequest: null });
    probeSub = new Redis(redis.url, { maxRetriesPerRequest: null });
    // The Redis restart test drops these connections on purpose; they reconnect by themselves.
    for (const c of [probe, probeSub]) c.on('error', () => undefined);
    bus = fromRedis(probe, probeSub, config.results);
    controller = await startController(config, silentLogger);
    await startWorkerProcess();
  });

  after(async () => {
    worker.child.kill('SIGTERM');
    await worker.exited;
    await controller.stop();
    probe.disconnect();
    probeSub.disconnect();
    await fauxqs.stop();
    await s3.close();
    await redis.stop();
    rmSync(stateDir, { recursive: true, force: true });
    assert.deepEqual(await leftoverContainers(workerId), [], 'no container outlives the worker');
  });

  /** The run message the controller would send, for a function uploaded through the API. */
  async function messageFor(functionId: string, requestId: string) {
    const fn = (await (await fetch(`${controller.url}/functions/${functionId}`)).json()) as { versions: { version: number; codeKey: string; sha256: string }[] };
    const v = fn.versions[0];
    assert.ok(v);
    return { requestId, functionId, version: v.version, runtime: 'python', s3Bucket: config.storage.codeBucket, s3Key: v.codeKey, sha256: v.sha256, timeoutMs: 10_000, memoryMb: 128, inputData: {} };
  }

  it('runs a message delivered twice once, and publishes one result', async () => {
    const { body: fn } = await upload(controller.url, { 'main.py': 'import time\nprint("ran")\ntime.sleep(0.5)\n' });
    const requestId = crypto.randomUUID();
    const body = JSON.stringify(await messageFor(fn.functionId, requestId));
    const sqs = createSqsClient(config.aws);
    await sqs.send(new SendMessageCommand({ QueueUrl: config.queue.url, MessageBody: body }));
    await sqs.send(new SendMessageCommand({ QueueUrl: config.queue.url, MessageBody: body }));
    assert.equal((await finalResult(requestId)).stdout, 'ran\n');
    // A third delivery, after the result, is recognised and deleted without running.
    await sqs.send(new SendMessageCommand({ QueueUrl: config.queue.url, MessageBody: body }));
    await worker.waitForLine(ofRun(requestId, 'duplicate delivery of a finished run; deleting the message'), 20_000);
    sqs.destroy();
    assert.equal(await streamLength(requestId), 1);
    assert.equal(worker.lines.filter(ofRun(requestId, 'code ran')).length, 1, 'the code ran once');
  });

  it('answers a malformed message with ERROR when it names a request, else moves it to the dead-letter queue', async () => {
    const sqs = createSqsClient(config.aws);
    const requestId = crypto.randomUUID();
    await sqs.send(new SendMessageCommand({ QueueUrl: config.queue.url, MessageBody: JSON.stringify({ requestId, functionId: 'fn-x', runtime: 'cobol' }) }));
    const answered = await finalResult(requestId, 20_000);
    assert.equal(answered.status, 'ERROR');
    assert.match(answered.message ?? '', /the run message is invalid/);

    await sqs.send(new SendMessageCommand({ QueueUrl: config.queue.url, MessageBody: 'this is { not json' }));
    await worker.waitForLine((l) => l.msg === 'poison message moved to the dead-letter queue', 20_000);
    const dead = await sqs.send(new ReceiveMessageCommand({ QueueUrl: config.queue.deadLetterUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2 }));
    assert.deepEqual(dead.Messages?.map((m) => m.Body), ['this is { not json']);
    sqs.destroy();
  });

  it('delivers the result to a callback receiver that fails twice, then succeeds', async () => {
    const hits: { status: number; body: RunResult }[] = [];
    let third!: () => void;
    const gotThird = new Promise<void>((resolve) => (third = resolve));
    const receiver: Server = createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        const status = hits.length < 2 ? 500 : 200;
        hits.push({ status, body: JSON.parse(data) as RunResult });
        res.writeHead(status).end();
        if (hits.length === 3) third();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const callbackUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    try {
      const { body: fn } = await upload(controller.url, { 'main.py': 'print("called back")\n' });
      const res = await run(controller.url, { functionId: fn.functionId, async: true, callbackUrl });
      assert.equal(res.status, 202);
      await gotThird;
      await worker.waitForLine(ofRun(res.body.requestId, 'callback delivered'), 10_000);
      assert.deepEqual(hits.map((h) => h.status), [500, 500, 200]);
      assert.equal(hits[2]?.body.requestId, res.body.requestId);
      assert.equal(hits[2]?.body.stdout, 'called back\n');
    } finally {
      receiver.close();
    }
  });

  it('refuses a callbackUrl that is not an http(s) URL', async () => {
    const { body: fn } = await upload(controller.url, { 'main.py': 'print(1)\n' });
    const res = await run(controller.url, { functionId: fn.functionId, callbackUrl: 'file:///etc/passwd' });
    assert.equal(res.status, 400);
    assert.match(res.body.error?.message ?? '', /callbackUrl/);
  });

  it('finishes a run whose S3 server went away during bind-outputs and came back', async () => {
    const code = 'import os, time\nos.makedirs("output", exist_ok=True)\nopen("output/kept.txt", "w").write("survived")\ntime.sleep(1)\n';
    const { body: fn } = await upload(controller.url, { 'main.py': code });
    const res = await run(controller.url, { functionId: fn.functionId, async: true });
    const requestId = res.body.requestId;
    await worker.waitForLine(ofRun(requestId, 'code ready'), 20_000);
    await s3.close();
    await worker.waitForLine((l) => l.requestId === requestId && l.stage === 'bind-outputs' && l.msg === 'stage failed; will retry with backoff', 30_000);
    await startS3();
    const result = await finalResult(requestId);
    assert.equal(result.status, 'SUCCESS');
    assert.equal(await (await fetch(result.outputFiles[0] ?? '')).text(), 'survived');
  });

  it('publishes ERROR with the reason when S3 stays away past the last attempt: the caller never waits forever', async () => {
    const code = 'import os\nos.makedirs("output", exist_ok=True)\nopen("output/lost.txt", "w").write("x")\n';
    const { body: fn } = await upload(controller.url, { 'main.py': code });
    const res = await run(controller.url, { functionId: fn.functionId, async: true });
    const requestId = res.body.requestId;
    await worker.waitForLine(ofRun(requestId, 'code ready'), 20_000);
    await s3.close();
    try {
      const result = await finalResult(requestId, 60_000);
      assert.equal(result.status, 'ERROR');
      assert.match(result.message ?? '', /ECONNREFUSED|connect|socket|fetch/i, result.message);
      const attempts = worker.lines.filter((l) => l.requestId === requestId && l.stage === 'bind-outputs' && l.msg === 'stage failed; will retry with backoff');
      assert.equal(attempts.length, 4, 'retried with backoff before giving up (5 attempts)');
    } finally {
      await startS3();
    }
  });

  it('finishes runs in flight across a Redis restart', async () => {
    const { body: fn } = await upload(controller.url, { 'main.py': 'import time\ntime.sleep(1.5)\nprint("after the restart")\n' });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await run(controller.url, { functionId: fn.functionId, async: true })).body.requestId);
    await worker.waitForLine((l) => ids.includes(String(l.requestId)) && l.msg === 'code ready', 20_000);
    await redis.stop();
    redis = await startRedis(stateDir, silentLogger, redisPort);
    const results = await Promise.all(ids.map((id) => finalResult(id, 90_000)));
    assert.deepEqual(results.map((r) => r.status), ids.map(() => 'SUCCESS'));
    for (const id of ids) assert.equal(await streamLength(id), 1);
  });

  it('gives every one of 20 runs exactly one result when the worker is SIGKILLed mid-run', async () => {
    const { body: fn } = await upload(controller.url, { 'main.py': 'import time\ntime.sleep(1)\nprint("done")\n' });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await run(controller.url, { functionId: fn.functionId, async: true })).body.requestId);
    await worker.waitForLine((l) => ids.includes(String(l.requestId)) && l.msg === 'code ready', 20_000);
    worker.child.kill('SIGKILL');
    await worker.exited;
    await startWorkerProcess();
    const results = await Promise.all(ids.map((id) => finalResult(id, 120_000)));
    assert.deepEqual(results.map((r) => r.status), ids.map(() => 'SUCCESS'));
    for (const id of ids) assert.equal(await streamLength(id), 1, `one result for ${id}`);
  });

  it('on SIGTERM stops taking work, lets the run in flight finish, and exits 0', async () => {
    const { body: fn } = await upload(controller.url, { 'main.py': 'import time\ntime.sleep(1.5)\nprint("finished during shutdown")\n' });
    const res = await run(controller.url, { functionId: fn.functionId, async: true });
    await worker.waitForLine(ofRun(res.body.requestId, 'code ready'), 20_000);
    worker.child.kill('SIGTERM');
    const result = await finalResult(res.body.requestId, 30_000);
    assert.equal(result.status, 'SUCCESS');
    assert.equal(result.stdout, 'finished during shutdown\n');
    assert.equal(await worker.exited, 0);
    await startWorkerProcess();
  });
});
