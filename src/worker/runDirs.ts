import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** A run's output files on this worker, between execute and bind-outputs (they outlive a worker restart). */
export interface RunDirs {
  /** The run's directory, emptied of anything an earlier attempt left (created on first write). */
  create(requestId: string): Promise<string>;
  find(requestId: string): Promise<string | null>;
  destroy(requestId: string): Promise<void>;
  /** Removes what an earlier life of this worker left behind, except what `keep` names. */
  sweep(keep: (requestId: string, ageMs: number) => Promise<boolean>): Promise<number>;
}

/** Removes a directory: one syscall in the usual cases (absent, or empty), a full walk only when needed. */
async function remove(dir: string): Promise<void> {
  // Most runs write no output: the directory was never made. existsSync throws no error to build.
  if (!existsSync(dir)) return;
  try {
    await rmdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    await rm(dir, { recursive: true, force: true });
  }
}

export async function createRunDirs(root: string): Promise<RunDirs> {
  await mkdir(root, { recursive: true });
  const dir = (id: string) => path.join(root, id);
  return {
    async create(id) {
      await remove(dir(id));
      return dir(id);
    },
    async find(id) {
      return (await stat(dir(id)).then((s) => s.isDirectory(), () => false)) ? dir(id) : null;
    },
    async destroy(id) {
      await remove(dir(id));
    },
    async sweep(keep) {
      let removed = 0;
      for (const name of await readdir(root)) {
        const ageMs = Date.now() - (await stat(dir(name)).then((s) => s.mtimeMs, () => 0));
        if (await keep(name, ageMs)) continue;
        await rm(dir(name), { recursive: true, force: true });
        removed++;
      }
      return removed;
    },
  };
}
