import os from 'node:os';
import path from 'node:path';
import { mkdir, readdir, rm } from 'node:fs/promises';
import Docker from 'dockerode';
import { loadConfig, redactConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createLogger, type Logger } from '../log.ts';
import { connectRedis } from '../redis.ts';
import { fromRedis } from '../bus/resultBus.ts';
import { fromRedisRunState } from '../bus/runState.ts';
import { createS3Client, fromS3Code, fromS3Outputs } from '../storage/s3.ts';
import { createSqsClient, resolveQueueUrl } from '../queue/sqs.ts';
import { fromDocker } from '../sandbox/docker.ts';
import { DEFAULT_PACKAGE_LIMITS } from '../packages/inspect.ts';
import { startPipeline } from './pipeline.ts';
import { createIngress } from './ingress.ts';
import { startHeartbeat } from '../bus/heartbeat.ts';

export interface RunningWorker {
  workerId: string;
  /** Stop taking messages, let runs in flight finish (capped by the grace), close everything. */
  stop(): Promise<void>;
}

const NOBODY = 65534;

/** Wires a worker from config: the only place on the worker side that chooses adapters. */
export async function startWorker(config: Config, log: Logger): Promise<RunningWorker> {
  const workerId = config.worker.id || os.hostname();
  const wlog = log.child({ workerId });
  const redisUrl = config.redis.url || 'redis://127.0.0.1:6379';
  const redis = connectRedis(redisUrl, `worker:${workerId}`);
  const subscriber = connectRedis(redisUrl, `worker-sub:${workerId}`);
  const bus = fromRedis(redis, subscriber, config.results);
  const s3 = createS3Client(config.aws);
  const sqs = createSqsClient(config.aws);
  const queueUrl = await resolveQueueUrl(sqs, config.queue);
  const docker = new Docker({ socketPath: config.worker.dockerSocket });
  const sandbox = fromDocker(docker, { workerId, ...config.worker });

  const removed = await sandbox.removeOrphans();
  if (removed > 0) wlog.warn({ removed }, 'removed containers left behind by an earlier run of this worker');
  const workRoot = path.join(config.stateDir, 'work', workerId);
  await mkdir(workRoot, { recursive: true });
  for (const stale of await readdir(workRoot)) await rm(path.join(workRoot, stale), { recursive: true, force: true });

  const pipeline = await startPipeline({
    workerId,
    connection: redis,
    redis,
    keyPrefix: config.redis.keyPrefix,
    concurrency: config.worker.concurrency,
    log: wlog,
    codeStore: fromS3Code(s3, config.storage),
    outputStore: fromS3Outputs(s3, config.storage),
    sandbox,
    bus,
    runState: fromRedisRunState(redis, { keyPrefix: config.redis.keyPrefix, ttlSeconds: config.results.ttlSeconds }),
    workRoot,
    fetch: { packageLimits: DEFAULT_PACKAGE_LIMITS, sandboxUid: NOBODY },
    outputLimits: { maxFiles: 100, maxTotalBytes: 1024 * 1024 * 1024 },
    attempts: 3,
  });
  const ingress = createIngress({
    sqs,
    queueUrl,
    pipeline,
    bus,
    log: wlog,
    concurrency: config.worker.concurrency,
    visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
    workerId,
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
      await bus.close();
      subscriber.disconnect();
      redis.disconnect();
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
