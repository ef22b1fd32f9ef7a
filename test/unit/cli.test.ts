import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { outputPath } from '../../src/cli/outputs.ts';
import { packDirectory } from '../../src/cli/packDirectory.ts';
import { summaryLine } from '../../src/cli/result.ts';
import { PackageError } from '../../src/packages/errors.ts';
import { DEFAULT_PACKAGE_LIMITS, inspectPackage } from '../../src/packages/inspect.ts';
import { errorResult } from '../../src/contracts/result.ts';
import { makeZip } from '../helpers/zip.ts';

let work = '';
before(() => {
  work = mkdtempSync(path.join(tmpdir(), 'cli-test-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

function folder(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(path.join(work, 'src-'));
  for (const [name, content] of Object.entries(files)) {
    const full = path.join(dir, name);
    if (name.endsWith('/')) mkdirSync(full, { recursive: true });
    else {
      mkdirSync(path.dirname(full), { recursive: true });
      writeFileSync(full, content);
    }
  }
  return dir;
}

/** What inspectPackage (the server) says about an archive, or null when it accepts it. */
function serverVerdict(zip: Buffer): { code: string; message: string } | null {
  try {
    inspectPackage(zip, 'python');
    return null;
  } catch (err) {
    assert.ok(err instanceof PackageError);
    return { code: err.code, message: err.message };
  }
}

async function packVerdict(dir: string): Promise<{ code: string; message: string }> {
  try {
    await packDirectory(dir, 'python');
  } catch (err) {
    assert.ok(err instanceof PackageError, `expected a PackageError, got ${String(err)}`);
    return { code: err.code, message: err.message };
  }
  assert.fail('packDirectory accepted the folder');
}

describe('packDirectory (the ZIP that `nanogrid deploy` uploads)', () => {
  it("zips the folder's contents with the entrypoint at the root, folders, modes, deflate; real unzip agrees", async () => {
    const text = 'def f():\n    return 1\n'.repeat(200);
    const dir = folder({ 'main.py': 'import lib.util\nprint("hi")\n', 'lib/util.py': text, 'data/': '', 'run.sh': '#!/bin/sh\n' });
    chmodSync(path.join(dir, 'run.sh'), 0o755);
    const packed = await packDirectory(dir, 'python');
    assert.equal(packed.info.entrypoint, 'main.py');
    assert.deepEqual(packed.info.entries.map((e) => `${e.name}${e.isDirectory ? '/' : ''}`), ['data/', 'lib/', 'lib/util.py', 'main.py', 'run.sh']);
    const util = packed.info.entries.find((e) => e.name === 'lib/util.py');
    assert.ok(util && util.compressedSize < util.uncompressedSize / 5, 'compressible text is deflated');

    const zipPath = path.join(work, 'packed.zip');
    writeFileSync(zipPath, packed.zip);
    const tested = execFileSync('unzip', ['-t', zipPath], { encoding: 'utf8' });
    assert.match(tested, /No errors detected/);
    const listing = execFileSync('zipinfo', [zipPath], { encoding: 'utf8' });
    assert.match(listing, /^-rwxr-xr-x .* run\.sh$/m, 'the executable bit survives');
    assert.match(listing, /^drwxr-xr-x .* data\/$/m);
    assert.match(listing, /defN .* lib\/util\.py$/m);
  });

  it('skips a symbolic link with a reason and never follows it', async () => {
    const dir = folder({ 'main.py': 'print(1)\n' });
    symlinkSync('/etc/passwd', path.join(dir, 'passwd'));
    symlinkSync('/etc', path.join(dir, 'etc'));
    const packed = await packDirectory(dir, 'python');
    assert.deepEqual(packed.info.entries.map((e) => e.name), ['main.py']);
    assert.deepEqual(packed.skipped.map((s) => s.path).sort(), ['etc', 'passwd']);
    assert.match(packed.skipped[0]?.reason ?? '', /symbolic link .*never followed/);
  });

  it('refuses an empty folder with the message the server gives an empty archive', async () => {
    const verdict = await packVerdict(folder({}));
    const server = serverVerdict(Buffer.from('504b0506' + '00'.repeat(18), 'hex'));
    assert.deepEqual(verdict, server);
    assert.equal(verdict.code, 'EMPTY_ARCHIVE');
  });

  it('refuses a folder of empty folders like the server does', async () => {
    const verdict = await packVerdict(folder({ 'a/b/': '' }));
    assert.equal(verdict.code, 'EMPTY_ARCHIVE');
    assert.match(verdict.message, /only folders/);
  });

  it('refuses a folder without the entrypoint, word for word as the server refuses `zip -r` of it', async () => {
    const files = { 'app/main.py': 'print(1)\n', 'README': 'x' };
    const verdict = await packVerdict(folder(files));
    assert.deepEqual(verdict, serverVerdict(makeZip(files)));
    assert.equal(verdict.code, 'MISSING_ENTRYPOINT');
    assert.match(verdict.message, /`app\/main\.py`.*cd app && zip -r \.\.\/function\.zip \./);

    const none = await packVerdict(folder({ 'other.py': 'x' }));
    assert.deepEqual(none, serverVerdict(makeZip({ 'other.py': 'x' })));
  });

  it('stores a large, very compressible file instead of making it look like a zip bomb', async () => {
    const dir = folder({ 'main.py': 'print(1)\n', 'zeros.bin': Buffer.alloc(3 * 1024 * 1024) });
    const packed = await packDirectory(dir, 'python');
    const zeros = packed.info.entries.find((e) => e.name === 'zeros.bin');
    assert.equal(zeros?.compressedSize, 3 * 1024 * 1024);
  });

  it('refuses too many entries before reading any file, with the server message', async () => {
    const dir = folder({ 'main.py': 'x', 'a.py': 'x', 'b.py': 'x', 'c.py': 'x' });
    await assert.rejects(packDirectory(dir, 'python', { ...DEFAULT_PACKAGE_LIMITS, maxEntries: 3 }), (err: Error) => {
      assert.ok(err instanceof PackageError);
      assert.equal(err.code, 'TOO_MANY_ENTRIES');
      assert.match(err.message, /has 4 entries, over the limit of 3/);
      return true;
    });
  });
});

describe('outputPath (where `nanogrid outputs get` writes a file)', () => {
  const id = '3b8f7c2e-0000-4000-8000-000000000000';
  it('keeps the path after /{requestId}/, decoded', () => {
    assert.deepEqual(outputPath(`http://s3/bucket/outputs/${id}/result.txt?X-Amz-Signature=1`, id), ['result.txt']);
    assert.deepEqual(outputPath(`http://s3/bucket/outputs/${id}/charts/a%20b.png`, id), ['charts', 'a b.png']);
  });
  it('refuses paths that could leave the target folder', () => {
    for (const tail of ['%2E%2E/x', 'a/%2E%2E/%2E%2E/x', 'a%5Cb', 'a//b', '']) {
      assert.throws(() => outputPath(`http://s3/bucket/outputs/${id}/${tail}`, id), /refusing output path|no path after/, tail);
    }
    assert.throws(() => outputPath('http://s3/bucket/outputs/other/x.txt', id), /no path after/);
  });
});

describe('summaryLine', () => {
  it('names status, exit code, duration and memory; an ERROR names its message', () => {
    const ok = { ...errorResult({ requestId: 'r1', functionId: 'f' }, ''), status: 'SUCCESS' as const, exitCode: 0, durationMillis: 24, peakMemoryMB: 3.7, memoryLimitMb: 256 };
    assert.equal(summaryLine(ok), 'SUCCESS · exit 0 · 24 ms · peak 3.7 MB of 256 MB · request r1');
    assert.equal(summaryLine(errorResult({ requestId: 'r2', functionId: 'f' }, 'code missing')), 'ERROR · code missing · request r2');
  });
});

describe('the command line', () => {
  async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on('data', (c: Buffer) => out.push(c));
    stderr.on('data', (c: Buffer) => err.push(c));
    const code = await main(argv, { stdout, stderr, stdin: new PassThrough(), env: {}, cwd: work });
    return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  }

  it('unknown commands and flags print usage on stderr and exit 2', async () => {
    const unknown = await cli(['deplo']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "deplo"[\s\S]*Commands:/);
    const flag = await cli(['invoke', 'x', '--bogus']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /Unknown option '--bogus'[\s\S]*Usage: nanogrid invoke/);
    const missing = await cli(['runs', 'get']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing REQUEST_ID/);
    const sub = await cli(['functions', 'list']);
    assert.equal(sub.code, 2);
    assert.match(sub.stderr, /unknown command "functions list"/);
  });

  it('--help on every command prints its usage on stdout and exits 0', async () => {
    for (const argv of [['deploy'], ['invoke'], ['runs', 'get'], ['outputs', 'get'], ['functions', 'ls'], ['functions', 'rm'], ['functions', 'get']]) {
      const res = await cli([...argv, '--help']);
      assert.equal(res.code, 0, argv.join(' '));
      assert.ok(res.stdout.startsWith(`Usage: nanogrid ${argv.join(' ')}`), res.stdout);
      assert.match(res.stdout, /--url URL/);
    }
    const top = await cli(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /functions rm/);
  });

  it('an unreachable server is exit 1 with a message that says what to do; --json adds the error as JSON', async () => {
    const res = await cli(['functions', 'ls', '--json', '--url', 'http://127.0.0.1:1']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /cannot reach NanoGrid at http:\/\/127\.0\.0\.1:1 .*npm start.*\[UNREACHABLE\]/);
    assert.equal((JSON.parse(res.stdout) as { error: { code: string } }).error.code, 'UNREACHABLE');
  });

  it('refuses input that is not JSON before calling the server', async () => {
    const res = await cli(['invoke', 'fn', '--data', '{nope', '--url', 'http://127.0.0.1:1']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /input from --data is not valid JSON/);
  });

  it('deploy refuses an unknown runtime with the server words (exit 2)', async () => {
    const res = await cli(['deploy', '.', '--runtime', 'ruby']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /unknown runtime "ruby"; known runtimes: python, node, cpp/);
  });
});
