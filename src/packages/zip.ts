/**
 * A minimal reader for the ZIP format (PKWARE APPNOTE 6.3): the end records, the central directory and the
 * local headers, nothing else. It knows no policy (limits, names, entrypoints: see inspect.ts); it only
 * refuses structures it cannot trust, with ZipFormatError.
 *
 * Every offset read from the archive is attacker-controlled: each read goes through `need()` so that a
 * lying offset or size becomes a ZipFormatError, never an out-of-range read or a silently short slice.
 */
import * as zlib from 'node:zlib';

/** The archive is not a ZIP, is truncated, or is internally inconsistent. `message` says what was wrong. */
export class ZipFormatError extends Error {
  override name = 'ZipFormatError';
}

/** One central directory record, with sizes already resolved through the ZIP64 extra field. */
export interface ZipEntry {
  /** Name exactly as stored (decoded, not normalised): may be absolute, contain `..`, backslashes or NUL. */
  name: string;
  /** General purpose bit flags; bit 0 = encrypted, bit 3 = sizes in a data descriptor, bit 11 = UTF-8 name. */
  flags: number;
  /** Compression method: 0 stored, 8 deflate; anything else is the caller's to refuse. */
  method: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  /** Where the entry's (compressed) data starts, read from its local header. */
  dataOffset: number;
  /** Unix st_mode (type and permission bits) when the archive was made on unix, else null. */
  unixMode: number | null;
}

/** What the end of central directory records (classic and ZIP64) say about the central directory. */
export interface ZipDirectoryLocation {
  entryCount: number;
  offset: number;
  size: number;
}

const SIG_LOCAL_HEADER = 0x04034b50;
const SIG_CENTRAL_HEADER = 0x02014b50;
const SIG_END = 0x06054b50;
const SIG_ZIP64_END = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;

const END_SIZE = 22;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_END_MIN_SIZE = 56;
const CENTRAL_HEADER_SIZE = 46;
const LOCAL_HEADER_SIZE = 30;
const MAX_COMMENT = 0xffff;
const ZIP64_EXTRA_ID = 0x0001;
const HOST_UNIX = 3;
const FLAG_UTF8 = 0x0800;

/** Throws unless `length` bytes starting at `offset` lie inside the buffer. */
function need(buf: Buffer, offset: number, length: number, what: string): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > buf.length) {
    throw new ZipFormatError(`${what} lies outside the file`);
  }
}

/** Reads a 64-bit size or offset; values beyond 2^53 cannot be real for a Buffer-held archive. */
function readUint64(buf: Buffer, offset: number, what: string): number {
  const value = buf.readBigUInt64LE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipFormatError(`${what} is implausibly large`);
  return Number(value);
}

/**
 * Finds the end of central directory record by scanning backwards: it is followed only by the archive
 * comment (up to 65535 bytes), so a long comment must not make us give up. A candidate counts only if its
 * comment length reaches exactly the end of the file, which skips `PK\5\6` bytes that happen to sit in data.
 */
function findEnd(buf: Buffer): number {
  const lowest = Math.max(0, buf.length - END_SIZE - MAX_COMMENT);
  for (let pos = buf.length - END_SIZE; pos >= lowest; pos--) {
    if (buf.readUInt32LE(pos) !== SIG_END) continue;
    if (pos + END_SIZE + buf.readUInt16LE(pos + 20) === buf.length) return pos;
  }
  throw new ZipFormatError('no end of central directory record');
}

/** Reads the ZIP64 end record through its locator, which sits right before the classic end record. */
function readZip64End(buf: Buffer, locatorPos: number): ZipDirectoryLocation & { recordPos: number } {
  const recordPos = readUint64(buf, locatorPos + 8, 'ZIP64 end record offset');
  need(buf, recordPos, ZIP64_END_MIN_SIZE, 'ZIP64 end record');
  if (buf.readUInt32LE(recordPos) !== SIG_ZIP64_END) throw new ZipFormatError('bad ZIP64 end record signature');
  const recordEnd = recordPos + 12 + readUint64(buf, recordPos + 4, 'ZIP64 end record size');
  if (recordEnd !== locatorPos) throw new ZipFormatError('ZIP64 end record does not reach its locator');
  if (buf.readUInt32LE(locatorPos + 4) !== 0 || buf.readUInt32LE(recordPos + 16) !== 0 || buf.readUInt32LE(recordPos + 20) !== 0) {
    throw new ZipFormatError('multi-disk (split) archives are not supported');
  }
  const onThisDisk = readUint64(buf, recordPos + 24, 'ZIP64 entry count');
  const entryCount = readUint64(buf, recordPos + 32, 'ZIP64 entry count');
  if (onThisDisk !== entryCount) throw new ZipFormatError('multi-disk (split) archives are not supported');
  return {
    entryCount,
    size: readUint64(buf, recordPos + 40, 'central directory size'),
    offset: readUint64(buf, recordPos + 48, 'central directory offset'),
    recordPos,
  };
}

