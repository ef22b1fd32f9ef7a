import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as zlib from 'node:zlib';
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { createS3Client } from '../../src/storage/s3.ts';
import { fromRedisFunctions } from '../../src/catalogue/functions.ts';
import { inspectPackage } from '../../src/packages/inspect.ts';
import { PackageError } from '../../src/packages/errors.ts';
import { startTestStack, upload, uploadZip, run, leftoverContainers, type TestStack } from './helpers.ts';
import { buildZip, deflatedZeros } from '../helpers/rawZip.ts';
import { makeZip } from '../helpers/zip.ts';

const MAIN = { name: 'main.py', data: Buffer.from('print("hello")\n') };
const GiB = 1024 * 1024 * 1024;

interface Catalogue {
  codeKeys: string[];
  functions: unknown;
}

/** Everything an upload could leave behind: every object in the code bucket and the catalogue listing. */
async function catalogueOf(stack: TestStack, s3: S3Client): Promise<Catalogue> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: stack.config.storage.codeBucket }));
  const res = await fetch(`${stack.url}/functions`);
  assert.equal(res.status, 200);
  return { codeKeys: (listed.Contents ?? []).map((o) => o.Key ?? '').sort(), functions: await res.json() };
}

/** POST /upload with exactly these fields (and a file only when given). */
async function postForm(url: string, fields: Record<string, string>, file?: Buffer) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.set(k, v);
  if (file) form.set('file', new Blob([new Uint8Array(file)]), 'function.zip');
  const res = await fetch(`${url}/upload`, { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } };
}

/** The refusal inspectPackage gives: what the server must answer, word for word. */
function packageVerdict(zip: Buffer, runtime: 'python' | 'node' = 'python'): { code: string; message: string } {
  try {
    inspectPackage(zip, runtime);
  } catch (err) {
    assert.ok(err instanceof PackageError);
    return { code: err.code, message: err.message };
  }
  assert.fail('inspectPackage accepted the archive');
}

/** Streams 1 GiB of zeros through CRC-32 without holding it: the bomb's header tells the truth. */
function crcOfZeros(size: number): number {
  const block = Buffer.alloc(1024 * 1024);
  let crc = 0;
  for (let left = size; left > 0; left -= block.length) crc = zlib.crc32(left >= block.length ? block : block.subarray(0, left), crc);
  return crc;
}

