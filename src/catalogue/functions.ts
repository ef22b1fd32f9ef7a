import type { Redis } from 'ioredis';
import type { FunctionMeta, FunctionVersion } from '../contracts/functionMeta.ts';

/** The function catalogue: functions, their immutable versions, names. */
export interface FunctionStore {
  /** Reserves the next version number of a function (1 for a new one). */
  nextVersion(functionId: string): Promise<number>;
  /** Records a version whose code is already stored; creates the function on its first version. */
  saveVersion(meta: Omit<FunctionMeta, 'latestVersion' | 'createdAt' | 'updatedAt'>, version: FunctionVersion): Promise<FunctionMeta>;
  get(functionId: string): Promise<FunctionMeta | null>;
  getVersion(functionId: string, version: number): Promise<FunctionVersion | null>;
  versions(functionId: string): Promise<FunctionVersion[]>;
  findByName(name: string): Promise<string | null>;
  list(): Promise<FunctionMeta[]>;
  ping(): Promise<void>;
}

export function fromRedisFunctions(redis: Redis, config: { keyPrefix: string }): FunctionStore {
  const p = config.keyPrefix;
  const fnKey = (id: string) => `${p}:fn:${id}`;
  const versionsKey = (id: string) => `${p}:fn:${id}:versions`;
  const seqKey = (id: string) => `${p}:fn:${id}:seq`;
  const namesKey = `${p}:fn-names`;
  const indexKey = `${p}:fn-index`;

  async function get(functionId: string): Promise<FunctionMeta | null> {
    const json = await redis.get(fnKey(functionId));
    return json ? (JSON.parse(json) as FunctionMeta) : null;
  }

  return {
    async nextVersion(functionId) {
      return redis.incr(seqKey(functionId));
    },
    async saveVersion(meta, version) {
      const existing = await get(meta.functionId);
      const now = version.createdAt;
      const latest = Math.max(existing?.latestVersion ?? 0, version.version);
      const record: FunctionMeta = {
        functionId: meta.functionId,
        name: meta.name,
        runtime: version.version >= latest ? version.runtime : (existing?.runtime ?? version.runtime),
        latestVersion: latest,
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      };
      // One MULTI: the version and the function record appear together or not at all.
      await redis
        .multi()
        .hset(versionsKey(meta.functionId), String(version.version), JSON.stringify(version))
        .set(fnKey(meta.functionId), JSON.stringify(record))
        .hset(namesKey, meta.name, meta.functionId)
        .zadd(indexKey, Date.parse(record.createdAt), meta.functionId)
        .exec();
      return record;
    },
    get,
    async getVersion(functionId, version) {
      const json = await redis.hget(versionsKey(functionId), String(version));
      return json ? (JSON.parse(json) as FunctionVersion) : null;
    },
    async versions(functionId) {
      const all = await redis.hvals(versionsKey(functionId));
      return all.map((j) => JSON.parse(j) as FunctionVersion).sort((a, b) => a.version - b.version);
    },
    async findByName(name) {
      return redis.hget(namesKey, name);
    },
    async list() {
      const ids = await redis.zrange(indexKey, 0, -1);
      if (ids.length === 0) return [];
      const jsons = await redis.mget(ids.map(fnKey));
      return jsons.filter((j): j is string => j !== null).map((j) => JSON.parse(j) as FunctionMeta);
    },
    async ping() {
      await redis.ping();
    },
  };
}
