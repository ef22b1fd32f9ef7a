/**
 * A minimal ZIP writer (PKWARE APPNOTE 6.3): stored or deflated entries, UTF-8 names, unix modes, no ZIP64.
 * Enough for function packages, which the platform caps far below ZIP64 sizes; bigger input is refused.
 */
import { deflateRawSync } from 'node:zlib';
import { crc32 } from '../packages/zip.ts';

export interface ZipInput {
  /** Relative path with `/` separators; a folder ends with `/`. */
  name: string;
  /** File content; absent for folders. */
  data?: Buffer;
  /** Permission bits (e.g. 0o755); the file type bits are added here. */
  mode: number;
  mtime: Date;
}

/** Tells the writer to store an entry when deflate would shrink it more than this: see `chooseMethod`. */
export interface ZipWriterOptions {
  maxCompressionRatio: number;
}

const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;
const FLAG_UTF8 = 0x0800;
const VERSION_NEEDED = 20;
const MADE_BY_UNIX = (3 << 8) | 30;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const MSDOS_DIRECTORY = 0x10;
const MAX_16 = 0xffff;
const MAX_32 = 0xffffffff;
/** Same threshold as the server's ratio check: smaller entries may compress as well as they like. */
const RATIO_THRESHOLD_BYTES = 1024 * 1024;

/** Builds the whole archive in memory, entries in the order given. */
export function writeZip(inputs: ZipInput[], options: ZipWriterOptions): Buffer {
  if (inputs.length > MAX_16) throw new Error(`${inputs.length} entries is more than a ZIP without ZIP64 holds (${MAX_16})`);
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const input of inputs) {
    const isDirectory = input.name.endsWith('/');
    const data = isDirectory ? Buffer.alloc(0) : (input.data ?? Buffer.alloc(0));
    const { method, body } = chooseMethod(data, options);
    if (data.length > MAX_32 || offset + body.length > MAX_32) throw new Error(`the archive would pass 4 GiB at ${JSON.stringify(input.name)}`);
    const name = Buffer.from(input.name, 'utf8');
    const { time, date } = dosDateTime(input.mtime);
    const common = Buffer.alloc(26);
    common.writeUInt16LE(VERSION_NEEDED, 0);
    common.writeUInt16LE(FLAG_UTF8, 2);
    common.writeUInt16LE(method, 4);
    common.writeUInt16LE(time, 6);
    common.writeUInt16LE(date, 8);
    common.writeUInt32LE(crc32(data), 10);
    common.writeUInt32LE(body.length, 14);
    common.writeUInt32LE(data.length, 18);
    common.writeUInt16LE(name.length, 22);
    common.writeUInt16LE(0, 24); // extra field length
    const local = Buffer.concat([u32(0x04034b50), common, name, body]);

    const unixMode = (isDirectory ? S_IFDIR : S_IFREG) | (input.mode & 0o7777);
    const tail = Buffer.alloc(14);
    tail.writeUInt16LE(0, 0); // comment length
    tail.writeUInt16LE(0, 2); // disk number
    tail.writeUInt16LE(0, 4); // internal attributes
    tail.writeUInt32LE(((unixMode << 16) | (isDirectory ? MSDOS_DIRECTORY : 0)) >>> 0, 6);
    tail.writeUInt32LE(offset, 10);
    centrals.push(Buffer.concat([u32(0x02014b50), u16(MADE_BY_UNIX), common, tail, name]));
    locals.push(local);
    offset += local.length;
  }
  const directory = Buffer.concat(centrals);
  if (offset + directory.length > MAX_32) throw new Error('the archive would pass 4 GiB');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(inputs.length, 8);
  end.writeUInt16LE(inputs.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/**
 * Deflate unless it does not help, or unless it helps so much that the server would take the entry for a
 * zip bomb (a big file of zeros is legitimate): then the entry is stored as it is.
 */
function chooseMethod(data: Buffer, options: ZipWriterOptions): { method: number; body: Buffer } {
  if (data.length === 0) return { method: METHOD_STORED, body: data };
  const deflated = deflateRawSync(data);
  if (deflated.length >= data.length) return { method: METHOD_STORED, body: data };
  if (data.length > RATIO_THRESHOLD_BYTES && data.length > deflated.length * options.maxCompressionRatio) return { method: METHOD_STORED, body: data };
  return { method: METHOD_DEFLATE, body: deflated };
}

/** MS-DOS date and time (local time, 2-second steps, 1980–2107), as ZIP headers carry them. */
function dosDateTime(when: Date): { time: number; date: number } {
  const year = Math.min(Math.max(when.getFullYear(), 1980), 2107);
  const clamped = year !== when.getFullYear();
  return {
    time: clamped ? 0 : (when.getHours() << 11) | (when.getMinutes() << 5) | (when.getSeconds() >> 1),
    date: clamped ? ((year - 1980) << 9) | (1 << 5) | 1 : ((year - 1980) << 9) | ((when.getMonth() + 1) << 5) | when.getDate(),
  };
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(value);
  return b;
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  return b;
}
