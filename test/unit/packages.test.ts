import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as zlib from 'node:zlib';
import { PackageError, type PackageErrorCode } from '../../src/packages/errors.ts';
import { extractPackage } from '../../src/packages/extract.ts';
import { DEFAULT_PACKAGE_LIMITS, inspectPackage, type PackageLimits } from '../../src/packages/inspect.ts';
import { crc32, tableCrc32 } from '../../src/packages/zip.ts';
import { buildZip, deflatedZeros, type RawEntry } from '../helpers/rawZip.ts';

// ---------------------------------------------------------------------------------------------------------
// Fixtures: a hand-made ZIP writer (test/helpers/rawZip.ts, for archives `zip` refuses to produce) and the real `zip` CLI.
// ---------------------------------------------------------------------------------------------------------

let work = '';

/** A fresh directory under the test's temp folder. */
function scratch(label: string): string {
  return mkdtempSync(path.join(work, `${label}-`));
}

/** Writes `files` (path → content) under a new folder; paths ending in '/' are empty folders. */
function folder(files: Record<string, string>): string {
  const dir = scratch('src');
  for (const [name, content] of Object.entries(files)) {
    const full = path.join(dir, name);
    if (name.endsWith('/')) {
      mkdirSync(full, { recursive: true });
      continue;
    }
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, content);
  }
  return dir;
}

/** Runs the real `zip` in `cwd` with `args` (the archive is written to function.zip there) and returns its bytes. */
function zipCli(cwd: string, args: string[], input?: string): Buffer {
  rmSync(path.join(cwd, 'function.zip'), { force: true });
  execFileSync('zip', ['-q', ...args], { cwd, input, stdio: ['pipe', 'ignore', 'inherit'] });
  return readFileSync(path.join(cwd, 'function.zip'));
}

