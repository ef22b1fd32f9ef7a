import type { Redis } from 'ioredis';
import type { FunctionMeta, FunctionVersion } from '../contracts/functionMeta.ts';

/** Why the catalogue refused a write that raced with another one; the upload answers 409 with `code`. */
export class CatalogueConflict extends Error {
  override name = 'CatalogueConflict';

  constructor(
    readonly code: 'FUNCTION_DELETED' | 'NAME_TAKEN',
    message: string,
  ) {
    super(message);
  }
}

/** The function catalogue: functions, their immutable versions, names. */
export interface FunctionStore {
  /** Reserves the next version number of a function (1 for a new one). */
  nextVersion(functionId: string): Promise<number>;
  /**
   * Points `name` at `functionId` unless it already names a function; returns the function the name
   * names afterwards. Atomic, so two first uploads under one new name end up as v1 and v2 of one function.
   */
  claimName(name: string, functionId: string): Promise<string>;
  /**
   * Records a version whose code is already stored; creates the function on its first version. Atomic.
   * Throws CatalogueConflict when the function was deleted meanwhile or the name belongs to another function.
   */
  saveVersion(meta: Omit<FunctionMeta, 'latestVersion' | 'createdAt' | 'updatedAt'>, version: FunctionVersion): Promise<FunctionMeta>;
  get(functionId: string): Promise<FunctionMeta | null>;
  getVersion(functionId: string, version: number): Promise<FunctionVersion | null>;
  versions(functionId: string): Promise<FunctionVersion[]>;
  findByName(name: string): Promise<string | null>;
  list(): Promise<FunctionMeta[]>;
  /**
   * Removes the function's metadata at once (record, versions, name, index entry, version counter) and
   * returns the versions it had and the highest version number ever reserved (uploads that failed after
   * nextVersion may have left code under it), or null for an unknown function. Leaves code objects alone.
   */
  delete(functionId: string): Promise<{ versions: FunctionVersion[]; reserved: number } | null>;
  ping(): Promise<void>;
}

/**
 * A deleted function leaves a tombstone for this long, so that an upload that was in flight when the
 * function was deleted cannot bring it back with a single orphan version. Ids are random, never reused.
 */
const TOMBSTONE_SECONDS = 7 * 24 * 3600;

/**
 * KEYS: fn, versions, names, index, tombstone, seq. ARGV: functionId, name, version, version JSON, runtime,
 * now (ISO), now (ms). latestVersion is a read-modify-write of the function record: doing it in one script
 * keeps two concurrent uploads from writing an older latestVersion over a newer one.
 */
const SAVE_VERSION = `
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('DEL', KEYS[6])
  return {'FUNCTION_DELETED'}
end
local owner = redis.call('HGET', KEYS[3], ARGV[2])
if owner and owner ~= ARGV[1] then return {'NAME_TAKEN', owner} end
local version = tonumber(ARGV[3])
local record = { functionId = ARGV[1], name = ARGV[2], runtime = ARGV[5], latestVersion = version, createdAt = ARGV[6], updatedAt = ARGV[6] }
local existingJson = redis.call('GET', KEYS[1])
if existingJson then
  local existing = cjson.decode(existingJson)
  record.createdAt = existing.createdAt
  if existing.latestVersion > version then
    record.latestVersion = existing.latestVersion
    record.runtime = existing.runtime
  end
  if existing.name ~= ARGV[2] and redis.call('HGET', KEYS[3], existing.name) == ARGV[1] then
    redis.call('HDEL', KEYS[3], existing.name)
  end
end
local json = cjson.encode(record)
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('SET', KEYS[1], json)
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[4], 'NX', ARGV[7], ARGV[1])
return {'OK', json}
`;

/** KEYS: fn, versions, names, index, seq, tombstone. ARGV: functionId, tombstone TTL. Returns {seq, version JSONs}. */
const DELETE_FUNCTION = `
local json = redis.call('GET', KEYS[1])
if not json then return false end
local versions = redis.call('HVALS', KEYS[2])
local reserved = redis.call('GET', KEYS[5]) or '0'
local record = cjson.decode(json)
if redis.call('HGET', KEYS[3], record.name) == ARGV[1] then redis.call('HDEL', KEYS[3], record.name) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[5])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('SET', KEYS[6], '1', 'EX', ARGV[2])
return {reserved, versions}
`;

const VERSION_CACHE_SIZE = 1000;

export function fromRedisFunctions(redis: Redis, config: { keyPrefix: string }): FunctionStore {
  const versionCache = new Map<string, FunctionVersion>();
  const p = config.keyPrefix;
  const fnKey = (id: string) => `${p}:fn:${id}`;
  const versionsKey = (id: string) => `${p}:fn:${id}:versions`;
  const seqKey = (id: string) => `${p}:fn:${id}:seq`;
  const tombstoneKey = (id: string) => `${p}:fn:${id}:deleted`;
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
    async claimName(name, functionId) {
      await redis.hsetnx(namesKey, name, functionId);
      return (await redis.hget(namesKey, name)) ?? functionId;
    },
    async saveVersion(meta, version) {
      const id = meta.functionId;
      const keys = [fnKey(id), versionsKey(id), namesKey, indexKey, tombstoneKey(id), seqKey(id)];
      const args = [id, meta.name, String(version.version), JSON.stringify(version), version.runtime, version.createdAt, String(Date.parse(version.createdAt))];
      const [outcome, detail] = (await redis.eval(SAVE_VERSION, keys.length, ...keys, ...args)) as [string, string?];
      if (outcome === 'FUNCTION_DELETED') {
        throw new CatalogueConflict('FUNCTION_DELETED', `function ${id} was deleted while this upload was in flight; upload again to create a new function`);
      }
      if (outcome === 'NAME_TAKEN') {
        throw new CatalogueConflict('NAME_TAKEN', `the name "${meta.name}" belongs to function ${detail ?? '?'}; choose another name, or upload with functionId=${detail ?? '?'} to add a version to it`);
      }
      return JSON.parse(detail ?? 'null') as FunctionMeta;
    },
    get,
    async getVersion(functionId, version) {
      // Versions never change once written (and function ids are never reused), so a found one is
      // kept in memory: a run costs one Redis read fewer. Callers check the function itself first.
      const cacheKey = `${functionId}@${version}`;
      const hit = versionCache.get(cacheKey);
      if (hit) return hit;
      const json = await redis.hget(versionsKey(functionId), String(version));
      if (!json) return null;
      const found = JSON.parse(json) as FunctionVersion;
      if (versionCache.size >= VERSION_CACHE_SIZE) versionCache.delete(versionCache.keys().next().value as string);
      versionCache.set(cacheKey, found);
      return found;
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
    async delete(functionId) {
      for (const k of [...versionCache.keys()]) if (k.startsWith(`${functionId}@`)) versionCache.delete(k);
      const keys = [fnKey(functionId), versionsKey(functionId), namesKey, indexKey, seqKey(functionId), tombstoneKey(functionId)];
      const found = (await redis.eval(DELETE_FUNCTION, keys.length, ...keys, functionId, String(TOMBSTONE_SECONDS))) as [string, string[]] | null;
      if (!found) return null;
      const versions = found[1].map((j) => JSON.parse(j) as FunctionVersion).sort((a, b) => a.version - b.version);
      return { versions, reserved: Math.max(Number(found[0]) || 0, versions.at(-1)?.version ?? 0) };
    },
    async ping() {
      await redis.ping();
    },
  };
}
