import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig, redactConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createLogger, type Logger } from '../log.ts';
import { connectRedis } from '../redis.ts';
import { fromRedis } from '../bus/resultBus.ts';
import { fromRedisRunState } from '../bus/runState.ts';
import { fromRedisIdempotency } from '../bus/idempotency.ts';
import { checkWorkersDocker } from '../bus/heartbeat.ts';
import { fromRedisFunctions } from '../catalogue/functions.ts';
import { createS3Client, fromS3Code, fromS3Outputs } from '../storage/s3.ts';
import { createSqsClient, fromSqs, resolveQueueUrl } from '../queue/sqs.ts';
import { createApp } from './app.ts';
import { createDashboard } from './dashboard.ts';

export interface RunningController {
  url: string;
  stop(): Promise<void>;
}

/** Wires the controller from config: the only place on this side that chooses adapters. */
export async function startController(config: Config, log: Logger): Promise<RunningController> {
  const redisUrl = config.redis.url || 'redis://127.0.0.1:6379';
  const redis = connectRedis(redisUrl, 'controller', log, { autoPipeline: true });
  const subscriber = connectRedis(redisUrl, 'controller-sub', log);
  const s3 = createS3Client(config.aws);
  const sqs = createSqsClient(config.aws);
  const queueUrl = await resolveQueueUrl(sqs, config.queue);
  const codeStore = fromS3Code(s3, config.storage);
  const outputs = fromS3Outputs(s3, config.storage);
  const queue = fromSqs(sqs, queueUrl);
  const prefix = config.redis.keyPrefix;
  const dashboard = createDashboard(redis, prefix);
  const app = createApp(
    {
      log,
      limits: { ...config.runs, waitBudgetMs: config.controller.waitBudgetMs, maxUploadBytes: config.controller.maxUploadBytes, publicUrl: config.controller.publicUrl },
      packageLimits: config.packages,
      codeBucket: config.storage.codeBucket,
      functions: fromRedisFunctions(redis, { keyPrefix: prefix }),
      codeStore,
      queue,
      bus: fromRedis(redis, subscriber, config.results),
      runState: fromRedisRunState(redis, { keyPrefix: prefix, ttlSeconds: config.results.ttlSeconds }),
      idempotency: fromRedisIdempotency(redis, { keyPrefix: prefix, ttlSeconds: config.results.ttlSeconds }),
      checks: {
        redis: async () => void (await redis.ping()),
        sqs: () => queue.ping(),
        s3: async () => {
          await codeStore.ping();
          await outputs.ping();
        },
        docker: () => checkWorkersDocker(redis, prefix),
      },
    },
    [dashboard.middleware],
  );
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(config.controller.port, config.controller.host, () => resolve(s));
  });
  // A sync run may wait its whole budget; keep sockets open past it.
  server.requestTimeout = config.controller.waitBudgetMs + 30_000;
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.controller.host}:${port}`;
  log.info({ url, queueUrl }, 'controller listening');
  return {
    url,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await dashboard.close();
      subscriber.disconnect();
      redis.disconnect();
      s3.destroy();
      sqs.destroy();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'controller');
  log.info({ config: redactConfig(config) }, 'configuration');
  const controller = await startController(config, log);
  const stop = () => void controller.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
