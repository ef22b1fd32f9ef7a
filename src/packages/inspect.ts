/**
 * Validation of an uploaded function package from its central directory alone: nothing is inflated, so
 * refusing a hostile archive costs a few milliseconds whatever it claims to contain.
 */
import { RUNTIMES, type RuntimeName } from '../contracts/runtimes.ts';
import { PackageError, showName, ZIP_COMMAND } from './errors.ts';
import { locateCentralDirectory, readCentralDirectory, ZipFormatError, type ZipEntry } from './zip.ts';

export interface PackageLimits {
  maxEntries: number;
  maxUncompressedBytes: number;
  maxCompressionRatio: number;
}

export const DEFAULT_PACKAGE_LIMITS: PackageLimits = {
  maxEntries: 10_000,
  maxUncompressedBytes: 250 * 1024 * 1024,
  maxCompressionRatio: 200,
};

export interface PackageEntry {
  /** Normalised relative path (`./` and empty segments dropped, no trailing slash). */
  name: string;
  isDirectory: boolean;
  compressedSize: number;
  uncompressedSize: number;
}

export interface PackageInfo {
  entries: PackageEntry[];
  fileCount: number;
  uncompressedBytes: number;
  /** The runtime's entrypoint, found at the archive root (e.g. `main.py`). */
  entrypoint: string;
}

/** An entry that passed every check, with what extraction needs. For extract.ts, not for callers. */
export interface CheckedEntry extends PackageEntry {
  segments: string[];
  executable: boolean;
  zip: ZipEntry;
}

/** Small, highly compressible files (e.g. a 500 KiB JSON of zeros) are harmless; only large ones count. */
const RATIO_THRESHOLD_BYTES = 1024 * 1024;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;
const FLAG_ENCRYPTED = 0x0001;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const SPECIAL_TYPES: Record<number, string> = {
  0o010000: 'a FIFO (named pipe)',
  0o020000: 'a character device',
  0o060000: 'a block device',
  0o140000: 'a socket',
};

/** Validates the package without extracting it; throws PackageError naming the problem and its fix. */
export function inspectPackage(zip: Buffer, runtime: RuntimeName, limits: PackageLimits = DEFAULT_PACKAGE_LIMITS): PackageInfo {
  return checkPackage(zip, runtime, limits).info;
}

/** inspectPackage plus the per-entry details extraction needs. */
export function checkPackage(zip: Buffer, runtime: RuntimeName, limits: PackageLimits): { info: PackageInfo; entries: CheckedEntry[] } {
  const zipEntries = readZip(zip, limits);
  const entries: CheckedEntry[] = [];
  for (const zipEntry of zipEntries) {
    const entry = checkEntry(zipEntry, limits);
    if (entry) entries.push(entry);
  }
  checkUniquePaths(entries);
  const uncompressedBytes = entries.reduce((sum, entry) => sum + entry.uncompressedSize, 0);
  if (uncompressedBytes > limits.maxUncompressedBytes) throw tooLarge(uncompressedBytes, limits);
  const fileCount = entries.filter((entry) => !entry.isDirectory).length;
  if (fileCount === 0) {
    const what = entries.length === 0 ? 'the archive is empty' : 'the archive is empty (it holds only folders, no files)';
    throw new PackageError('EMPTY_ARCHIVE', `${what} — zip the files themselves, e.g. ${ZIP_COMMAND}`);
  }
  const entrypoint = RUNTIMES[runtime].entrypoint;
  checkEntrypoint(entries, runtime, entrypoint);
  const info: PackageInfo = {
    entries: entries.map(({ name, isDirectory, compressedSize, uncompressedSize }) => ({ name, isDirectory, compressedSize, uncompressedSize })),
    fileCount,
    uncompressedBytes,
    entrypoint,
  };
  return { info, entries };
}

/** The refusal for an archive over the entry limit; exported so the CLI can refuse a folder before zipping it. */
export function tooManyEntries(entryCount: number, limits: PackageLimits): PackageError {
  return new PackageError(
    'TOO_MANY_ENTRIES',
    `the archive has ${entryCount} entries, over the limit of ${limits.maxEntries} — leave out files the function does not need (node_modules you do not use, tests, caches, .git) and zip again`,
  );
}

