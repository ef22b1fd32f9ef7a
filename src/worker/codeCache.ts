import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Validated code packages on this worker's disk, by sha256, within a size bound (least recently used go first). */
export interface CodeCache {
  /** The path of a cached package, touched as used; null when absent. */
  get(sha256: string): Promise<string | null>;
  put(sha256: string, zip: Buffer): Promise<string>;
}

export async function createCodeCache(config: { dir: string; maxBytes: number }): Promise<CodeCache> {
  await mkdir(config.dir, { recursive: true });
  const file = (sha256: string) => path.join(config.dir, `${sha256}.zip`);

  async function evict(): Promise<void> {
    const entries = await Promise.all(
      (await readdir(config.dir)).filter((n) => n.endsWith('.zip')).map(async (name) => ({ name, st: await stat(path.join(config.dir, name)).catch(() => null) })),
    );
    const live = entries.filter((e): e is { name: string; st: NonNullable<typeof e.st> } => e.st !== null).sort((a, b) => a.st.mtimeMs - b.st.mtimeMs);
    let total = live.reduce((n, e) => n + e.st.size, 0);
    for (const e of live) {
      if (total <= config.maxBytes) break;
      await rm(path.join(config.dir, e.name), { force: true });
      total -= e.st.size;
    }
  }

  return {
    async get(sha256) {
      const p = file(sha256);
      if (!existsSync(p)) return null;
      // Touched as used, for the least-recently-used eviction.
      const now = new Date();
      return (await utimes(p, now, now).then(() => true, () => false)) ? p : null;
    },
    async put(sha256, zip) {
      const p = file(sha256);
      // Write then rename: a reader never sees half a package.
      const partial = `${p}.${process.pid}.${Date.now()}.partial`;
      await writeFile(partial, zip);
      await rename(partial, p);
      await evict();
      return p;
    },
  };
}
