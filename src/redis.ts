import { Redis } from 'ioredis';
import type { Logger } from './log.ts';

/**
 * A Redis connection that retries forever (a restart of Redis must not kill a worker) and, as
 * BullMQ requires for its blocking connections, never gives up on a command. Connection errors
 * are logged, at most once per outage, instead of surfacing as unhandled events.
 */
export function connectRedis(url: string, name: string, log: Logger, options: { autoPipeline?: boolean } = {}): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    // Commands issued in the same tick leave in one write: fewer syscalls per run. Not for
    // connections handed to BullMQ, whose workers duplicate them for blocking commands.
    enableAutoPipelining: options.autoPipeline ?? false,
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
