/**
 * A hand-made ZIP writer for archives that `zip` refuses to produce: lying sizes, links, devices, unsafe
 * names, overlapping entries, ZIP64 structures, long comments. For tests only.
 */
import * as zlib from 'node:zlib';
import { crc32 } from '../../src/packages/zip.ts';

export interface RawEntry {
  name: string;
  /** Uncompressed content; default empty. */
  data?: Buffer;
  /** 0 stored, 8 deflate (default); any other number writes `data` as-is under that method. */
  method?: number;
  flags?: number;
  /** Unix st_mode; when set, "version made by" says unix and the mode goes in the external attributes. */
  unixMode?: number;
  /** Lie about the uncompressed size. */
  declaredSize?: number;
  crc?: number;
  /** Raw entry data to write instead of compressing `data`. */
  compressed?: Buffer;
  /** Point this entry's central record at another entry's local header (overlap). */
  reuseOffsetOf?: number;
}

export interface RawOptions {
  comment?: Buffer;
  /** Write ZIP64 structures: size/offset placeholders with the ZIP64 extra field, ZIP64 end record and locator. */
  zip64?: boolean;
}

const MAX32 = 0xffffffff;

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
function u64(value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(value));
  return b;
}

export function buildZip(entries: RawEntry[], options: RawOptions = {}): Buffer {
  const zip64 = options.zip64 ?? false;
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  const offsets: number[] = [];
  let offset = 0;
  for (const entry of entries) {
    const data = entry.data ?? Buffer.alloc(0);
    const method = entry.method ?? 8;
    const body = entry.compressed ?? (method === 8 ? zlib.deflateRawSync(data) : data);
    const crc = entry.crc ?? crc32(data);
    const size = entry.declaredSize ?? data.length;
    const name = Buffer.from(entry.name, 'utf8');
    const headerOffset = entry.reuseOffsetOf === undefined ? offset : (offsets[entry.reuseOffsetOf] ?? 0);
    const extra = zip64 ? Buffer.concat([u16(1), u16(24), u64(size), u64(body.length), u64(headerOffset)]) : Buffer.alloc(0);
    const common = Buffer.concat([
      u16(zip64 ? 45 : 20), u16(entry.flags ?? 0), u16(method), u16(0), u16(0), u32(crc),
      u32(zip64 ? MAX32 : body.length), u32(zip64 ? MAX32 : size), u16(name.length), u16(extra.length),
    ]);
    const local = Buffer.concat([u32(0x04034b50), common, name, extra, body]);
    const madeBy = entry.unixMode === undefined ? 20 : (3 << 8) | 30;
    const central = Buffer.concat([
      u32(0x02014b50), u16(madeBy), common, u16(0), u16(0), u16(0),
      u32((entry.unixMode ?? 0) * 0x10000), u32(zip64 ? MAX32 : headerOffset), name, extra,
    ]);
    offsets.push(offset);
    if (entry.reuseOffsetOf === undefined) {
      locals.push(local);
      offset += local.length;
    }
    centrals.push(central);
  }
  const directory = Buffer.concat(centrals);
  const comment = options.comment ?? Buffer.alloc(0);
  const tail: Buffer[] = [];
  if (zip64) {
    const recordOffset = offset + directory.length;
    tail.push(
      u32(0x06064b50), u64(44), u16(45), u16(45), u32(0), u32(0),
      u64(entries.length), u64(entries.length), u64(directory.length), u64(offset),
      u32(0x07064b50), u32(0), u64(recordOffset), u32(1),
    );
  }
  tail.push(
    u32(0x06054b50), u16(0), u16(0),
    u16(zip64 ? 0xffff : entries.length), u16(zip64 ? 0xffff : entries.length),
    u32(zip64 ? MAX32 : directory.length), u32(zip64 ? MAX32 : offset), u16(comment.length), comment,
  );
  return Buffer.concat([...locals, directory, ...tail]);
}

/** Deflates `size` zero bytes as a stream, so the test never holds the uncompressed bomb in memory. */
export async function deflatedZeros(size: number): Promise<Buffer> {
  const deflater = zlib.createDeflateRaw({ level: 9 });
  const chunks: Buffer[] = [];
  deflater.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<void>((resolve, reject) => {
    deflater.on('end', resolve);
    deflater.on('error', reject);
  });
  const block = Buffer.alloc(1024 * 1024);
  for (let left = size; left > 0; left -= block.length) {
    const part = left >= block.length ? block : block.subarray(0, left);
    if (!deflater.write(part)) await new Promise((resolve) => deflater.once('drain', resolve));
  }
  deflater.end();
  await done;
  return Buffer.concat(chunks);
}
