import type { Redis } from 'ioredis';

/** Workers say every few seconds that they live and whether their Docker engine answers. */
export interface WorkerBeat {
  workerId: string;
  dockerOk: boolean;
  dockerError?: string;
  inFlight: number;
  at: number;
}

export const BEAT_INTERVAL_MS = 3000;
export const BEAT_STALE_MS = 15_000;

export function startHeartbeat(redis: Redis, keyPrefix: string, beat: () => Promise<Omit<WorkerBeat, 'at'>>): () => Promise<void> {
  const key = `${keyPrefix}:workers`;
  let stopped = false;
  let workerId = '';
  const tick = async () => {
    const b = await beat();
    workerId = b.workerId;
    if (!stopped) await redis.hset(key, b.workerId, JSON.stringify({ ...b, at: Date.now() }));
  };
  void tick().catch(() => undefined);
  const timer = setInterval(() => void tick().catch(() => undefined), BEAT_INTERVAL_MS);
  return async () => {
    stopped = true;
    clearInterval(timer);
    if (workerId) await redis.hdel(key, workerId).catch(() => undefined);
  };
}

/** Resolves when at least one live worker reports a reachable Docker engine; else says what is wrong. */
export async function checkWorkersDocker(redis: Redis, keyPrefix: string): Promise<void> {
  const all = Object.values(await redis.hgetall(`${keyPrefix}:workers`)).map((j) => JSON.parse(j) as WorkerBeat);
  const live = all.filter((b) => Date.now() - b.at < BEAT_STALE_MS);
  if (live.length === 0) throw new Error('no worker has reported in the last 15 s: start one with `npm run worker`');
  if (!live.some((b) => b.dockerOk)) throw new Error(`no live worker reaches its Docker engine: ${live.map((b) => `${b.workerId}: ${b.dockerError ?? 'unreachable'}`).join('; ')}`);
}