describe('bad packages at POST /upload (real stack): 400 with what is wrong and how to fix it, nothing stored', () => {
  let stack: TestStack;
  let s3: S3Client;
  let work: string;
  before(async () => {
    stack = await startTestStack();
    s3 = createS3Client(stack.config.aws);
    work = mkdtempSync(path.join(tmpdir(), 'ng-packages-'));
    // One function already there, so "unchanged" is checked against a catalogue that is not empty.
    const res = await upload(stack.url, { 'main.py': 'print("already here")\n' }, { runtime: 'python', name: 'resident' });
    assert.equal(res.status, 201);
  });
  after(async () => {
    s3.destroy();
    rmSync(work, { recursive: true, force: true });
    const workerId = stack.worker.workerId;
    await stack.dispose();
    assert.deepEqual(await leftoverContainers(workerId), [], 'no container may outlive the stack');
  });

  /** Uploads `zip` under a fresh name and checks the refusal, then that the bucket and catalogue did not change. */
  async function assertRefused(zip: Buffer, expected: { status?: number; code: string; fragments: (string | RegExp)[] }, fields: Record<string, string> = { runtime: 'python' }) {
    const before = await catalogueOf(stack, s3);
    const res = await uploadZip(stack.url, zip, { name: `refused-${randomBytes(3).toString('hex')}`, ...fields });
    assert.equal(res.status, expected.status ?? 400, JSON.stringify(res.body));
    assert.equal(res.body.error?.code, expected.code, res.body.error?.message);
    const message = res.body.error?.message ?? '';
    for (const fragment of expected.fragments) {
      if (typeof fragment === 'string') assert.ok(message.includes(fragment), `message ${JSON.stringify(message)} lacks ${JSON.stringify(fragment)}`);
      else assert.match(message, fragment);
    }
    assert.deepEqual(await catalogueOf(stack, s3), before, 'a refused upload stores nothing');
    return message;
  }

  it('an empty ZIP (22 bytes, no entries): EMPTY_ARCHIVE', async () => {
    const empty = buildZip([]);
    assert.equal(empty.length, 22);
    const message = await assertRefused(empty, { code: 'EMPTY_ARCHIVE', fragments: ['the archive is empty', 'zip -r function.zip .'] });
    assert.equal(message, packageVerdict(empty).message);
  });

  it('the entrypoint in a subfolder: MISSING_ENTRYPOINT naming the folder and the command to zip from inside it', async () => {
    const zip = makeZip({ 'my-function/main.py': 'print(1)\n', 'my-function/lib/util.py': 'X = 1\n' });
    await assertRefused(zip, { code: 'MISSING_ENTRYPOINT', fragments: ['needs `main.py` at the archive root', 'it is at `my-function/main.py`', '`cd my-function && zip -r ../function.zip .`'] });
  });

  it('no entrypoint at all: MISSING_ENTRYPOINT naming the file the runtime expects', async () => {
    const zip = makeZip({ 'app.py': 'print(1)\n' });
    await assertRefused(zip, { code: 'MISSING_ENTRYPOINT', fragments: ['the python runtime needs `main.py` at the archive root, and the archive has none'] });
    await assertRefused(zip, { code: 'MISSING_ENTRYPOINT', fragments: ['the node runtime needs `index.js`'] }, { runtime: 'node' });
  });

  it('entry names with `..`, an absolute path or a backslash: UNSAFE_PATH', async () => {
    await assertRefused(buildZip([MAIN, { name: '../evil.py', data: Buffer.from('x') }]), { code: 'UNSAFE_PATH', fragments: ['"../evil.py"', 'a `..` segment', 'zip -r function.zip .'] });
    await assertRefused(buildZip([MAIN, { name: 'lib/../../evil.py', data: Buffer.from('x') }]), { code: 'UNSAFE_PATH', fragments: ['"lib/../../evil.py"', '`..` segment'] });
    await assertRefused(buildZip([MAIN, { name: '/abs.py', data: Buffer.from('x') }]), { code: 'UNSAFE_PATH', fragments: ['"/abs.py"', 'an absolute path'] });
    await assertRefused(buildZip([MAIN, { name: '..\\evil.py', data: Buffer.from('x') }]), { code: 'UNSAFE_PATH', fragments: ['a backslash'] });
  });

  it('a symlink entry (made by the real `zip -y`): LINK_ENTRY', async () => {
    const dir = mkdtempSync(path.join(work, 'link-'));
    writeFileSync(path.join(dir, 'main.py'), 'print(open("passwd").read())\n');
    symlinkSync('/etc/passwd', path.join(dir, 'passwd'));
    execFileSync('zip', ['-qry', 'function.zip', 'main.py', 'passwd'], { cwd: dir });
    const zip = readFileSync(path.join(dir, 'function.zip'));
    await assertRefused(zip, { code: 'LINK_ENTRY', fragments: ['entry "passwd" is a symbolic link', 'zip without `-y`'] });
  });

  it('a device entry: SPECIAL_ENTRY', async () => {
    await assertRefused(buildZip([MAIN, { name: 'tty', unixMode: 0o020644 }]), { code: 'SPECIAL_ENTRY', fragments: ['"tty" is a character device'] });
  });

  it('a 1 GB-of-zeros bomb (about 1 MB on the wire): ZIP_BOMB, refused from the directory without inflating', async () => {
    const zip = buildZip([MAIN, { name: 'zeros.bin', compressed: await deflatedZeros(GiB), crc: crcOfZeros(GiB), declaredSize: GiB }]);
    assert.ok(zip.length < 2 * 1024 * 1024 && zip.length < stack.config.controller.maxUploadBytes, `the bomb is ${zip.length} bytes`);
    await assertRefused(zip, { code: 'ZIP_BOMB', fragments: ['"zeros.bin"', `→ ${GiB} bytes`, 'limit of 200×', 'zip bomb'] });
  });

  it('a declared size over 250 MB at an innocent ratio: TOO_LARGE', async () => {
    const random = randomBytes(2 * 1024 * 1024);
    const zip = buildZip([MAIN, { name: 'big.bin', compressed: zlib.deflateRawSync(random), declaredSize: 300_000_000 }]);
    await assertRefused(zip, { code: 'TOO_LARGE', fragments: [`over the limit of ${250 * 1024 * 1024} bytes (250 MiB)`, 'leave out large files'] });
  });

  it('more than 10,000 entries: TOO_MANY_ENTRIES', async () => {
    const entries = [MAIN, ...Array.from({ length: 10_000 }, (_, i) => ({ name: `f${i}`, method: 0 }))];
    await assertRefused(buildZip(entries), { code: 'TOO_MANY_ENTRIES', fragments: ['10001 entries, over the limit of 10000'] });
  });

  it('a truncated ZIP and a file that is no ZIP at all: NOT_A_ZIP', async () => {
    const good = makeZip({ 'main.py': 'print(1)\n', 'lib/a.py': 'A = 1\n' });
    await assertRefused(good.subarray(0, good.length - 30), { code: 'NOT_A_ZIP', fragments: ['not a ZIP archive (or it is truncated)'] });
    await assertRefused(good.subarray(0, Math.floor(good.length / 2)), { code: 'NOT_A_ZIP', fragments: ['truncated'] });
    await assertRefused(Buffer.from('print("I am a Python file, not a ZIP")\n'), { code: 'NOT_A_ZIP', fragments: ['not a ZIP archive', 'upload a .zip made with e.g. `zip -r function.zip .`'] });
  });

  it('an unknown or missing runtime: UNKNOWN_RUNTIME listing the known ones', async () => {
    const zip = makeZip({ 'main.py': 'print(1)\n' });
    await assertRefused(zip, { code: 'UNKNOWN_RUNTIME', fragments: ['unknown runtime "ruby"', 'known runtimes: python, node, cpp'] }, { runtime: 'ruby' });
    await assertRefused(zip, { code: 'UNKNOWN_RUNTIME', fragments: ['the "runtime" field is missing', 'known runtimes: python, node, cpp'] }, {});
  });

  it('no `file` field: MISSING_FILE saying how to send it', async () => {
    const before = await catalogueOf(stack, s3);
    const res = await postForm(stack.url, { runtime: 'python', name: 'no-file' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error?.code, 'MISSING_FILE');
    assert.match(res.body.error?.message ?? '', /form field named "file".*curl -F file=@function\.zip/);
    assert.deepEqual(await catalogueOf(stack, s3), before);
  });

  it('a name used only by refused uploads is still free: its first good upload is v1', async () => {
    const name = 'refused-then-good';
    const bad = await uploadZip(stack.url, buildZip([]), { runtime: 'python', name });
    assert.equal(bad.status, 400);
    const good = await upload(stack.url, { 'main.py': 'print(1)\n' }, { runtime: 'python', name });
    assert.equal(good.status, 201);
    assert.equal(good.body.version, 1);
  });

  it('a ZIP with a 65,535-byte archive comment is accepted (201) and runs', async () => {
    const zip = buildZip([{ name: 'main.py', data: Buffer.from('print("comment ok")\n') }], { comment: Buffer.alloc(0xffff, 'c') });
    const res = await uploadZip(stack.url, zip);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const ran = await run(stack.url, { functionId: res.body.functionId });
    assert.equal(ran.body.status, 'SUCCESS', ran.body.stderr);
    assert.equal(ran.body.stdout, 'comment ok\n');
  });

  it('fetch-code validates again: a bad ZIP put straight into the bucket ends the run in ERROR with the same message, and nothing runs', async () => {
    const res = await upload(stack.url, { 'main.py': 'print("the good v1")\n' }, { runtime: 'python', name: 'tampered' });
    assert.equal(res.status, 201);
    const { functionId } = res.body;
    // Someone other than our controller rewrites the object and its catalogue entry (sha256 included),
    // so that only the package check can stop it.
    const bad = buildZip([MAIN, { name: '../evil.py', data: Buffer.from('import os\n') }]);
    const codeKey = String(res.body.codeKey);
    await s3.send(new PutObjectCommand({ Bucket: stack.config.storage.codeBucket, Key: codeKey, Body: bad }));
    const redis = new Redis(stack.redisUrl);
    try {
      const functions = fromRedisFunctions(redis, { keyPrefix: stack.config.redis.keyPrefix });
      const v1 = await functions.getVersion(functionId, 1);
      assert.ok(v1);
      await functions.saveVersion({ functionId, name: 'tampered', runtime: 'python' }, { ...v1, sizeBytes: bad.length, sha256: createHash('sha256').update(bad).digest('hex') });
    } finally {
      redis.disconnect();
    }

    const ran = await run(stack.url, { functionId });
    assert.equal(ran.status, 200);
    assert.equal(ran.body.status, 'ERROR');
    assert.equal(ran.body.message, packageVerdict(bad).message);
    assert.match(ran.body.message ?? '', /entry "\.\.\/evil\.py" has an unsafe path/);
    assert.equal(ran.body.exitCode, null);
    assert.equal(ran.body.stdout, '');
    const stages = new Set(stack.lines.filter((l) => l.requestId === ran.body.requestId).map((l) => l.stage));
    assert.ok(stages.has('fetch-code'), 'fetch-code ran');
    assert.ok(!stages.has('execute'), 'the code never reached a container');
  });
});

describe('upload limits from the configuration (real stack, NANOGRID_CONTROLLER_MAX_UPLOAD_BYTES=200000, NANOGRID_PACKAGES_MAX_ENTRIES=5)', () => {
  let stack: TestStack;
  let s3: S3Client;
  before(async () => {
    stack = await startTestStack({ NANOGRID_CONTROLLER_MAX_UPLOAD_BYTES: '200000', NANOGRID_PACKAGES_MAX_ENTRIES: '5' });
    s3 = createS3Client(stack.config.aws);
  });
  after(async () => {
    s3.destroy();
    await stack.dispose();
  });

  it('a body over the limit: 413 naming the limit, nothing stored', async () => {
    const before = await catalogueOf(stack, s3);
    // Far over (refused from Content-Length) and just over (refused while streaming the file).
    for (const size of [1_000_000, 205_000]) {
      const zip = buildZip([MAIN, { name: 'blob.bin', data: randomBytes(size), method: 0 }]);
      const res = await uploadZip(stack.url, zip);
      assert.equal(res.status, 413, `${size}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error?.code, 'PAYLOAD_TOO_LARGE');
      assert.match(res.body.error?.message ?? '', /limit of 200000 bytes|limit is 200000 bytes/);
    }
    assert.deepEqual(await catalogueOf(stack, s3), before);
  });

  it('the entry limit follows packages.maxEntries', async () => {
    const files = Object.fromEntries([['main.py', 'print(1)\n'], ...Array.from({ length: 5 }, (_, i) => [`m${i}.py`, 'X = 1\n'])]) as Record<string, string>;
    const res = await upload(stack.url, files);
    assert.equal(res.status, 400);
    assert.equal(res.body.error?.code, 'TOO_MANY_ENTRIES');
    assert.match(res.body.error?.message ?? '', /6 entries, over the limit of 5/);
    const small = await upload(stack.url, { 'main.py': 'print(1)\n' });
    assert.equal(small.status, 201);
  });
});
