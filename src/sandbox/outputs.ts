import { constants, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import type { CollectedOutputs } from './ports.ts';

export interface OutputLimits {
  maxFiles: number;
  maxTotalBytes: number;
}

interface Candidate {
  relative: string;
  size: number;
}

/**
 * Lists what the code left under output/ without following any link: only regular files are
 * candidates; links, devices, FIFOs and sockets are reported as skipped.
 */
async function walk(root: string, relative: string, found: Candidate[], skipped: CollectedOutputs['skipped']): Promise<void> {
  const entries = await readdir(path.join(root, relative), { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    const rel = relative ? `${relative}/${entry.name}` : entry.name;
    const stat = await lstat(path.join(root, rel));
    if (stat.isSymbolicLink()) skipped.push({ path: rel, reason: 'symbolic link (links are never followed)' });
    else if (stat.isDirectory()) await walk(root, rel, found, skipped);
    else if (stat.isFile()) found.push({ relative: rel, size: stat.size });
    else skipped.push({ path: rel, reason: 'not a regular file (device, FIFO or socket)' });
  }
}

/**
 * Copies the regular files under `sourceDir` (the function's output/) into `destDir`, a host
 * directory the function cannot reach, within the caps. Must run while no code of the function
 * runs (between runs), and never follows a link the code made.
 */
export async function collectOutputs(sourceDir: string, destDir: string, limits: OutputLimits): Promise<CollectedOutputs> {
  const skipped: CollectedOutputs['skipped'] = [];
  const found: Candidate[] = [];
  const top = await lstat(sourceDir).catch(() => null);
  if (top?.isSymbolicLink()) skipped.push({ path: 'output', reason: 'output/ itself is a symbolic link (links are never followed)' });
  else if (top?.isDirectory()) await walk(sourceDir, '', found, skipped);

  const files: CollectedOutputs['files'] = [];
  let totalBytes = 0;
  for (const file of found) {
    if (files.length >= limits.maxFiles) {
      skipped.push({ path: file.relative, reason: `over the limit of ${limits.maxFiles} output files` });
      continue;
    }
    if (totalBytes + file.size > limits.maxTotalBytes) {
      skipped.push({ path: file.relative, reason: `over the limit of ${limits.maxTotalBytes} output bytes in all` });
      continue;
    }
    // O_NOFOLLOW: refuse a file that became a link after we listed it.
    const handle = await open(path.join(sourceDir, file.relative), constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
    if (!handle) {
      skipped.push({ path: file.relative, reason: 'could not be opened without following a link' });
      continue;
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) {
        skipped.push({ path: file.relative, reason: 'not a regular file' });
        continue;
      }
      const target = path.join(destDir, file.relative);
      await mkdir(path.dirname(target), { recursive: true });
      // Copy at most what the caps allow, even if the file grew since it was listed.
      const size = Math.min(stat.size, limits.maxTotalBytes - totalBytes);
      if (size === 0) await writeFile(target, '', { flag: 'wx' });
      else await pipeline(handle.createReadStream({ autoClose: false, start: 0, end: size - 1 }), createWriteStream(target, { flags: 'wx' }));
      files.push({ path: file.relative, size });
      totalBytes += size;
    } finally {
      await handle.close();
    }
  }
  return { files, skipped };
}
