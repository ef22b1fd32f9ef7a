import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/** A run's output files on this worker, between execute and bind-outputs (they outlive a worker restart). */
export interface RunDirs {
  /** A fresh, empty directory for the run. */
  create(requestId: string): Promise<string>;
  find(requestId: string): Promise<string | null>;
  destroy(requestId: string): Promise<void>;
  /** Removes what an earlier life of this worker left behind, except what `keep` names. */
  sweep(keep: (requestId: string, ageMs: number) => Promise<boolean>): Promise<number>;
}

export async function createRunDirs(root: string): Promise<RunDirs> {
  await mkdir(root, { recursive: true });
  const dir = (id: string) => path.join(root, id);
  return {
    async create(id) {
      await rm(dir(id), { recursive: true, force: true });
      await mkdir(dir(id), { recursive: true });
      return dir(id);
    },
    async find(id) {
      return (await stat(dir(id)).then((s) => s.isDirectory(), () => false)) ? dir(id) : null;
    },
    async destroy(id) {
      await rm(dir(id), { recursive: true, force: true });
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
