import { chown, lstat, readdir } from 'node:fs/promises';
import path from 'node:path';

/** Hands a freshly extracted tree to the sandbox user; never follows a link. */
export async function chownTree(dir: string, uid: number): Promise<void> {
  await chown(dir, uid, uid);
  for (const entry of await readdir(dir)) {
    const full = path.join(dir, entry);
    const stat = await lstat(full);
    if (stat.isDirectory()) await chownTree(full, uid);
    else if (!stat.isSymbolicLink()) await chown(full, uid, uid);
  }
}
