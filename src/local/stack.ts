import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { RUNTIME_NAMES, type RuntimeName } from '../contracts/runtimes.ts';
import { startController, type RunningController } from '../controller/main.ts';
import { startWorker, type RunningWorker } from '../worker/main.ts';
import { createS3Client, ensureBuckets } from '../storage/s3.ts';
import { createSqsClient, resolveQueueUrl } from '../queue/sqs.ts';
import { ensureDocker, startAwsEmulators, startRedis, type Service } from './services.ts';
import { ensureRuntimeImages } from './images.ts';
import type Docker from 'dockerode';

export interface LocalServices {
  /** The configuration with the started services' addresses and the queues' URLs filled in. */
  config: Config;
  docker: Docker;
  redisUrl: string;
  s3Url: string;
  sqsUrl: string;
  /** Stops, in reverse order, only what was started. */
  stop(): Promise<void>;
}

export interface LocalStack extends LocalServices {
  controller: RunningController;
  worker: RunningWorker;
}

export interface LocalStackOptions {
  runtimes?: RuntimeName[];
  /** Where built root filesystems are cached; defaults to the state directory. */
  imageCacheDir?: string;
}

/**
 * Creates the buckets and the run and dead-letter queues when missing, and writes the queues' URLs
 * into `config` (local stacks; in AWS they are provisioned beforehand).
 */
export async function provisionResources(config: Config): Promise<void> {
  const s3 = createS3Client(config.aws);
  await ensureBuckets(s3, [config.storage.codeBucket, config.storage.userDataBucket]);
  s3.destroy();
  const sqs = createSqsClient(config.aws);
  config.queue.url = await resolveQueueUrl(sqs, config.queue, true);
  config.queue.deadLetterUrl = await resolveQueueUrl(sqs, { ...config.queue, name: config.queue.deadLetterName, url: config.queue.deadLetterUrl }, true);
  sqs.destroy();
}

/**
 * What the platform runs on, on one machine: the Docker engine and runtime images, Redis, and the
 * S3 + SQS emulators, with buckets and queues provisioned. Uses what the config points at
 * (REDIS_URL, an AWS endpoint) and starts the rest.
 */
export async function startLocalServices(base: Config, log: Logger, options: LocalStackOptions = {}): Promise<LocalServices> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((err: Error) => log.warn({ err }, 'stop failed'));
  };
  try {
    const config: Config = structuredClone(base);
    const engine = await ensureDocker(config.worker.dockerSocket, config.stateDir, log);
    stops.push(engine.stop);
    await ensureRuntimeImages(engine.docker, options.runtimes ?? RUNTIME_NAMES, { stateDir: options.imageCacheDir ?? config.stateDir }, log);
    if (!config.redis.url) {
      const redis: Service = await startRedis(config.stateDir, log);
      stops.push(redis.stop);
      config.redis.url = redis.url;
    }
    if (!config.aws.endpoint) {
      const aws = await startAwsEmulators(config.stateDir, [config.storage.codeBucket, config.storage.userDataBucket], log);
      stops.push(aws.sqs.stop, aws.s3.stop);
      config.aws = { ...config.aws, endpoint: aws.s3.url, sqsEndpoint: aws.sqs.url, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true };
    }
    await provisionResources(config);
    return { config, docker: engine.docker, redisUrl: config.redis.url, s3Url: config.aws.endpoint, sqsUrl: config.aws.sqsEndpoint || config.aws.endpoint, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The whole platform on one machine: the local services, one worker and one controller, in this process. */
export async function startLocalStack(base: Config, log: Logger, options: LocalStackOptions = {}): Promise<LocalStack> {
  const services = await startLocalServices(base, log, options);
  const stops: (() => Promise<void>)[] = [services.stop];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((err: Error) => log.warn({ err }, 'stop failed'));
  };
  try {
    const worker = await startWorker(services.config, log.child({ component: 'worker' }));
    stops.push(() => worker.stop());
    const controller = await startController(services.config, log.child({ component: 'controller' }));
    stops.push(() => controller.stop());
    return { ...services, controller, worker, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The environment that points a separate controller or worker process at this stack. */
export function stackEnv(config: Config): Record<string, string> {
  return {
    NANOGRID_STATE_DIR: config.stateDir,
    REDIS_URL: config.redis.url,
    NANOGRID_REDIS_KEY_PREFIX: config.redis.keyPrefix,
    NANOGRID_RESULTS_PREFIX: config.results.prefix,
    AWS_REGION: config.aws.region,
    AWS_ENDPOINT_URL: config.aws.endpoint,
    AWS_ENDPOINT_URL_SQS: config.aws.sqsEndpoint,
    AWS_ACCESS_KEY_ID: config.aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: config.aws.secretAccessKey,
    SQS_QUEUE_URL: config.queue.url,
    NANOGRID_QUEUE_DEAD_LETTER_URL: config.queue.deadLetterUrl,
    NANOGRID_QUEUE_VISIBILITY_TIMEOUT_SECONDS: String(config.queue.visibilityTimeoutSeconds),
    NANOGRID_STORAGE_CODE_BUCKET: config.storage.codeBucket,
    NANOGRID_STORAGE_USER_DATA_BUCKET: config.storage.userDataBucket,
  };
}
