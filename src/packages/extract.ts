/**
 * Safe extraction of a validated function package.
 *
 * Declared sizes are only promises: every entry is inflated as a stream and cut off as soon as its real
 * output passes what its header declared, so a lying archive cannot fill the disk.
 *
 * Hazard: on failure, destDir keeps whatever was written so far (at most the declared sizes); callers
 * should extract into a fresh private directory and delete it when extraction throws.
 */
import { constants, type Stats } from 'node:fs';
import { chmod, lstat, mkdir, open, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createInflateRaw } from 'node:zlib';
import type { RuntimeName } from '../contracts/runtimes.ts';
import { PackageError, showName, ZIP_COMMAND } from './errors.ts';
import { checkPackage, DEFAULT_PACKAGE_LIMITS, type CheckedEntry, type PackageLimits } from './inspect.ts';
import { crc32, entryData } from './zip.ts';

/**
 * O_EXCL makes open fail on any existing path, dangling symlinks included; O_NOFOLLOW is kept as a second
 * lock in case O_EXCL is ever dropped. Only the last path component is protected: directories are
 * checked separately by DirectoryMaker.
 */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const FILE_MODE = 0o644;
const EXECUTABLE_MODE = 0o755;
const DIRECTORY_MODE = 0o755;

/** Validates the package (inspectPackage) and extracts its regular files and folders into destDir. */
export async function extractPackage(
  zip: Buffer,
  destDir: string,
  runtime: RuntimeName,
  limits: PackageLimits = DEFAULT_PACKAGE_LIMITS,
): Promise<{ files: number; bytes: number }> {
  const { entries } = checkPackage(zip, runtime, limits);
  await mkdir(destDir, { recursive: true, mode: DIRECTORY_MODE });
  // Resolve destDir itself once: it may legitimately be a symlink (e.g. /tmp on macOS); below it, none may be.
  const root = await realpath(destDir);
  const directories = new DirectoryMaker(root);
  let files = 0;
  let bytes = 0;
  for (const entry of entries) {
    const target = resolveInside(root, entry);
    if (entry.isDirectory) {
      await directories.ensure(entry.segments);
      continue;
    }
    await directories.ensure(entry.segments.slice(0, -1));
    bytes += await writeEntry(zip, entry, target, limits.maxUncompressedBytes - bytes, limits);
    files += 1;
  }
  return { files, bytes };
}

/** Defence in depth: inspection already refused `..` and absolute names, this re-checks the final path. */
function resolveInside(root: string, entry: CheckedEntry): string {
  const target = path.resolve(root, ...entry.segments);
  const relative = path.relative(root, target);
  if (relative === '' || relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative)) {
    throw new PackageError('UNSAFE_PATH', `entry ${showName(entry.name)} resolves outside the destination — zip the function folder from inside it with ${ZIP_COMMAND}`);
  }
  return target;
}

/**
 * Creates folders one level at a time and checks each with lstat, so that a symlink already present in
 * destDir (from a previous run, or planted) is never followed. Assumes nobody else writes to destDir
 * while we extract: a swap between mkdir and open would not be caught.
 */
class DirectoryMaker {
  private readonly known = new Set<string>();

  constructor(private readonly root: string) {}

  async ensure(segments: string[]): Promise<void> {
    for (let depth = 1; depth <= segments.length; depth++) {
      const relative = segments.slice(0, depth).join('/');
      if (this.known.has(relative)) continue;
      const dir = path.join(this.root, ...segments.slice(0, depth));
      const created = await mkdir(dir, { mode: DIRECTORY_MODE }).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
          return false;
        },
      );
      const stats: Stats = await lstat(dir);
      if (!stats.isDirectory()) throw new Error(`refusing to extract into ${dir}: it exists and is not a directory (symlink?)`);
      // mkdir's mode is filtered by the umask; folders we made get exactly 0755, like files get 0644/0755.
      if (created) await chmod(dir, DIRECTORY_MODE);
      this.known.add(relative);
    }
  }
}

/** Writes one file and returns the bytes written; the file gets its final mode whatever the umask. */
async function writeEntry(zip: Buffer, entry: CheckedEntry, target: string, budget: number, limits: PackageLimits): Promise<number> {
  const mode = entry.executable ? EXECUTABLE_MODE : FILE_MODE;
  const handle = await open(target, CREATE_FLAGS, mode);
  try {
    const { bytes, crc } = entry.zip.method === 0
      ? await writeStored(zip, entry, handle)
      : await writeInflated(zip, entry, handle, budget, limits);
    if (bytes !== entry.uncompressedSize) throw corrupt(entry, `it holds ${bytes} bytes instead of the declared ${entry.uncompressedSize}`);
    if (crc !== entry.zip.crc32) throw corrupt(entry, 'CRC-32 mismatch');
    await handle.chmod(mode);
    return bytes;
  } finally {
    await handle.close();
  }
}

async function writeStored(zip: Buffer, entry: CheckedEntry, handle: FileHandle): Promise<{ bytes: number; crc: number }> {
  // Inspection guaranteed compressed size === declared size for stored entries, so this is bounded.
  const data = entryData(zip, entry.zip);
  await writeAll(handle, data);
  return { bytes: data.length, crc: crc32(data) };
}

/**
 * Inflates chunk by chunk, counting real output before writing it: the cut-off happens at the declared
 * size (or the remaining total budget), never after the whole bomb has been expanded in memory.
 */
async function writeInflated(
  zip: Buffer,
  entry: CheckedEntry,
  handle: FileHandle,
  budget: number,
  limits: PackageLimits,
): Promise<{ bytes: number; crc: number }> {
  const inflater = createInflateRaw();
  inflater.end(entryData(zip, entry.zip));
  let bytes = 0;
  let crc = 0;
  try {
    for await (const chunk of inflater as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > entry.uncompressedSize) throw inflatesBeyondDeclared(entry);
      if (bytes > budget) throw overTotal(limits);
      crc = crc32(chunk, crc);
      await writeAll(handle, chunk);
    }
  } catch (err) {
    if (err instanceof PackageError) throw err;
    throw corrupt(entry, `the compressed data is damaged (${(err as Error).message})`);
  } finally {
    inflater.destroy();
  }
  return { bytes, crc };
}

/** FileHandle.write may write less than asked (e.g. a disk filling up); loop until it is all out. */
async function writeAll(handle: FileHandle, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    if (bytesWritten === 0) throw new Error('write made no progress');
    offset += bytesWritten;
  }
}

function inflatesBeyondDeclared(entry: CheckedEntry): PackageError {
  return new PackageError(
    'ZIP_BOMB',
    `entry ${showName(entry.name)} inflates to more than the ${entry.uncompressedSize} bytes its header declares, so extraction was stopped; the archive is forged or broken — re-create it with ${ZIP_COMMAND}`,
  );
}

function overTotal(limits: PackageLimits): PackageError {
  return new PackageError(
    'TOO_LARGE',
    `the archive unpacks to more than the limit of ${limits.maxUncompressedBytes} bytes, so extraction was stopped — leave out files the function does not need and zip again`,
  );
}

function corrupt(entry: CheckedEntry, why: string): PackageError {
  return new PackageError(
    'CORRUPT_ENTRY',
    `entry ${showName(entry.name)} is corrupt (${why}) — the upload was damaged or the archive is broken; re-create it with ${ZIP_COMMAND} and upload again`,
  );
}
