import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import type { RunResult } from '../contracts/result.ts';
import type { Logger } from '../log.ts';

/** Delivers final results to the caller's `callbackUrl`, retried with backoff; never blocks a run. */
export interface Callbacks {
  enqueue(url: string, result: RunResult): Promise<void>;
  queue: Queue;
  close(): Promise<void>;
}

export interface CallbackConfig {
  connection: ConnectionOptions;
  prefix: string;
  workerId: string;
  log: Logger;
  attempts: number;
  backoffMs: number;
  timeoutMs: number;
}

interface CallbackJob {
  url: string;
  result: RunResult;
}

export async function startCallbacks(config: CallbackConfig): Promise<Callbacks> {
  const name = `callback@${config.workerId}`;
  const queue = new Queue<CallbackJob>(name, { connection: config.connection, prefix: config.prefix });
  const worker = new Worker<CallbackJob>(
    name,
    async (job) => {
      const { url, result } = job.data;
      const log = config.log.child({ requestId: result.requestId, functionId: result.functionId, attempt: job.attemptsMade + 1 });
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-nanogrid-request-id': result.requestId },
        body: JSON.stringify(result),
        signal: AbortSignal.timeout(config.timeoutMs),
      }).catch((err: Error) => {
        throw new Error(`callback to ${url} failed: ${err.message}`);
      });
      if (!res.ok) throw new Error(`callback to ${url} answered ${res.status}`);
      log.info({ url, status: res.status }, 'callback delivered');
    },
    { connection: config.connection, prefix: config.prefix, concurrency: 8 },
  );
  worker.on('failed', (job, err) => {
    if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) config.log.error({ requestId: job.data.result.requestId, err: err.message }, 'callback given up after the last attempt');
  });
  worker.on('error', (err) => config.log.error({ err }, 'callback worker error'));
  return {
    queue,
    async enqueue(url, result) {
      await queue.add('callback', { url, result }, {
        jobId: result.requestId,
        attempts: config.attempts,
        backoff: { type: 'exponential', delay: config.backoffMs },
        removeOnComplete: { age: 3600 },
        removeOnFail: { age: 7 * 24 * 3600 },
      });
    },
    async close() {
      await worker.close();
      await queue.close();
    },
  };
}
