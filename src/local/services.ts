import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import S3rver from 's3rver';
import { startFauxqs } from 'fauxqs';
import type { Logger } from '../log.ts';
import { freePort, requireBinary, startDaemon, stopChild, waitFor, which, MissingDependencyError } from './processes.ts';

export interface Service {
  url: string;
  stop(): Promise<void>;
}

/** redis-server as a child, data (append-only file) under stateDir/redis. */
export async function startRedis(stateDir: string, log: Logger, fixedPort?: number): Promise<Service> {
  const binary = requireBinary('redis-server', 'redis-server', log);
  const dir = path.join(stateDir, 'redis');
  await mkdir(dir, { recursive: true });
  const port = fixedPort ?? (await freePort());
  const logFile = path.join(dir, 'redis.log');
  const child = startDaemon(binary, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', '', '--daemonize', 'no', '--protected-mode', 'yes'], logFile);
  const url = `redis://127.0.0.1:${port}`;
  await waitFor('redis-server', async () => {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } finally {
      probe.disconnect();
    }
  }, 15_000, child, logFile);
  log.info({ url, dir }, 'embedded redis-server up');
  return { url, stop: () => stopChild(child) };
}

/** S3 (s3rver, file-backed under stateDir/s3) and SQS (fauxqs, in memory), both on loopback. */
export async function startAwsEmulators(stateDir: string, buckets: string[], log: Logger): Promise<{ s3: Service; sqs: Service }> {
  const directory = path.join(stateDir, 's3');
  await mkdir(directory, { recursive: true });
  const s3rver = new S3rver({ port: await freePort(), address: '127.0.0.1', directory, silent: true, configureBuckets: buckets.map((name) => ({ name })) });
  const { port: s3Port } = await s3rver.run();
  const fauxqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  const s3 = { url: `http://127.0.0.1:${s3Port}`, stop: () => s3rver.close() };
  const sqs = { url: fauxqs.address, stop: () => fauxqs.stop() };
  log.info({ s3: s3.url, sqs: sqs.url, directory }, 'embedded S3 (s3rver) and SQS (fauxqs) up');
  return { s3, sqs };
}

/**
 * The Docker engine: used when it answers; started (and stopped again with us) when installed
 * but not running; installed with apt when missing and we are root.
 */
export async function ensureDocker(socketPath: string, stateDir: string, log: Logger): Promise<{ docker: Docker; stop(): Promise<void> }> {
  const docker = new Docker({ socketPath });
  if (await docker.ping().then(() => true, () => false)) return { docker, stop: async () => undefined };
  if (process.getuid?.() !== 0) {
    throw new MissingDependencyError(`the Docker engine does not answer on ${socketPath}: start it (\`sudo systemctl start docker\` or \`sudo dockerd &\`), or run npm start as root to have it started`);
  }
  const dockerd = which('dockerd') ?? requireBinary('dockerd', 'docker.io', log);
  await mkdir(stateDir, { recursive: true });
  const logFile = path.join(stateDir, 'dockerd.log');
  log.info({ logFile }, 'starting dockerd');
  const child = startDaemon(dockerd, [], logFile);
  await waitFor('dockerd', async () => (await docker.ping(), true), 60_000, child, logFile);
  return { docker, stop: () => stopChild(child, 'SIGTERM', 20_000) };
}
