import type { Redis } from 'ioredis';
import type { RunMessage } from '../contracts/runMessage.ts';

export type RunPhase = 'QUEUED' | 'RUNNING' | 'DONE';

export interface RunState {
  requestId: string;
  functionId: string;
  version: number;
  status: RunPhase;
  stage?: string;
  createdAt: string;
  updatedAt: string;
}

/** Where a run is before its result exists: QUEUED, then RUNNING with its stage. */
export interface RunStateStore {
  queued(message: RunMessage): Promise<void>;
  stage(requestId: string, stage: string): Promise<void>;
  finish(requestId: string): Promise<void>;
  get(requestId: string): Promise<RunState | null>;
}

const QUEUED_ONCE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'QUEUED', 'requestId', ARGV[2], 'functionId', ARGV[3], 'version', ARGV[4], 'createdAt', ARGV[5], 'updatedAt', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1`;

export function runStateKey(prefix: string, requestId: string): string {
  return `${prefix}:run:${requestId}`;
}

export function fromRedisRunState(redis: Redis, config: { keyPrefix: string; ttlSeconds: number }): RunStateStore {
  const key = (id: string) => runStateKey(config.keyPrefix, id);
  return {
    async queued(message) {
      const now = new Date().toISOString();
      // One round trip, and a no-op when the run is already known: the controller writes it before
      // sending, so the worker's call only matters for messages someone else sent, and a redelivered
      // message must not reset a run that is further along.
      await redis.eval(QUEUED_ONCE, 1, key(message.requestId), String(config.ttlSeconds), message.requestId, message.functionId, String(message.version), now);
    },
    async stage(requestId, stage) {
      // The key exists with its TTL (queued() set it), and HSET keeps the TTL.
      await redis.hset(key(requestId), { status: 'RUNNING', stage, updatedAt: new Date().toISOString() });
    },
    async finish(requestId) {
      await redis.hset(key(requestId), { status: 'DONE', stage: '', updatedAt: new Date().toISOString() });
    },
    async get(requestId) {
      const h = await redis.hgetall(key(requestId));
      if (!h.requestId) return null;
      return {
        requestId: h.requestId,
        functionId: h.functionId ?? '',
        version: Number(h.version ?? 0),
        status: (h.status as RunPhase | undefined) ?? 'QUEUED',
        ...(h.stage ? { stage: h.stage } : {}),
        createdAt: h.createdAt ?? '',
        updatedAt: h.updatedAt ?? '',
      };
    },
  };
}