/** The refusal for an archive over the size limit; exported so the CLI can refuse a folder before zipping it. */
export function tooLarge(uncompressedBytes: number, limits: PackageLimits): PackageError {
  return new PackageError(
    'TOO_LARGE',
    `the archive unpacks to ${uncompressedBytes} bytes, over the limit of ${limits.maxUncompressedBytes} bytes (${mib(limits.maxUncompressedBytes)}) — leave out large files the function does not need (caches, build output, data sets) and zip again`,
  );
}

function notAZip(reason: string): PackageError {
  return new PackageError('NOT_A_ZIP', `the file is not a ZIP archive (or it is truncated): ${reason} — upload a .zip made with e.g. ${ZIP_COMMAND}`);
}

/** Reads the directory, refusing an oversized entry count before parsing any record. */
function readZip(zip: Buffer, limits: PackageLimits): ZipEntry[] {
  try {
    const location = locateCentralDirectory(zip);
    if (location.entryCount > limits.maxEntries) throw tooManyEntries(location.entryCount, limits);
    return readCentralDirectory(zip, location);
  } catch (err) {
    if (err instanceof ZipFormatError) throw notAZip(err.message);
    throw err;
  }
}

/** Applies every per-entry refusal; returns null for an entry that is the root folder itself (`./`). */
function checkEntry(zipEntry: ZipEntry, limits: PackageLimits): CheckedEntry | null {
  const { name } = zipEntry;
  const type = zipEntry.unixMode === null ? 0 : zipEntry.unixMode & S_IFMT;
  const isDirectory = name.endsWith('/') || type === S_IFDIR;
  const segments = safeSegments(name);
  checkFileType(name, type);
  checkReadable(zipEntry);
  checkRatio(zipEntry, limits);
  if (isDirectory && zipEntry.uncompressedSize !== 0) throw notAZip(`directory entry ${showName(name)} has content`);
  if (segments.length === 0) {
    if (isDirectory) return null;
    throw unsafePath(name, 'an empty name');
  }
  return {
    name: segments.join('/'),
    isDirectory,
    compressedSize: zipEntry.compressedSize,
    uncompressedSize: zipEntry.uncompressedSize,
    segments,
    executable: zipEntry.unixMode !== null && (zipEntry.unixMode & 0o111) !== 0,
    zip: zipEntry,
  };
}

function unsafePath(name: string, why: string): PackageError {
  return new PackageError(
    'UNSAFE_PATH',
    `entry ${showName(name)} has an unsafe path (${why}) — entry names must be relative paths inside the archive; zip the function folder from inside it with ${ZIP_COMMAND}`,
  );
}

/**
 * Splits a name into path segments, refusing anything that could land outside the destination: absolute
 * paths, drive letters, `..`, and backslashes (a separator on Windows, so `..\x` is a traversal there and
 * an ambiguous name here). `.` and empty segments are dropped so `a/./b` and `a//b` both mean `a/b`.
 */
function safeSegments(name: string): string[] {
  if (name.includes('\0')) throw unsafePath(name, 'a NUL character');
  if (name.includes('\\')) throw unsafePath(name, 'a backslash');
  if (name.startsWith('/')) throw unsafePath(name, 'an absolute path');
  if (/^[A-Za-z]:/.test(name)) throw unsafePath(name, 'a drive letter');
  const segments = name.split('/');
  if (segments.includes('..')) throw unsafePath(name, 'a `..` segment');
  return segments.filter((segment) => segment !== '' && segment !== '.');
}

/** Only regular files and directories are extracted; links could point anywhere on the host. */
function checkFileType(name: string, type: number): void {
  if (type === 0 || type === S_IFREG || type === S_IFDIR) return;
  if (type === S_IFLNK) {
    throw new PackageError(
      'LINK_ENTRY',
      `entry ${showName(name)} is a symbolic link, which the platform does not extract — put the real file in its place, or zip without \`-y\` so that zip stores the file the link points to`,
    );
  }
  const kind = SPECIAL_TYPES[type] ?? 'a special file';
  throw new PackageError('SPECIAL_ENTRY', `entry ${showName(name)} is ${kind}, not a regular file — remove it from the folder and zip again`);
}