function isRefusal(err: unknown, code: PackageErrorCode, fragments: (string | RegExp)[]): true {
  assert.ok(err instanceof PackageError, `expected a PackageError, got ${String(err)}`);
  assert.equal(err.name, 'PackageError');
  assert.equal(err.code, code, err.message);
  for (const fragment of fragments) {
    if (typeof fragment === 'string') assert.ok(err.message.includes(fragment), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(fragment)}`);
    else assert.match(err.message, fragment);
  }
  return true;
}

function assertRefused(zip: Buffer, code: PackageErrorCode, fragments: (string | RegExp)[], limits?: PackageLimits): void {
  assert.throws(() => inspectPackage(zip, 'python', limits), (err) => isRefusal(err, code, fragments));
}

async function assertExtractRefused(zip: Buffer, dest: string, code: PackageErrorCode, fragments: (string | RegExp)[]): Promise<void> {
  await assert.rejects(extractPackage(zip, dest, 'python'), (err) => isRefusal(err, code, fragments));
}

const NOT_A_ZIP = ['not a ZIP archive', 'zip -r function.zip .'];
const MAIN = { name: 'main.py', data: Buffer.from('print("hi")\n') };

before(() => {
  work = mkdtempSync(path.join(tmpdir(), 'packages-test-'));
});
after(() => {
  rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------

describe('inspectPackage accepts', () => {
  test('an archive made by `zip -r function.zip .` and reports its entries', () => {
    const dir = folder({ 'main.py': 'print(1)\n', 'lib/util.py': 'X = 1\n', 'lib/data/': '' });
    const info = inspectPackage(zipCli(dir, ['-r', 'function.zip', '.']), 'python');
    assert.equal(info.entrypoint, 'main.py');
    assert.equal(info.fileCount, 2);
    assert.equal(info.uncompressedBytes, 'print(1)\n'.length + 'X = 1\n'.length);
    const names = info.entries.map((e) => `${e.name}${e.isDirectory ? '/' : ''}`).sort();
    assert.deepEqual(names, ['lib/', 'lib/data/', 'lib/util.py', 'main.py']);
  });

  test('an archive with a 60 000-character comment (zip -z)', () => {
    const dir = folder({ 'main.py': 'print(1)\n' });
    const plain = zipCli(dir, ['function.zip', 'main.py']);
    const commented = zipCli(dir, ['-z', 'function.zip', 'main.py'], 'x'.repeat(60_000));
    // Guard the test itself: zip must really have stored the long comment.
    assert.ok(commented.length - plain.length >= 60_000, `comment only ${commented.length - plain.length} bytes`);
    assert.equal(inspectPackage(commented, 'python').entrypoint, 'main.py');
  });

  test('an archive with the largest possible comment (65 535 bytes) that contains a fake end record', () => {
    const comment = Buffer.alloc(0xffff, 'c');
    comment.writeUInt32LE(0x06054b50, 100); // "PK\5\6" inside the comment must not be taken for the real record
    const info = inspectPackage(buildZip([MAIN], { comment }), 'python');
    assert.equal(info.fileCount, 1);
  });

  test('a ZIP64 archive written by `zip -fz`', () => {
    const dir = folder({ 'main.py': 'print(64)\n', 'lib/x.py': 'X = 64\n' });
    const zip = zipCli(dir, ['-fz', '-r', 'function.zip', '.']);
    assert.ok(zip.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'fixture lacks a ZIP64 end record');
    const info = inspectPackage(zip, 'python');
    assert.equal(info.uncompressedBytes, 'print(64)\n'.length + 'X = 64\n'.length);
  });

  test('a ZIP64 archive whose sizes and offsets all live in the ZIP64 extra field', () => {
    const zip = buildZip([MAIN, { name: 'data.txt', data: Buffer.from('abc') }], { zip64: true });
    const info = inspectPackage(zip, 'python');
    assert.deepEqual(info.entries.map((e) => [e.name, e.uncompressedSize]), [['main.py', MAIN.data.length], ['data.txt', 3]]);
  });

  test('a highly compressible file of at most 1 MiB (the ratio limit only applies above 1 MiB)', () => {
    const zip = buildZip([MAIN, { name: 'zeros.bin', data: Buffer.alloc(1024 * 1024) }]);
    assert.equal(inspectPackage(zip, 'python').fileCount, 2);
  });

  test('`./`-prefixed names, normalised', () => {
    const info = inspectPackage(buildZip([{ name: './' }, { ...MAIN, name: './main.py' }]), 'python');
    assert.deepEqual(info.entries.map((e) => e.name), ['main.py']);
  });

  test('the entrypoint of each runtime', () => {
    assert.equal(inspectPackage(buildZip([{ name: 'index.js', data: Buffer.from('1') }]), 'node').entrypoint, 'index.js');
    assert.equal(inspectPackage(buildZip([{ name: 'main.cpp', data: Buffer.from('int main(){}') }]), 'cpp').entrypoint, 'main.cpp');
  });
});

describe('inspectPackage refuses', () => {
  test('a text file: NOT_A_ZIP', () => {
    assertRefused(Buffer.from('def main():\n    print("this is not a zip")\n'), 'NOT_A_ZIP', NOT_A_ZIP);
    assertRefused(Buffer.alloc(0), 'NOT_A_ZIP', NOT_A_ZIP);
  });

  test('a ZIP cut in half: NOT_A_ZIP', () => {
    const dir = folder({ 'main.py': randomBytes(4000).toString('hex') });
    const zip = zipCli(dir, ['-r', 'function.zip', '.']);
    assertRefused(zip.subarray(0, Math.floor(zip.length / 2)), 'NOT_A_ZIP', NOT_A_ZIP);
  });

  test('a ZIP whose central directory points past the end: NOT_A_ZIP', () => {
    const zip = buildZip([MAIN]);
    zip.writeUInt32LE(0x7fff0000, zip.length - 6); // central directory offset in the end record
    assertRefused(zip, 'NOT_A_ZIP', [...NOT_A_ZIP, 'central directory']);
  });

  test('a ZIP with data prepended (offsets no longer match): NOT_A_ZIP', () => {
    assertRefused(Buffer.concat([Buffer.from('#!/bin/sh\n'), buildZip([MAIN])]), 'NOT_A_ZIP', NOT_A_ZIP);
  });

  test('a ZIP whose local header signature is damaged: NOT_A_ZIP', () => {
    const zip = buildZip([MAIN]);
    zip.write('XX', 0);
    assertRefused(zip, 'NOT_A_ZIP', [...NOT_A_ZIP, 'local header']);
  });

  test('a ZIP whose entries share their data (overlap bomb): NOT_A_ZIP', () => {
    const zip = buildZip([MAIN, { ...MAIN, name: 'copy.py', reuseOffsetOf: 0 }]);
    assertRefused(zip, 'NOT_A_ZIP', [...NOT_A_ZIP, 'overlaps']);
  });

  test('a ZIP64 entry whose extra field is missing: NOT_A_ZIP', () => {
    const zip = buildZip([MAIN], { zip64: true });
    // Turn the ZIP64 extra field id (0x0001) in the central record into an unknown id.
    const central = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    zip.writeUInt16LE(0x9999, central + 46 + 'main.py'.length);
    assertRefused(zip, 'NOT_A_ZIP', [...NOT_A_ZIP, 'ZIP64']);
  });

  test('the 22-byte empty archive: EMPTY_ARCHIVE', () => {
    const empty = Buffer.alloc(22);
    empty.writeUInt32LE(0x06054b50, 0);
    assertRefused(empty, 'EMPTY_ARCHIVE', ['the archive is empty', 'zip -r function.zip .']);
  });

  test('an archive of folders only: EMPTY_ARCHIVE', () => {
    assertRefused(buildZip([{ name: 'src/' }, { name: 'src/lib/' }]), 'EMPTY_ARCHIVE', ['the archive is empty', 'only folders', 'zip -r function.zip .']);
  });

  for (const [name, why] of [
    ['../evil.py', '`..` segment'],
    ['lib/../../evil.py', '`..` segment'],
    ['/abs.py', 'absolute path'],
    ['/etc/cron.d/x', 'absolute path'],
    ['C:/Windows/evil.py', 'drive letter'],
    ['C:evil.py', 'drive letter'],
    ['lib\\..\\evil.py', 'backslash'],
    ['evil\0.py', 'NUL'],
  ] as const) {
    test(`an entry named ${JSON.stringify(name)}: UNSAFE_PATH`, () => {
      const zip = buildZip([MAIN, { name, data: Buffer.from('x') }]);
      assertRefused(zip, 'UNSAFE_PATH', [JSON.stringify(name), why, 'zip -r function.zip .']);
    });
  }

  test('a symlink stored by `zip -y`: LINK_ENTRY', () => {
    const dir = folder({ 'main.py': 'print(1)\n' });
    symlinkSync('/etc/passwd', path.join(dir, 'passwd.txt'));
    const zip = zipCli(dir, ['-y', '-r', 'function.zip', '.']);
    assertRefused(zip, 'LINK_ENTRY', ['"passwd.txt"', 'symbolic link', 'without `-y`']);
  });

  test('a FIFO and a device: SPECIAL_ENTRY', () => {
    assertRefused(buildZip([MAIN, { name: 'pipe', unixMode: 0o010644 }]), 'SPECIAL_ENTRY', ['"pipe"', 'FIFO', 'remove it']);
    assertRefused(buildZip([MAIN, { name: 'null', unixMode: 0o020666 }]), 'SPECIAL_ENTRY', ['"null"', 'character device']);
  });

  test('more than 10 000 entries: TOO_MANY_ENTRIES', () => {
    const entries: RawEntry[] = [MAIN];
    for (let i = 0; i < DEFAULT_PACKAGE_LIMITS.maxEntries; i++) entries.push({ name: `f${i}`, method: 0 });
    assertRefused(buildZip(entries), 'TOO_MANY_ENTRIES', ['10001 entries', 'limit of 10000']);
    // Exactly at the limit is fine.
    assert.equal(inspectPackage(buildZip(entries.slice(0, 10_000)), 'python').entrypoint, 'main.py');
  });

  test('more entries than custom limits allow: TOO_MANY_ENTRIES', () => {
    const zip = buildZip([MAIN, { name: 'a' }, { name: 'b' }]);
    assertRefused(zip, 'TOO_MANY_ENTRIES', ['3 entries', 'limit of 2'], { ...DEFAULT_PACKAGE_LIMITS, maxEntries: 2 });
  });

  test('a declared total over 250 MiB: TOO_LARGE', () => {
    // 2 MB of random data deflates to ~2 MB, so declaring 300 MB stays under the 200× ratio: only the total trips.
    const random = randomBytes(2_000_000);
    const zip = buildZip([MAIN, { name: 'big.bin', compressed: zlib.deflateRawSync(random), declaredSize: 300_000_000 }]);
    assertRefused(zip, 'TOO_LARGE', ['limit of 262144000 bytes', '250 MiB', 'leave out']);
  });

  test('a total over custom limits: TOO_LARGE', () => {
    const zip = buildZip([MAIN, { name: 'a.txt', data: Buffer.alloc(600, 'a') }, { name: 'b.txt', data: Buffer.alloc(600, 'b') }]);
    assertRefused(zip, 'TOO_LARGE', [`unpacks to ${1200 + MAIN.data.length} bytes`, 'limit of 1000 bytes'], { ...DEFAULT_PACKAGE_LIMITS, maxUncompressedBytes: 1000 });
  });

  test('300 MB of deflated zeros: ZIP_BOMB', async () => {
    const size = 300_000_000;
    const zip = buildZip([MAIN, { name: 'zeros.bin', compressed: await deflatedZeros(size), crc: 0, declaredSize: size }]);
    assertRefused(zip, 'ZIP_BOMB', ['"zeros.bin"', 'limit of 200×', '1 MiB', 'zip bomb']);
    // Extraction refuses before touching the disk.
    const dest = path.join(scratch('bomb'), 'out');
    await assertExtractRefused(zip, dest, 'ZIP_BOMB', ['"zeros.bin"']);
    assert.equal(existsSync(dest), false);
  });

  test('a large entry with a compressed size of 0: ZIP_BOMB', () => {
    assertRefused(buildZip([MAIN, { name: 'x', compressed: Buffer.alloc(0), declaredSize: 2 * 1024 * 1024 }]), 'ZIP_BOMB', ['expands infinitely']);
  });

  test('a password-protected archive (`zip -P`): ENCRYPTED', () => {
    const dir = folder({ 'main.py': 'print("secret")\n' });
    assertRefused(zipCli(dir, ['-P', 'hunter2', 'function.zip', 'main.py']), 'ENCRYPTED', ['"main.py"', 'encrypted', 'without a password']);
  });

  test('LZMA (method 14): UNSUPPORTED_COMPRESSION', () => {
    const zip = buildZip([{ ...MAIN, method: 14 }]);
    assertRefused(zip, 'UNSUPPORTED_COMPRESSION', ['"main.py"', 'method 14', 'deflate (8)', 'zip -r function.zip .']);
  });

  test('an entrypoint inside a subfolder: MISSING_ENTRYPOINT, naming the folder and the fix', () => {
    const dir = folder({ 'myfunc/main.py': 'print(1)\n', 'myfunc/lib/util.py': '' });
    assertRefused(zipCli(dir, ['-r', 'function.zip', 'myfunc']), 'MISSING_ENTRYPOINT', [
      '`main.py` at the archive root',
      '`myfunc/main.py`',
      '`cd myfunc && zip -r ../function.zip .`',
    ]);
  });

  test('an entrypoint two folders down: MISSING_ENTRYPOINT with the right number of `..`', () => {
    assertRefused(buildZip([{ ...MAIN, name: 'a/b/main.py' }, { ...MAIN, name: 'a/b/c/main.py' }]), 'MISSING_ENTRYPOINT', [
      '`a/b/main.py`',
      '`cd a/b && zip -r ../../function.zip .`',
    ]);
  });

  test('no entrypoint at all: MISSING_ENTRYPOINT naming the runtime file', () => {
    const zip = buildZip([{ name: 'main.py', data: Buffer.from('print(1)') }]);
    assert.throws(() => inspectPackage(zip, 'node'), (err) => isRefusal(err, 'MISSING_ENTRYPOINT', ['node runtime', '`index.js`', 'has none']));
    // A folder named like the entrypoint is not the entrypoint.
    assertRefused(buildZip([{ name: 'main.py/' }, { name: 'main.py/x.txt', data: Buffer.from('x') }]), 'MISSING_ENTRYPOINT', ['`main.py`']);
  });

  test('the same name twice: DUPLICATE_ENTRY', () => {
    assertRefused(buildZip([MAIN, { name: 'util.py' }, { name: 'util.py' }]), 'DUPLICATE_ENTRY', ['"util.py"', 'more than once', 'rm -f function.zip']);
    // Names that differ only by `./` are the same file.
    assertRefused(buildZip([MAIN, { name: './main.py' }]), 'DUPLICATE_ENTRY', ['"main.py"']);
  });

  test('a file that is also a folder: DUPLICATE_ENTRY', () => {
    assertRefused(buildZip([MAIN, { name: 'lib' }, { name: 'lib/x.py' }]), 'DUPLICATE_ENTRY', ['"lib/x.py"', 'file "lib"']);
  });
});

describe('extractPackage', () => {
  test('extracts nested files with their contents, the exec bit and sizes', async () => {
    const files = {
      'main.py': 'import lib.util\nprint(lib.util.X)\n',
      'lib/__init__.py': '',
      'lib/util.py': 'X = 42\n',
      'lib/data/config.json': JSON.stringify({ a: 'b'.repeat(5000) }),
      'bin/run.sh': '#!/bin/sh\necho run\n',
      'empty/': '',
    };
    const dir = folder(files);
    chmodSync(path.join(dir, 'bin/run.sh'), 0o755);
    chmodSync(path.join(dir, 'main.py'), 0o600); // only the exec bit is carried over, not other permissions
    // -n .json stores JSON files uncompressed, so both methods are exercised.
    const zip = zipCli(dir, ['-r', '-n', '.json', 'function.zip', '.']);
    const dest = path.join(scratch('extract'), 'nested', 'out');
    // A strict umask must not change the modes: the platform promises 0644/0755 whatever the host's umask.
    const umask = process.umask(0o077);
    const result = await extractPackage(zip, dest, 'python').finally(() => process.umask(umask));

    const regular = Object.entries(files).filter(([name]) => !name.endsWith('/'));
    assert.equal(result.files, regular.length);
    assert.equal(result.bytes, regular.reduce((sum, [, content]) => sum + Buffer.byteLength(content), 0));
    for (const [name, content] of regular) assert.equal(readFileSync(path.join(dest, name), 'utf8'), content, name);
    assert.equal(statSync(path.join(dest, 'bin/run.sh')).mode & 0o777, 0o755);
    assert.equal(statSync(path.join(dest, 'main.py')).mode & 0o777, 0o644);
    assert.equal(statSync(path.join(dest, 'lib/util.py')).mode & 0o777, 0o644);
    assert.ok(statSync(path.join(dest, 'empty')).isDirectory());
    assert.equal(statSync(path.join(dest, 'lib/data')).mode & 0o777, 0o755);
    assert.deepEqual(readdirSync(dest).sort(), ['bin', 'empty', 'lib', 'main.py']);
  });

  test('extracts ZIP64 archives (zip -fz and hand-made)', async () => {
    const dir = folder({ 'main.py': 'print(64)\n' });
    const cliDest = scratch('zip64-cli');
    assert.deepEqual(await extractPackage(zipCli(dir, ['-fz', 'function.zip', 'main.py']), cliDest, 'python'), { files: 1, bytes: 10 });
    assert.equal(readFileSync(path.join(cliDest, 'main.py'), 'utf8'), 'print(64)\n');

    const handDest = scratch('zip64-hand');
    await extractPackage(buildZip([MAIN, { name: 'a/b.txt', data: Buffer.from('bee'), method: 0 }], { zip64: true }), handDest, 'python');
    assert.equal(readFileSync(path.join(handDest, 'a/b.txt'), 'utf8'), 'bee');
  });

  test('extracts a UTF-8 name', async () => {
    const dest = scratch('utf8');
    await extractPackage(buildZip([MAIN, { name: 'données/été.txt', data: Buffer.from('ok'), flags: 0x0800 }]), dest, 'python');
    assert.equal(readFileSync(path.join(dest, 'données', 'été.txt'), 'utf8'), 'ok');
  });

  test('stops an entry that inflates past its declared size (a lying header): ZIP_BOMB', async () => {
    const real = Buffer.alloc(2_000_000, 'a'); // deflates to ~2 KB; declared 1000 bytes, so the ratio check cannot see it
    const zip = buildZip([MAIN, { name: 'liar.txt', data: real, declaredSize: 1000 }]);
    assert.equal(inspectPackage(zip, 'python').uncompressedBytes, MAIN.data.length + 1000);
    const dest = scratch('liar');
    await assertExtractRefused(zip, dest, 'ZIP_BOMB', ['"liar.txt"', 'more than the 1000 bytes']);
    assert.ok(statSync(path.join(dest, 'liar.txt')).size <= 1000, 'wrote past the declared size');
  });

  test('refuses a CRC mismatch: CORRUPT_ENTRY', async () => {
    const zip = buildZip([{ ...MAIN, crc: 0xdeadbeef }]);
    await assertExtractRefused(zip, scratch('crc'), 'CORRUPT_ENTRY', ['"main.py"', 'CRC-32', 'zip -r function.zip .']);
    const stored = buildZip([{ ...MAIN, method: 0, crc: 0x12345678 }]);
    await assertExtractRefused(stored, scratch('crc-stored'), 'CORRUPT_ENTRY', ['CRC-32']);
  });

  test('refuses an entry shorter than declared, or with damaged deflate data: CORRUPT_ENTRY', async () => {
    const short = buildZip([{ ...MAIN, declaredSize: 5000 }]);
    await assertExtractRefused(short, scratch('short'), 'CORRUPT_ENTRY', ['instead of the declared 5000']);
    const damaged = buildZip([{ ...MAIN, compressed: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) }]);
    await assertExtractRefused(damaged, scratch('damaged'), 'CORRUPT_ENTRY', ['damaged']);
  });

  test('runs every inspectPackage check first (nothing written for an unsafe archive)', async () => {
    const dest = path.join(scratch('unsafe'), 'out');
    await assertExtractRefused(buildZip([MAIN, { name: '../evil.py', data: Buffer.from('x') }]), dest, 'UNSAFE_PATH', ['"../evil.py"']);
    assert.equal(existsSync(dest), false);
    assert.equal(existsSync(path.join(dest, '..', 'evil.py')), false);
  });

  test('never writes through a symlink already in the destination', async () => {
    const outside = scratch('outside');
    writeFileSync(path.join(outside, 'victim.txt'), 'original');
    const dest = scratch('planted');
    symlinkSync(path.join(outside, 'victim.txt'), path.join(dest, 'main.py'));
    await assert.rejects(extractPackage(buildZip([MAIN]), dest, 'python'), /EEXIST|ELOOP/);
    assert.equal(readFileSync(path.join(outside, 'victim.txt'), 'utf8'), 'original');

    const dest2 = scratch('planted-dir');
    symlinkSync(outside, path.join(dest2, 'lib'));
    await assert.rejects(extractPackage(buildZip([MAIN, { name: 'lib/evil.py', data: Buffer.from('x') }]), dest2, 'python'), /not a directory/);
    assert.deepEqual(readdirSync(outside), ['victim.txt']);
  });
});

describe('crc32', () => {
  test('matches the standard check value, native and table versions alike', () => {
    for (const fn of [crc32, tableCrc32]) {
      assert.equal(fn(Buffer.from('123456789')), 0xcbf43926);
      assert.equal(fn(Buffer.from('56789'), fn(Buffer.from('1234'))), 0xcbf43926);
      assert.equal(fn(Buffer.alloc(0)), 0);
    }
  });
});