/** Locates the central directory (classic or ZIP64) and checks it sits exactly before the end records. */
export function locateCentralDirectory(buf: Buffer): ZipDirectoryLocation {
  const endPos = findEnd(buf);
  const locatorPos = endPos - ZIP64_LOCATOR_SIZE;
  if (locatorPos >= 0 && buf.readUInt32LE(locatorPos) === SIG_ZIP64_LOCATOR) {
    const { recordPos, ...location } = readZip64End(buf, locatorPos);
    return checkDirectoryBounds(buf, location, recordPos);
  }
  if (buf.readUInt16LE(endPos + 4) !== 0 || buf.readUInt16LE(endPos + 6) !== 0) {
    throw new ZipFormatError('multi-disk (split) archives are not supported');
  }
  const entryCount = buf.readUInt16LE(endPos + 10);
  if (buf.readUInt16LE(endPos + 8) !== entryCount) throw new ZipFormatError('multi-disk (split) archives are not supported');
  const location = { entryCount, size: buf.readUInt32LE(endPos + 12), offset: buf.readUInt32LE(endPos + 16) };
  return checkDirectoryBounds(buf, location, endPos);
}

/**
 * The central directory must end exactly where the end records start: a gap or overlap means a truncated
 * file, data prepended to the archive (offsets then point to the wrong bytes) or a forged directory.
 */
function checkDirectoryBounds(buf: Buffer, location: ZipDirectoryLocation, directoryEnd: number): ZipDirectoryLocation {
  need(buf, location.offset, location.size, 'central directory');
  if (location.offset + location.size !== directoryEnd) throw new ZipFormatError('central directory size or offset is inconsistent');
  // Cheap sanity bound before anyone loops over entryCount: each record takes at least 46 bytes.
  if (location.entryCount * CENTRAL_HEADER_SIZE > location.size) throw new ZipFormatError('entry count exceeds the central directory');
  return location;
}

/** Reads every central directory record and its local header; entries are returned in directory order. */
export function readCentralDirectory(buf: Buffer, location: ZipDirectoryLocation): ZipEntry[] {
  const entries: ZipEntry[] = [];
  let pos = location.offset;
  const end = location.offset + location.size;
  for (let i = 0; i < location.entryCount; i++) {
    const { entry, next } = readCentralRecord(buf, pos, end);
    entries.push(entry);
    pos = next;
  }
  if (pos !== end) throw new ZipFormatError('central directory holds more than its entry count says');
  checkNoOverlap(entries, location.offset);
  return entries;
}

function readCentralRecord(buf: Buffer, pos: number, directoryEnd: number): { entry: ZipEntry; next: number } {
  need(buf, pos, CENTRAL_HEADER_SIZE, 'central directory record');
  if (buf.readUInt32LE(pos) !== SIG_CENTRAL_HEADER) throw new ZipFormatError('bad central directory record signature');
  const nameLength = buf.readUInt16LE(pos + 28);
  const extraLength = buf.readUInt16LE(pos + 30);
  const commentLength = buf.readUInt16LE(pos + 32);
  const next = pos + CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
  if (next > directoryEnd) throw new ZipFormatError('central directory record overruns the directory');

  const madeBy = buf.readUInt16LE(pos + 4);
  const flags = buf.readUInt16LE(pos + 8);
  const nameStart = pos + CENTRAL_HEADER_SIZE;
  const extra = buf.subarray(nameStart + nameLength, nameStart + nameLength + extraLength);
  const sizes = resolveZip64(extra, {
    uncompressedSize: buf.readUInt32LE(pos + 24),
    compressedSize: buf.readUInt32LE(pos + 20),
    localHeaderOffset: buf.readUInt32LE(pos + 42),
    diskStart: buf.readUInt16LE(pos + 34),
  });
  if (sizes.diskStart !== 0) throw new ZipFormatError('multi-disk (split) archives are not supported');
  const entry: ZipEntry = {
    name: decodeName(buf.subarray(nameStart, nameStart + nameLength), flags),
    flags,
    method: buf.readUInt16LE(pos + 10),
    crc32: buf.readUInt32LE(pos + 16),
    compressedSize: sizes.compressedSize,
    uncompressedSize: sizes.uncompressedSize,
    localHeaderOffset: sizes.localHeaderOffset,
    dataOffset: 0,
    unixMode: madeBy >> 8 === HOST_UNIX ? buf.readUInt32LE(pos + 38) >>> 16 : null,
  };
  entry.dataOffset = locateData(buf, entry);
  return { entry, next };
}

interface RecordSizes {
  uncompressedSize: number;
  compressedSize: number;
  localHeaderOffset: number;
  diskStart: number;
}

/**
 * Replaces the 0xFFFFFFFF (0xFFFF for the disk) placeholders with the ZIP64 extra field values. The field
 * holds ONLY the values whose placeholder is set, always in this order: uncompressed, compressed, offset, disk.
 */
