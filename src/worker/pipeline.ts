import { Queue, Worker, UnrecoverableError, type Job, type ConnectionOptions } from 'bullmq';
import { existsSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { RunMessage } from '../contracts/runMessage.ts';
import { errorResult, type RunResult } from '../contracts/result.ts';
import type { Logger } from '../log.ts';
import { isPermanent, PermanentRunError } from '../errors.ts';
import { fetchCode, type FetchCodeDeps } from './stages/fetchCode.ts';
import { execute, type ExecuteOutput } from './stages/execute.ts';
import { bindOutputs } from './stages/bindOutputs.ts';
import { publish } from './stages/publish.ts';
import { buildResult } from './result.ts';
import type { Sandbox } from '../sandbox/ports.ts';
import type { ResultBus } from '../bus/resultBus.ts';
import type { CodeStore, OutputStore } from '../storage/ports.ts';
import type { RunStateStore } from '../bus/runState.ts';
import type { RunDirs } from './runDirs.ts';
import type { Callbacks } from './callbacks.ts';

export const STAGES = ['fetch-code', 'execute', 'bind-outputs', 'publish'] as const;
export type StageName = (typeof STAGES)[number];

/**
 * A run's stages share a workspace on one host, so each worker has its own four queues:
 * `{stage}@{workerId}`. The set `{prefix}:queues` lists them for the dashboard.
 */
export function queueName(stage: StageName, workerId: string): string {
  return `${stage}@${workerId}`;
}

export interface PipelineDeps {
  workerId: string;
  connection: ConnectionOptions;
  redis: Redis;
  keyPrefix: string;
  concurrency: number;
  log: Logger;
  codeStore: CodeStore;
  outputStore: OutputStore;
  sandbox: Sandbox;
  bus: ResultBus;
  runState: RunStateStore;
  runDirs: RunDirs;
  callbacks: Pick<Callbacks, 'enqueue'>;
  fetch: Pick<FetchCodeDeps, 'packageLimits' | 'cache'>;
  attempts: number;
  backoffMs: number;
  lockMs: number;
}

interface FetchJob { message: RunMessage }
interface ExecuteJob { message: RunMessage; codePath: string; codeSha256: string }
interface BindJob { message: RunMessage; outputDir: string; executed: ExecuteOutput }
interface PublishJob { result: RunResult; callbackUrl?: string }
type AnyJob = FetchJob | ExecuteJob | BindJob | PublishJob;

export interface Pipeline {
  /** Starts a run; a second call with the same requestId is a no-op while the first is known. */
  enqueue(message: RunMessage): Promise<void>;
  queues: Queue[];
  /** Calls back with the requestId each time this worker has put a run's result on the stream. */
  onPublished(listener: (requestId: string) => void): void;
  /** Stops taking jobs, waits for those in flight (each stage's own wait), closes queues. */
  close(): Promise<void>;
}

export async function startPipeline(deps: PipelineDeps): Promise<Pipeline> {
  const prefix = deps.keyPrefix;
  const queues = Object.fromEntries(
    STAGES.map((stage) => [stage, new Queue<AnyJob>(queueName(stage, deps.workerId), { connection: deps.connection, prefix })]),
  ) as Record<StageName, Queue<AnyJob>>;
  await deps.redis.sadd(`${prefix}:queues`, ...STAGES.map((s) => queueName(s, deps.workerId)));

  const jobOptions = {
    attempts: deps.attempts,
    backoff: { type: 'exponential', delay: deps.backoffMs },
    removeOnComplete: { age: 3600, count: 1000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
  const next = (stage: StageName, requestId: string, data: AnyJob) =>
    // jobId = requestId: a stage retried after a crash adds its successor at most once.
    queues[stage].add(stage, data, { ...jobOptions, jobId: requestId });

  const publishedListeners: ((requestId: string) => void)[] = [];
  const announce = (requestId: string) => {
    for (const l of publishedListeners) l(requestId);
  };

  const messageOf = (data: AnyJob): RunMessage | null => ('message' in data ? data.message : null);

  /**
   * The end of every run, finished or failed: the result on the stream (first one wins), the
   * in-process notice to ingress, the callback with the stored result (jobId = requestId keeps a
   * retried publish from calling back twice), the run state, and the run's output files gone.
   */
  async function settle(result: RunResult, callbackUrl: string | undefined, log: Logger, signal: AbortSignal): Promise<void> {
    const published = await publish(result, { log, signal, bus: deps.bus });
    announce(result.requestId);
    if (callbackUrl) await deps.callbacks.enqueue(callbackUrl, published.result);
    await deps.runState.finish(result.requestId);
    await deps.runDirs.destroy(result.requestId);
  }

  /** A stage before publish failed for good: the run ends with an ERROR result that says why. */
  async function failRun(message: RunMessage, err: Error, log: Logger): Promise<void> {
    const base = { requestId: message.requestId, functionId: message.functionId, version: message.version };
    await settle({ ...errorResult(base, err.message), workerId: deps.workerId }, message.callbackUrl, log, new AbortController().signal);
  }

  const exists = (job: ExecuteJob) => existsSync(job.codePath);

  const handlers: Record<StageName, (data: AnyJob, log: Logger, signal: AbortSignal) => Promise<void>> = {
    'fetch-code': async (data, log, signal) => {
      const { message } = data as FetchJob;
      const code = await fetchCode(message, { log, signal, codeStore: deps.codeStore, ...deps.fetch });
      await next('execute', message.requestId, { message, codePath: code.codePath, codeSha256: code.codeSha256 });
    },
    execute: async (data, log, signal) => {
      const { message } = data as ExecuteJob;
      // A job handed back after a restart may find its cached code evicted: fetch it again.
      const code = exists(data as ExecuteJob) ? (data as ExecuteJob) : await fetchCode(message, { log, signal, codeStore: deps.codeStore, ...deps.fetch });
      // Fresh for every attempt: nothing of a failed attempt's output may be bound.
      const outputDir = await deps.runDirs.create(message.requestId);
      const executed = await execute({ message, codePath: code.codePath, codeSha256: code.codeSha256, outputDir }, { log, signal, sandbox: deps.sandbox });
      await next('bind-outputs', message.requestId, { message, outputDir, executed });
    },
    'bind-outputs': async (data, log, signal) => {
      const { message, outputDir, executed } = data as BindJob;
      if (executed.report.outputs.files.length > 0 && !(await deps.runDirs.find(message.requestId))) {
        throw new PermanentRunError('the run finished but its output files were lost with its worker, so they cannot be bound; run it again');
      }
      const { outputFiles } = await bindOutputs({ requestId: message.requestId, outputDir, files: executed.report.outputs.files }, { log, signal, outputStore: deps.outputStore });
      const result = buildResult(message, executed.status, executed.report, outputFiles, deps.workerId);
      await next('publish', message.requestId, { result, ...(message.callbackUrl ? { callbackUrl: message.callbackUrl } : {}) });
    },
    publish: async (data, log, signal) => {
      const { result, callbackUrl } = data as PublishJob;
      await settle(result, callbackUrl, log, signal);
    },
  };

  const workers = STAGES.map((stage) => {
    const worker = new Worker<AnyJob>(
      queueName(stage, deps.workerId),
      async (job: Job<AnyJob>, _token?: string, signal?: AbortSignal) => {
        const message = messageOf(job.data);
        const result = 'result' in job.data ? job.data.result : null;
        const requestId = message?.requestId ?? result?.requestId;
        const functionId = message?.functionId ?? result?.functionId;
        const log = deps.log.child({ requestId, functionId, stage, attempt: job.attemptsMade + 1 });
        const abort = signal ?? new AbortController().signal;
        if (requestId) await deps.runState.stage(requestId, stage);
        try {
          await handlers[stage](job.data, log, abort);
        } catch (err) {
          const error = err instanceof Error ? err : new Error(String(err));
          const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
          // The code's own failures never get here (they are results); this is the platform failing.
          // A publish that keeps failing stays failed in its queue: the SQS message is then redelivered.
          if (message && stage !== 'publish' && (isPermanent(error) || lastAttempt)) {
            log.error({ err: error, permanent: isPermanent(error) }, 'stage failed for good; publishing an ERROR result');
            await failRun(message, error, log);
            throw new UnrecoverableError(error.message);
          }
          log.warn({ err: error }, 'stage failed; will retry with backoff');
          throw error;
        }
      },
      { connection: deps.connection, prefix, concurrency: deps.concurrency, lockDuration: deps.lockMs, stalledInterval: Math.max(1000, Math.floor(deps.lockMs / 2)) },
    );
    worker.on('error', (err) => deps.log.error({ err, stage }, 'stage worker error'));
    return worker;
  });

  return {
    queues: Object.values(queues) as Queue[],
    onPublished(listener) {
      publishedListeners.push(listener);
    },
    async enqueue(message) {
      await deps.runState.queued(message);
      await next('fetch-code', message.requestId, { message });
    },
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(Object.values(queues).map((q) => q.close()));
    },
  };
}
