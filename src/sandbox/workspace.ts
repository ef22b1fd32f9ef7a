import { execFile } from 'node:child_process';
import { mkdir, rm, readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import type { Logger } from '../log.ts';

const run = promisify(execFile);

/** A warm container's /workspace on this worker: created empty, destroyed with everything in it. */
export interface Workspaces {
  create(id: string): Promise<string>;
  /** Unmounts and deletes the workspace; a no-op when there is none. */
  destroy(id: string): Promise<void>;
  /** Removes every workspace an earlier life of this worker left behind (its containers are gone). */
  sweep(): Promise<number>;
  /** Whether workspaces are size-capped filesystems (false: plain directories). */
  readonly capped: boolean;
}

export interface WorkspaceConfig {
  root: string;
  sizeMb: number;
  uid: number;
}

async function unmount(dir: string): Promise<void> {
  await run('umount', ['-l', dir]).catch(() => undefined);
}

/**
 * Each workspace is its own tmpfs of `sizeMb`, owned by the sandbox user, so a function cannot
 * fill the worker's disk (its pages count toward the function's memory limit). Mounting needs
 * root; without it workspaces are plain directories and the log says so once.
 */
export async function createWorkspaces(config: WorkspaceConfig, log: Logger): Promise<Workspaces> {
  await mkdir(config.root, { recursive: true });
  const probe = path.join(config.root, '.probe');
  await mkdir(probe, { recursive: true });
  const capped = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]).then(
    () => true,
    () => false,
  );
  if (capped) await unmount(probe);
  await rm(probe, { recursive: true, force: true });
  if (!capped) log.warn({ root: config.root }, 'cannot mount tmpfs (not root?): run workspaces are plain directories without a size cap');

  async function removeDir(dir: string): Promise<void> {
    if (capped) await unmount(dir);
    await rm(dir, { recursive: true, force: true });
  }

  return {
    capped,
    async create(id) {
      const dir = path.join(config.root, id);
      await removeDir(dir);
      await mkdir(dir, { recursive: true });
      if (capped) {
        const options = `size=${config.sizeMb}m,mode=0755,uid=${config.uid},gid=${config.uid},nosuid,nodev`;
        await run('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
      }
      return dir;
    },
    destroy: (id) => removeDir(path.join(config.root, id)),
    async sweep() {
      const stale = await readdir(config.root);
      for (const name of stale) await removeDir(path.join(config.root, name));
      return stale.length;
    },
  };
}