function resolveZip64(extra: Buffer, sizes: RecordSizes): RecordSizes {
  const wanted = [
    sizes.uncompressedSize === 0xffffffff,
    sizes.compressedSize === 0xffffffff,
    sizes.localHeaderOffset === 0xffffffff,
    sizes.diskStart === 0xffff,
  ];
  if (!wanted.includes(true)) return sizes;
  const field = findExtraField(extra, ZIP64_EXTRA_ID);
  if (!field) throw new ZipFormatError('ZIP64 sizes announced but the ZIP64 extra field is missing');
  const resolved = { ...sizes };
  let at = 0;
  const take64 = (what: string): number => {
    if (at + 8 > field.length) throw new ZipFormatError('ZIP64 extra field is too short');
    const value = readUint64(field, at, what);
    at += 8;
    return value;
  };
  if (wanted[0]) resolved.uncompressedSize = take64('uncompressed size');
  if (wanted[1]) resolved.compressedSize = take64('compressed size');
  if (wanted[2]) resolved.localHeaderOffset = take64('local header offset');
  if (wanted[3]) {
    if (at + 4 > field.length) throw new ZipFormatError('ZIP64 extra field is too short');
    resolved.diskStart = field.readUInt32LE(at);
  }
  return resolved;
}

/** Returns the data of the first extra field with this id. Stops at a malformed tail (some tools pad). */
function findExtraField(extra: Buffer, id: number): Buffer | null {
  let pos = 0;
  while (pos + 4 <= extra.length) {
    const size = extra.readUInt16LE(pos + 2);
    if (pos + 4 + size > extra.length) return null;
    if (extra.readUInt16LE(pos) === id) return extra.subarray(pos + 4, pos + 4 + size);
    pos += 4 + size;
  }
  return null;
}

/**
 * Reads the local header only for its signature and the length of its own name and extra field, which
 * may differ from the central directory's; sizes come from the central directory, which is authoritative
 * (with bit 3 set the local sizes are zero).
 */
function locateData(buf: Buffer, entry: ZipEntry): number {
  need(buf, entry.localHeaderOffset, LOCAL_HEADER_SIZE, `local header of ${JSON.stringify(entry.name)}`);
  if (buf.readUInt32LE(entry.localHeaderOffset) !== SIG_LOCAL_HEADER) {
    throw new ZipFormatError(`bad local header signature for ${JSON.stringify(entry.name)}`);
  }
  const dataOffset = entry.localHeaderOffset + LOCAL_HEADER_SIZE
    + buf.readUInt16LE(entry.localHeaderOffset + 26) + buf.readUInt16LE(entry.localHeaderOffset + 28);
  need(buf, dataOffset, entry.compressedSize, `data of ${JSON.stringify(entry.name)}`);
  return dataOffset;
}

/**
 * Entry data must lie before the central directory and no two entries may share bytes. Overlapping
 * entries are how "non-recursive" zip bombs reuse one compressed kernel thousands of times.
 */
function checkNoOverlap(entries: ZipEntry[], directoryOffset: number): void {
  const byOffset = [...entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  let previousEnd = 0;
  for (const entry of byOffset) {
    if (entry.localHeaderOffset < previousEnd) throw new ZipFormatError(`entry ${JSON.stringify(entry.name)} overlaps another entry`);
    previousEnd = entry.dataOffset + entry.compressedSize;
    if (previousEnd > directoryOffset) throw new ZipFormatError(`data of ${JSON.stringify(entry.name)} runs into the central directory`);
  }
}

/** The entry's raw (still compressed) bytes; a view into the archive, not a copy. */
export function entryData(buf: Buffer, entry: ZipEntry): Buffer {
  return buf.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize);
}

// Code page 437, bytes 0x80-0xFF: the ZIP default when bit 11 is unset (old Windows tools).
const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Names flagged UTF-8 are UTF-8. Unflagged names are CP437 by the spec, but Linux and macOS tools write
 * UTF-8 bytes without the flag, so valid UTF-8 wins and CP437 is the fallback. A flagged name with
 * invalid UTF-8 is corrupt: decoding it leniently would let two byte-different names collapse into one.
 */
function decodeName(bytes: Buffer, flags: number): string {
  try {
    return utf8.decode(bytes);
  } catch {
    if (flags & FLAG_UTF8) throw new ZipFormatError('entry name is not valid UTF-8');
    return Array.from(bytes, (b) => (b < 0x80 ? String.fromCharCode(b) : CP437_HIGH.charAt(b - 0x80))).join('');
  }
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO-HDLC, as ZIP uses), continuing from `value`. zlib.crc32 exists from Node 20.15 / 22.2. */
export function crc32(data: Uint8Array, value = 0): number {
  return typeof zlib.crc32 === 'function' ? zlib.crc32(data, value) : tableCrc32(data, value);
}

/** Byte-at-a-time table CRC-32 for Node versions without zlib.crc32; exported so tests cover it. */
export function tableCrc32(data: Uint8Array, value = 0): number {
  crcTable ??= buildCrcTable();
  let crc = ~value >>> 0;
  for (const byte of data) crc = (crcTable[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return ~crc >>> 0;
}

function buildCrcTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}
