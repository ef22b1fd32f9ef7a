/**
 * Turns a function folder into the ZIP the server expects: the folder's CONTENTS at the archive root (what
 * `cd DIR && zip -r function.zip .` makes), then validates it with the server's own inspectPackage, so the
 * CLI refuses, with the server's words, anything the server would refuse.
 */
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { RuntimeName } from '../contracts/runtimes.ts';
import { DEFAULT_PACKAGE_LIMITS, inspectPackage, tooLarge, tooManyEntries, type PackageInfo, type PackageLimits } from '../packages/inspect.ts';
import { writeZip, type ZipInput } from './zipWriter.ts';

export interface PackedDirectory {
  zip: Buffer;
  info: PackageInfo;
  /** Entries left out, with why (symbolic links, FIFOs, sockets, devices). */
  skipped: { path: string; reason: string }[];
}

interface Found {
  rel: string;
  stats: Stats;
}

/**
 * Zips `dir` and validates the result; throws PackageError (the server's code and message) when the server
 * would refuse it. Links are never followed: a symlink is skipped, whatever it points to.
 */
export async function packDirectory(dir: string, runtime: RuntimeName, limits: PackageLimits = DEFAULT_PACKAGE_LIMITS): Promise<PackedDirectory> {
  const found: Found[] = [];
  const skipped: PackedDirectory['skipped'] = [];
  await walk(dir, '', found, skipped);
  // Count before reading a byte: a folder with a huge data set is refused without loading it into memory.
  if (found.length > limits.maxEntries) throw tooManyEntries(found.length, limits);
  const bytes = found.reduce((sum, f) => sum + (f.stats.isFile() ? f.stats.size : 0), 0);
  if (bytes > limits.maxUncompressedBytes) throw tooLarge(bytes, limits);

  const inputs: ZipInput[] = [];
  for (const { rel, stats } of found) {
    if (stats.isDirectory()) inputs.push({ name: `${rel}/`, mode: stats.mode, mtime: stats.mtime });
    else inputs.push({ name: rel, data: await readFile(path.join(dir, rel)), mode: stats.mode, mtime: stats.mtime });
  }
  const zip = writeZip(inputs, { maxCompressionRatio: limits.maxCompressionRatio });
  return { zip, info: inspectPackage(zip, runtime, limits), skipped };
}

/** Depth first, names sorted, so the same folder always gives entries in the same order. */
async function walk(root: string, relative: string, found: Found[], skipped: PackedDirectory['skipped']): Promise<void> {
  const names = (await readdir(path.join(root, relative))).sort();
  for (const name of names) {
    const rel = relative ? `${relative}/${name}` : name;
    const full = path.join(root, rel);
    const stats = await lstat(full);
    if (stats.isSymbolicLink()) {
      skipped.push({ path: rel, reason: `a symbolic link (to ${await readlink(full)}); links are never followed` });
    } else if (stats.isDirectory()) {
      found.push({ rel, stats });
      await walk(root, rel, found, skipped);
    } else if (stats.isFile()) {
      found.push({ rel, stats });
    } else {
      skipped.push({ path: rel, reason: 'not a regular file (a FIFO, socket or device)' });
    }
  }
}