function checkReadable(entry: ZipEntry): void {
  if (entry.flags & FLAG_ENCRYPTED) {
    throw new PackageError(
      'ENCRYPTED',
      `entry ${showName(entry.name)} is encrypted — the platform cannot read password-protected archives; zip again without a password (no \`-e\` or \`-P\`), e.g. ${ZIP_COMMAND}`,
    );
  }
  if (entry.method !== METHOD_STORED && entry.method !== METHOD_DEFLATE) {
    throw new PackageError(
      'UNSUPPORTED_COMPRESSION',
      `entry ${showName(entry.name)} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported — zip again with ${ZIP_COMMAND}, which uses deflate`,
    );
  }
  // Checked after encryption: an encrypted stored entry carries a 12-byte header on top of its data.
  if (entry.method === METHOD_STORED && entry.compressedSize !== entry.uncompressedSize) {
    throw notAZip(`stored entry ${showName(entry.name)} has inconsistent sizes`);
  }
}

/** Compares declared sizes; extraction re-checks the real output, since declared sizes can lie. */
function checkRatio(entry: ZipEntry, limits: PackageLimits): void {
  if (entry.uncompressedSize <= RATIO_THRESHOLD_BYTES) return;
  // Multiplication rather than division: a compressed size of 0 must count as an infinite ratio.
  if (entry.uncompressedSize <= entry.compressedSize * limits.maxCompressionRatio) return;
  const ratio = entry.compressedSize === 0 ? 'infinitely' : `${Math.round(entry.uncompressedSize / entry.compressedSize)}×`;
  throw new PackageError(
    'ZIP_BOMB',
    `entry ${showName(entry.name)} expands ${ratio} (${entry.compressedSize} → ${entry.uncompressedSize} bytes), over the limit of ${limits.maxCompressionRatio}× for entries over ${mib(RATIO_THRESHOLD_BYTES)}; this looks like a zip bomb — if the file is genuine, store it uncompressed (\`zip -0\`) or generate it when the function runs`,
  );
}

/**
 * Two entries for one path would make extraction depend on order (the later one fails on O_EXCL); a file
 * that is also the parent of another entry cannot be extracted at all.
 */
function checkUniquePaths(entries: CheckedEntry[]): void {
  const kinds = new Map<string, boolean>();
  for (const entry of entries) {
    if (kinds.has(entry.name)) {
      throw new PackageError(
        'DUPLICATE_ENTRY',
        `entry ${showName(entry.name)} appears more than once in the archive — build a fresh archive (\`rm -f function.zip && zip -r function.zip .\`) instead of adding to an old one`,
      );
    }
    kinds.set(entry.name, entry.isDirectory);
  }
  for (const entry of entries) {
    for (let depth = 1; depth < entry.segments.length; depth++) {
      const parent = entry.segments.slice(0, depth).join('/');
      if (kinds.get(parent) === false) {
        throw new PackageError(
          'DUPLICATE_ENTRY',
          `entry ${showName(entry.name)} needs ${showName(parent)} to be a folder, but the archive also has a file ${showName(parent)} — rename one of them and zip again`,
        );
      }
    }
  }
}

function checkEntrypoint(entries: CheckedEntry[], runtime: RuntimeName, entrypoint: string): void {
  if (entries.some((entry) => !entry.isDirectory && entry.name === entrypoint)) return;
  const nested = entries
    .filter((entry) => !entry.isDirectory && entry.segments.at(-1) === entrypoint)
    .sort((a, b) => a.segments.length - b.segments.length || a.name.localeCompare(b.name))[0];
  if (nested) {
    const folder = nested.segments.slice(0, -1);
    const up = folder.map(() => '..').join('/');
    throw new PackageError(
      'MISSING_ENTRYPOINT',
      `the ${runtime} runtime needs \`${entrypoint}\` at the archive root, but it is at \`${nested.name}\` — zip from inside that folder: \`cd ${shellQuote(folder.join('/'))} && zip -r ${up}/function.zip .\``,
    );
  }
  throw new PackageError(
    'MISSING_ENTRYPOINT',
    `the ${runtime} runtime needs \`${entrypoint}\` at the archive root, and the archive has none — add \`${entrypoint}\` (the file the runtime runs) and zip from the folder that holds it: ${ZIP_COMMAND}`,
  );
}

/** Quotes a folder name for the suggested shell command only when it needs it. */
function shellQuote(text: string): string {
  return /^[\w./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

function mib(bytes: number): string {
  return `${+(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}
