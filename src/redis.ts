import { Redis } from 'ioredis';

/**
 * A Redis connection that retries forever (a restart of Redis must not kill a worker) and, as
 * BullMQ requires for its blocking connections, never gives up on a command.
 */
export function connectRedis(url: string, name: string): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
}
