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

export function runStateKey(prefix: string, requestId: string): string {
  return `${prefix}:run:${requestId}`;
}

export function fromRedisRunState(redis: Redis, config: { keyPrefix: string; ttlSeconds: number }): RunStateStore {
  const key = (id: string) => runStateKey(config.keyPrefix, id);
  return {
    async queued(message) {
      const now = new Date().toISOString();
      // HSETNX status: a redelivered message must not reset a run that is already further along.
      // Plain commands, not MULTI: ioredis pipelines them anyway, and MULTI costs CPU on every run.
      const k = key(message.requestId);
      await Promise.all([
        redis.hsetnx(k, 'status', 'QUEUED'),
        redis.hsetnx(k, 'createdAt', now),
        redis.hset(k, { requestId: message.requestId, functionId: message.functionId, version: String(message.version), updatedAt: now }),
        redis.expire(k, config.ttlSeconds),
      ]);
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
