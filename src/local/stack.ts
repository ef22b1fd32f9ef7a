import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { RUNTIME_NAMES, type RuntimeName } from '../contracts/runtimes.ts';
import { startController, type RunningController } from '../controller/main.ts';
import { startWorker, type RunningWorker } from '../worker/main.ts';
import { createS3Client, ensureBuckets } from '../storage/s3.ts';
import { createSqsClient, resolveQueueUrl } from '../queue/sqs.ts';
import { ensureDocker, startAwsEmulators, startRedis, type Service } from './services.ts';
import { ensureRuntimeImages } from './images.ts';

export interface LocalStack {
  config: Config;
  controller: RunningController;
  worker: RunningWorker | null;
  redisUrl: string;
  s3Url: string;
  sqsUrl: string;
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  runtimes?: RuntimeName[];
  /** Where built root filesystems are cached; defaults to the state directory. */
  imageCacheDir?: string;
  /** Start the worker in this process (default); false leaves it to the caller (e.g. a child process). */
  worker?: boolean;
}

/**
 * The whole platform on one machine: Redis, S3 + SQS emulators, the Docker engine and runtime
 * images, one controller and one worker. Uses what the config points at (REDIS_URL, an AWS
 * endpoint) and starts the rest. Stops, in reverse order, only what it started.
 */
export async function startLocalStack(base: Config, log: Logger, options: LocalStackOptions = {}): Promise<LocalStack> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: Error) => log.warn({ err }, 'stop failed'));
  };
  try {
    const config: Config = structuredClone(base);
    const docker = await ensureDocker(config.worker.dockerSocket, config.stateDir, log);
    stops.push(docker.stop);
    await ensureRuntimeImages(docker.docker, options.runtimes ?? RUNTIME_NAMES, { stateDir: options.imageCacheDir ?? config.stateDir }, log);

    if (!config.redis.url) {
      const redis: Service = await startRedis(config.stateDir, log);
      stops.push(redis.stop);
      config.redis.url = redis.url;
    }
    let s3Url = config.aws.endpoint;
    let sqsUrl = config.aws.sqsEndpoint || config.aws.endpoint;
    if (!config.aws.endpoint) {
      const aws = await startAwsEmulators(config.stateDir, [config.storage.codeBucket, config.storage.userDataBucket], log);
      stops.push(aws.sqs.stop, aws.s3.stop);
      config.aws = { ...config.aws, endpoint: aws.s3.url, sqsEndpoint: aws.sqs.url, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true };
      s3Url = aws.s3.url;
      sqsUrl = aws.sqs.url;
    }
    const s3 = createS3Client(config.aws);
    await ensureBuckets(s3, [config.storage.codeBucket, config.storage.userDataBucket]);
    s3.destroy();
    const sqs = createSqsClient(config.aws);
    config.queue.url = await resolveQueueUrl(sqs, config.queue, true);
    config.queue.deadLetterUrl = await resolveQueueUrl(sqs, { ...config.queue, name: config.queue.deadLetterName, url: config.queue.deadLetterUrl }, true);
    sqs.destroy();

    const worker = options.worker === false ? null : await startWorker(config, log.child({ component: 'worker' }));
    if (worker) stops.push(() => worker.stop());
    const controller = await startController(config, log.child({ component: 'controller' }));
    stops.push(() => controller.stop());
    return { config, controller, worker, redisUrl: config.redis.url, s3Url, sqsUrl, stop: stopAll };
  } catch (err) {
    await stopAll();
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
