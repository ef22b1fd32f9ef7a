import type { Redis } from 'ioredis';

/** Idempotency-Key → the requestId of the first run made with it, kept for a TTL. */
export interface IdempotencyStore {
  /** Records requestId under key unless the key is taken; returns the earlier requestId, or null. */
  claim(key: string, requestId: string): Promise<string | null>;
  /** Forgets a claim whose run could not be queued, so a retry can queue it. */
  release(key: string, requestId: string): Promise<void>;
}

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export function fromRedisIdempotency(redis: Redis, config: { keyPrefix: string; ttlSeconds: number }): IdempotencyStore {
  const k = (key: string) => `${config.keyPrefix}:idem:${key}`;
  return {
    async claim(key, requestId) {
      const set = await redis.set(k(key), requestId, 'EX', config.ttlSeconds, 'NX');
      return set === 'OK' ? null : await redis.get(k(key));
    },
    async release(key, requestId) {
      await redis.eval(RELEASE, 1, k(key), requestId);
    },
  };
}
