import { Redis } from 'ioredis';
import type { Logger } from './log.ts';

/**
 * A Redis connection that retries forever (a restart of Redis must not kill a worker) and, as
 * BullMQ requires for its blocking connections, never gives up on a command. Connection errors
 * are logged, at most once per outage, instead of surfacing as unhandled events.
 */
export function connectRedis(url: string, name: string, log: Logger): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    log.warn({ connection: name, err: err.message }, 'redis connection lost; reconnecting');
  });
  redis.on('ready', () => {
    if (down) log.info({ connection: name }, 'redis connection back');
    down = false;
  });
  return redis;
}
