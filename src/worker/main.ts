import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { loadConfig, redactConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createLogger, type Logger } from '../log.ts';
import { connectRedis } from '../redis.ts';
import { fromRedis } from '../bus/resultBus.ts';
import { fromRedisRunState } from '../bus/runState.ts';
import { createS3Client, fromS3Code, fromS3Outputs } from '../storage/s3.ts';
import { createSqsClient, resolveQueueUrl, fromSqsDeadLetters } from '../queue/sqs.ts';
import { fromDocker } from '../sandbox/docker.ts';
import { startPipeline } from './pipeline.ts';
import { fetchCode } from './stages/fetchCode.ts';
import { sandboxSpec } from './stages/execute.ts';
import { createIngress } from './ingress.ts';
import { startHeartbeat } from '../bus/heartbeat.ts';
import { createWorkspaces } from '../sandbox/workspace.ts';
import { createRunDirs } from './runDirs.ts';
import { createCodeCache } from './codeCache.ts';
import { startCallbacks } from './callbacks.ts';

export interface RunningWorker {
  workerId: string;
  /** Stop taking messages, let runs in flight finish (capped by the grace), close everything. */
  stop(): Promise<void>;
}

const NOBODY = 65534;

/** Warm containers on a worker when the config does not say: one per 256 MB of memory, at most 64. */
function defaultWarmTotal(): number {
  return Math.max(1, Math.min(64, Math.floor(os.totalmem() / (256 * 1024 * 1024))));
}

/** Wires a worker from config: the only place on the worker side that chooses adapters. */
export async function startWorker(config: Config, log: Logger): Promise<RunningWorker> {
  const workerId = config.worker.id || os.hostname();
  const wlog = log.child({ workerId });
  const redisUrl = config.redis.url || 'redis://127.0.0.1:6379';
  const redis = connectRedis(redisUrl, `worker:${workerId}`, wlog);
  const commands = connectRedis(redisUrl, `worker-cmd:${workerId}`, wlog, { autoPipeline: true });
  // The worker only writes results (and peeks at them): it needs no subscriber connection.
  const bus = fromRedis(commands, null, config.results);
  const s3 = createS3Client(config.aws);
  const sqs = createSqsClient(config.aws);
  const queueUrl = await resolveQueueUrl(sqs, config.queue);
  const deadLetterUrl = await resolveQueueUrl(sqs, { ...config.queue, name: config.queue.deadLetterName, url: config.queue.deadLetterUrl });
  const docker = new Docker({ socketPath: config.worker.dockerSocket });
  const root = path.join(config.stateDir, 'work', workerId);
  const workspaces = await createWorkspaces({ root: path.join(root, 'containers'), sizeMb: config.worker.workspaceSizeMb, uid: NOBODY }, wlog);
  const sandbox = fromDocker(
    docker,
    {
      workerId,
      ...config.worker,
      sandboxUid: NOBODY,
      packageLimits: config.packages,
      outputLimits: { maxFiles: config.worker.maxOutputFiles, maxTotalBytes: config.worker.maxOutputBytes },
      pool: { perKey: config.warm.perFunction, total: config.warm.maxContainers || defaultWarmTotal(), idleMs: config.warm.idleTtlMs },
    },
    workspaces,
    wlog,
  );

  // Containers and their workspaces from an earlier life of this worker are of no use now.
  const removed = await sandbox.removeOrphans();
  const sweptWorkspaces = await workspaces.sweep();
  const runDirs = await createRunDirs(path.join(root, 'outputs'));
  // Output files of a run without a result belong to a job BullMQ will hand back to us.
  const sweptOutputs = await runDirs.sweep(async (requestId, ageMs) => ageMs < 24 * 3600_000 && !(await bus.peek(requestId).catch(() => null)));
  if (removed + sweptWorkspaces + sweptOutputs > 0) wlog.warn({ removed, sweptWorkspaces, sweptOutputs }, 'cleaned up after an earlier run of this worker');
  const codeStore = fromS3Code(s3, config.storage);
  const cache = await createCodeCache({ dir: path.join(config.stateDir, 'cache', 'code'), maxBytes: config.worker.codeCacheBytes });

  const callbacks = await startCallbacks({
    connection: redis,
    prefix: config.redis.keyPrefix,
    workerId,
    log: wlog,
    attempts: config.worker.callbackAttempts,
    backoffMs: config.worker.callbackBackoffMs,
    timeoutMs: 10_000,
  });
  await redis.sadd(`${config.redis.keyPrefix}:queues`, callbacks.queue.name);
  const pipeline = await startPipeline({
    workerId,
    connection: redis,
    redis,
    keyPrefix: config.redis.keyPrefix,
    concurrency: config.worker.concurrency,
    log: wlog,
    codeStore,
    outputStore: fromS3Outputs(s3, config.storage),
    sandbox,
    bus,
    runState: fromRedisRunState(commands, { keyPrefix: config.redis.keyPrefix, ttlSeconds: config.results.ttlSeconds }),
    runDirs,
    callbacks,
    fetch: { packageLimits: config.packages, cache },
    attempts: config.worker.stageAttempts,
    backoffMs: config.worker.stageBackoffMs,
    lockMs: config.worker.jobLockMs,
  });
  const ingress = createIngress({
    sqs,
    queueUrl,
    pipeline,
    bus,
    deadLetters: fromSqsDeadLetters(sqs, deadLetterUrl),
    log: wlog,
    concurrency: config.worker.concurrency,
    visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
    workerId,
    async prewarm(message) {
      const code = await fetchCode(message, { log: wlog, signal: new AbortController().signal, codeStore, cache, packageLimits: config.packages });
      return sandbox.prewarm(sandboxSpec({ message, codePath: code.codePath, codeSha256: code.codeSha256, outputDir: '' }));
    },
  });
  ingress.start();
  const stopBeat = startHeartbeat(redis, config.redis.keyPrefix, async () => {
    try {
      await sandbox.ping();
      return { workerId, dockerOk: true, inFlight: ingress.inFlight };
    } catch (err) {
      return { workerId, dockerOk: false, dockerError: (err as Error).message, inFlight: ingress.inFlight };
    }
  });
  wlog.info({ queueUrl, concurrency: config.worker.concurrency }, 'worker started');

  return {
    workerId,
    async stop() {
      wlog.info({ inFlight: ingress.inFlight }, 'worker stopping: no new messages, waiting for runs in flight');
      await ingress.stop(config.worker.shutdownGraceMs);
      await stopBeat();
      await pipeline.close();
      await sandbox.close();
      await callbacks.close();
      await bus.close();
      redis.disconnect();
      commands.disconnect();
      s3.destroy();
      sqs.destroy();
      wlog.info('worker stopped');
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'worker');
  log.info({ config: redactConfig(config) }, 'configuration');
  const worker = await startWorker(config, log);
  const stop = () => void worker.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
