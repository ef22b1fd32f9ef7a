import { Queue, Worker, UnrecoverableError, type Job, type ConnectionOptions } from 'bullmq';
import { rm } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import type { RunMessage } from '../contracts/runMessage.ts';
import { errorResult, type RunResult } from '../contracts/result.ts';
import type { Logger } from '../log.ts';
import { isPermanent } from '../errors.ts';
import { fetchCode, type FetchCodeDeps } from './stages/fetchCode.ts';
import { execute, type ExecuteOutput } from './stages/execute.ts';
import { bindOutputs, type BindOutputsDeps } from './stages/bindOutputs.ts';
import { publish } from './stages/publish.ts';
import { buildResult } from './result.ts';
import type { Sandbox } from '../sandbox/ports.ts';
import type { ResultBus } from '../bus/resultBus.ts';
import type { CodeStore, OutputStore } from '../storage/ports.ts';
import type { RunStateStore } from '../bus/runState.ts';

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
  workRoot: string;
  fetch: Pick<FetchCodeDeps, 'packageLimits' | 'sandboxUid'>;
  outputLimits: BindOutputsDeps['limits'];
  attempts: number;
}

interface FetchJob { message: RunMessage }
interface ExecuteJob { message: RunMessage; workspaceDir: string }
interface BindJob { message: RunMessage; workspaceDir: string; executed: ExecuteOutput }
interface PublishJob { result: RunResult; workspaceDir: string | null }
type AnyJob = FetchJob | ExecuteJob | BindJob | PublishJob;

export interface Pipeline {
  /** Starts a run; a second call with the same requestId is a no-op while the first is known. */
  enqueue(message: RunMessage): Promise<void>;
  queues: Queue[];
  /** Stops taking jobs, waits for those in flight (each stage's own wait), closes queues. */
  close(): Promise<void>;
}

const BACKOFF = { type: 'exponential', delay: 500 } as const;

export async function startPipeline(deps: PipelineDeps): Promise<Pipeline> {
  const prefix = deps.keyPrefix;
  const queues = Object.fromEntries(
    STAGES.map((stage) => [stage, new Queue<AnyJob>(queueName(stage, deps.workerId), { connection: deps.connection, prefix })]),
  ) as Record<StageName, Queue<AnyJob>>;
  await deps.redis.sadd(`${prefix}:queues`, ...STAGES.map((s) => queueName(s, deps.workerId)));

  const jobOptions = {
    attempts: deps.attempts,
    backoff: BACKOFF,
    removeOnComplete: { age: 3600, count: 1000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
  const next = (stage: StageName, requestId: string, data: AnyJob) =>
    // jobId = requestId: a stage retried after a crash adds its successor at most once.
    queues[stage].add(stage, data, { ...jobOptions, jobId: requestId });

  const messageOf = (data: AnyJob): RunMessage | null => ('message' in data ? data.message : null);

  async function failRun(data: AnyJob, err: Error, log: Logger): Promise<void> {
    const message = messageOf(data);
    const base = message
      ? { requestId: message.requestId, functionId: message.functionId, version: message.version }
      : { requestId: (data as PublishJob).result.requestId, functionId: (data as PublishJob).result.functionId };
    const result = { ...errorResult(base, err.message), workerId: deps.workerId };
    await publish(result, { log, signal: new AbortController().signal, bus: deps.bus });
    await deps.runState.finish(base.requestId);
    const workspaceDir = 'workspaceDir' in data ? data.workspaceDir : null;
    if (workspaceDir) await rm(workspaceDir, { recursive: true, force: true });
  }

  const handlers: Record<StageName, (data: AnyJob, log: Logger, signal: AbortSignal) => Promise<void>> = {
    'fetch-code': async (data, log, signal) => {
      const { message } = data as FetchJob;
      const out = await fetchCode(message, { log, signal, codeStore: deps.codeStore, workRoot: deps.workRoot, ...deps.fetch });
      await next('execute', message.requestId, { message, workspaceDir: out.workspaceDir });
    },
    execute: async (data, log, signal) => {
      const { message, workspaceDir } = data as ExecuteJob;
      const executed = await execute({ message, workspaceDir }, { log, signal, sandbox: deps.sandbox });
      await next('bind-outputs', message.requestId, { message, workspaceDir, executed });
    },
    'bind-outputs': async (data, log, signal) => {
      const { message, workspaceDir, executed } = data as BindJob;
      const outputs = await bindOutputs({ requestId: message.requestId, workspaceDir }, { log, signal, outputStore: deps.outputStore, limits: deps.outputLimits });
      const result = buildResult(message, executed.status, executed.report, outputs, deps.workerId);
      await next('publish', message.requestId, { result, workspaceDir });
    },
    publish: async (data, log, signal) => {
      const { result, workspaceDir } = data as PublishJob;
      await publish(result, { log, signal, bus: deps.bus });
      await deps.runState.finish(result.requestId);
      if (workspaceDir) await rm(workspaceDir, { recursive: true, force: true });
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
          if (stage !== 'publish' && (isPermanent(error) || lastAttempt)) {
            log.error({ err: error, permanent: isPermanent(error) }, 'stage failed for good; publishing an ERROR result');
            await failRun(job.data, error, log);
            throw new UnrecoverableError(error.message);
          }
          log.warn({ err: error }, 'stage failed; will retry with backoff');
          throw error;
        }
      },
      { connection: deps.connection, prefix, concurrency: deps.concurrency },
    );
    worker.on('error', (err) => deps.log.error({ err, stage }, 'stage worker error'));
    return worker;
  });

  return {
    queues: Object.values(queues) as Queue[],
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
