import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { PROJECT_ROOT } from '../../src/config/load.ts';
import { createS3Client } from '../../src/storage/s3.ts';
import type { FunctionMeta } from '../../src/contracts/functionMeta.ts';
import type { RunResult } from '../../src/contracts/result.ts';
import { startTestStack, uploadZip, leftoverContainers, type TestStack } from './helpers.ts';
import { makeZip } from '../helpers/zip.ts';

const BIN = path.join(PROJECT_ROOT, 'bin/nanogrid.mjs');

const GREETER = [
  'import json, os, sys',
  'data = json.load(sys.stdin)',
  'name = data.get("name", "world")',
  'os.makedirs("output/nested", exist_ok=True)',
  'open("output/greeting.txt", "w").write(f"Hello, {name}!")',
  'open("output/nested/numbers.json", "w").write(json.dumps(list(range(5))))',
  'print(f"Hello, {name}!")',
  'print("a warning", file=sys.stderr)',
].join('\n');

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

describe('the nanogrid CLI end to end (spawned, against the real stack)', () => {
  let stack: TestStack;
  let s3: S3Client;
  let work: string;
  before(async () => {
    stack = await startTestStack();
    s3 = createS3Client(stack.config.aws);
    work = mkdtempSync(path.join(tmpdir(), 'ng-cli-'));
  });
  after(async () => {
    s3.destroy();
    rmSync(work, { recursive: true, force: true });
    const workerId = stack.worker.workerId;
    await stack.dispose();
    assert.deepEqual(await leftoverContainers(workerId), [], 'no container may outlive the stack');
  });

  /** Runs `node bin/nanogrid.mjs …` from a folder outside the project, with NANOGRID_URL pointing at the stack. */
  function cli(args: string[], options: { input?: string } = {}): Promise<CliRun> {
    return new Promise((resolve) => {
      const child = execFile(process.execPath, [BIN, ...args], { cwd: work, env: { ...process.env, NANOGRID_URL: stack.url } }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
      child.stdin?.end(options.input ?? '');
    });
  }

  function folder(name: string, files: Record<string, string>): string {
    const dir = path.join(work, name);
    mkdirSync(dir, { recursive: true });
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      writeFileSync(path.join(dir, rel), content);
    }
    return dir;
  }

  async function storedState(): Promise<{ keys: string[]; functions: FunctionMeta[] }> {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: stack.config.storage.codeBucket }));
    const res = (await (await fetch(`${stack.url}/functions`)).json()) as { functions: FunctionMeta[] };
    return { keys: (listed.Contents ?? []).map((o) => o.Key ?? '').sort(), functions: res.functions };
  }

  let requestId = '';

  it('deploy zips the folder contents and uploads v1, then v2 under the same --name', async () => {
    folder('greeter', { 'main.py': GREETER, 'lib/helper.py': 'X = 1\n' });
    const first = await cli(['deploy', 'greeter', '--runtime', 'python', '--name', 'greeter']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^deployed greeter \(fn-[0-9a-f]{16}\) version 1: 2 files, \d+ bytes, sha256 [0-9a-f]{12}…$/m);

    const second = await cli(['deploy', 'greeter', '--runtime', 'python', '--name', 'greeter', '--json']);
    assert.equal(second.code, 0, second.stderr);
    const body = JSON.parse(second.stdout) as { functionId: string; version: number; codeKey: string; runtime: string };
    assert.equal(body.version, 2);
    assert.equal(body.runtime, 'python');
    assert.ok(first.stdout.includes(body.functionId), 'the same function');
    const { keys } = await storedState();
    assert.ok(keys.includes(`functions/${body.functionId}/v2.zip`));
  });

  it('invoke prints the function stdout, then a summary on stderr, and exits 0 on SUCCESS', async () => {
    const res = await cli(['invoke', 'greeter', '--data', '{"name":"Ada"}']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'Hello, Ada!\n');
    assert.match(res.stderr, /^a warning$/m);
    assert.match(res.stderr, /^SUCCESS · exit 0 · \d+ ms · peak [\d.]+ MB of 256 MB · 2 output files \(nanogrid outputs get [0-9a-f-]{36}\) · request [0-9a-f-]{36}$/m);
  });

  it('invoke --json prints the whole result; --data-file and stdin give the input', async () => {
    writeFileSync(path.join(work, 'input.json'), '{"name":"Grace"}');
    const res = await cli(['invoke', 'greeter', '--data-file', 'input.json', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const result = JSON.parse(res.stdout) as RunResult;
    assert.equal(result.status, 'SUCCESS');
    assert.equal(result.stdout, 'Hello, Grace!\n');
    assert.equal(result.version, 2);
    assert.equal(result.outputFiles.length, 2);
    requestId = result.requestId;

    const piped = await cli(['invoke', 'greeter', '--data-file', '-', '--json', '--version', '1'], { input: '{"name":"Stdin"}' });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal((JSON.parse(piped.stdout) as RunResult).stdout, 'Hello, Stdin!\n');
    assert.equal((JSON.parse(piped.stdout) as RunResult).version, 1);
  });

  it('invoke exits non-zero (3) when the run FAILED, and says so', async () => {
    folder('failing', { 'main.py': 'import sys\nprint("partial")\nsys.exit(4)\n' });
    assert.equal((await cli(['deploy', 'failing', '--runtime', 'python', '--name', 'failing'])).code, 0);
    const res = await cli(['invoke', 'failing']);
    assert.equal(res.code, 3);
    assert.equal(res.stdout, 'partial\n');
    assert.match(res.stderr, /^FAILED · exit 4 · /m);
    const json = await cli(['invoke', 'failing', '--json']);
    assert.equal(json.code, 3);
    assert.equal((JSON.parse(json.stdout) as RunResult).exitCode, 4);
  });

  it('invoke --async prints the request id at once; runs get --wait waits for the result', async () => {
    const started = await cli(['invoke', 'greeter', '--async', '--data', '{"name":"Later"}']);
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    const waited = await cli(['runs', 'get', id, '--wait', '--json']);
    assert.equal(waited.code, 0, waited.stderr);
    const result = JSON.parse(waited.stdout) as RunResult;
    assert.equal(result.requestId, id);
    assert.equal(result.stdout, 'Hello, Later!\n');
  });

  it('deploy refuses an empty folder locally, with the message the server gives, and uploads nothing', async () => {
    const before = await storedState();
    folder('empty', {});
    const res = await cli(['deploy', 'empty', '--runtime', 'python', '--name', 'empty']);
    assert.equal(res.code, 1);
    const server = await uploadZip(stack.url, Buffer.from('504b0506' + '00'.repeat(18), 'hex'));
    assert.equal(server.status, 400);
    assert.equal(res.stderr.trim(), `error: ${server.body.error?.message} [EMPTY_ARCHIVE]`);
    assert.deepEqual(await storedState(), before);
  });

  it('deploy refuses a folder without main.py at its root with the server message, plus a hint', async () => {
    const before = await storedState();
    const files = { 'src/main.py': 'print(1)\n', 'README.md': '# hi\n' };
    folder('nested', files);
    const res = await cli(['deploy', 'nested', '--runtime', 'python']);
    assert.equal(res.code, 1);
    const server = await uploadZip(stack.url, makeZip(files));
    assert.equal(server.status, 400);
    assert.equal(server.body.error?.code, 'MISSING_ENTRYPOINT');
    const [line, hint] = res.stderr.trim().split('\n');
    assert.equal(line, `error: ${server.body.error?.message} [MISSING_ENTRYPOINT]`);
    assert.equal(hint, 'hint: deploy that folder instead: nanogrid deploy nested/src --runtime python');

    folder('noentry', { 'app.py': 'print(1)\n' });
    const none = await cli(['deploy', 'noentry', '--runtime', 'python', '--json']);
    assert.equal(none.code, 1);
    const error = (JSON.parse(none.stdout) as { error: { code: string; message: string } }).error;
    const serverNone = await uploadZip(stack.url, makeZip({ 'app.py': 'print(1)\n' }));
    assert.deepEqual(error, serverNone.body.error);
    assert.deepEqual(await storedState(), before);
  });

  it('outputs get downloads every output file with its path and bytes; runs get shows the run', async () => {
    assert.ok(requestId, 'an earlier test ran the greeter');
    const res = await cli(['outputs', 'get', requestId, '-o', 'downloaded']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(readFileSync(path.join(work, 'downloaded/greeting.txt'), 'utf8'), 'Hello, Grace!');
    assert.equal(readFileSync(path.join(work, 'downloaded/nested/numbers.json'), 'utf8'), '[0, 1, 2, 3, 4]');
    assert.match(res.stdout, /^downloaded\/greeting\.txt \(13 bytes\)$/m);

    const json = await cli(['outputs', 'get', requestId, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const listed = JSON.parse(json.stdout) as { directory: string; files: { path: string; bytes: number }[] };
    assert.equal(listed.directory, path.join(work, 'outputs', requestId), 'default folder: ./outputs/{requestId}');
    assert.deepEqual(listed.files.map((f) => [path.relative(listed.directory, f.path), f.bytes]).sort(), [['greeting.txt', 13], ['nested/numbers.json', 15]]);

    const run = await cli(['runs', 'get', requestId, '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as RunResult).stdout, 'Hello, Grace!\n');
    const human = await cli(['runs', 'get', requestId]);
    assert.equal(human.stdout, 'Hello, Grace!\n');
    assert.match(human.stderr, /^SUCCESS · exit 0/m);

    const unknown = await cli(['runs', 'get', '00000000-0000-4000-8000-000000000000']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: no run 00000000-0000-4000-8000-000000000000: .* \[RUN_NOT_FOUND\]$/m);
  });

  it('functions ls lists, functions rm deletes (then invoke finds nothing)', async () => {
    const ls = await cli(['functions', 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    const [header, ...rows] = ls.stdout.trim().split('\n');
    assert.match(header ?? '', /^NAME\s+ID\s+RUNTIME\s+LATEST\s+UPDATED$/);
    assert.ok(rows.some((r) => /^greeter\s+fn-[0-9a-f]{16}\s+python\s+v2\s/.test(r)), ls.stdout);

    const json = await cli(['functions', 'ls', '--json']);
    const greeter = (JSON.parse(json.stdout) as FunctionMeta[]).find((f) => f.name === 'greeter');
    assert.ok(greeter);

    const rm = await cli(['functions', 'rm', 'greeter']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(rm.stdout.trim(), `deleted greeter (${greeter.functionId}): versions 1, 2`);
    const { keys, functions } = await storedState();
    assert.ok(!keys.some((k) => k.startsWith(`functions/${greeter.functionId}/`)), 'code gone');
    assert.ok(!functions.some((f) => f.functionId === greeter.functionId));

    const gone = await cli(['invoke', 'greeter']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no function with the id or name "greeter"/);
    const rmAgain = await cli(['functions', 'rm', greeter.functionId, '--json']);
    assert.equal(rmAgain.code, 1);
    assert.equal((JSON.parse(rmAgain.stdout) as { error: { code: string } }).error.code, 'FUNCTION_NOT_FOUND');
  });

  it('bad usage exits 2 with the usage on stderr; server errors exit 1 with the server message', async () => {
    const unknown = await cli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    const flag = await cli(['functions', 'ls', '--colour']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /Unknown option '--colour'[\s\S]*Usage: nanogrid functions ls/);
    const help = await cli(['invoke', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: nanogrid invoke NAME\|ID/);

    folder('toolong', { 'main.py': 'print(1)\n' });
    const refused = await cli(['deploy', 'toolong', '--runtime', 'python', '--memory-mb', '999999']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: memoryMb=999999 is above the maximum of 4096 \[LIMIT_OUT_OF_BOUNDS\]$/m);
  });
});

describe('nanogrid invoke when the controller answers 202 (NANOGRID_CONTROLLER_WAIT_BUDGET_MS=0)', () => {
  let stack: TestStack;
  before(async () => (stack = await startTestStack({ NANOGRID_CONTROLLER_WAIT_BUDGET_MS: '0' })));
  after(async () => {
    const workerId = stack.worker.workerId;
    await stack.dispose();
    assert.deepEqual(await leftoverContainers(workerId), []);
  });

  it('polls GET /runs/{id} until the result is final, then prints it like a synchronous run', async () => {
    const up = await uploadZip(stack.url, makeZip({ 'main.py': 'import time\ntime.sleep(0.3)\nprint("patience")\n' }), { runtime: 'python', name: 'slow' });
    assert.equal(up.status, 201);
    const direct = await fetch(`${stack.url}/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ functionId: up.body.functionId }) });
    assert.equal(direct.status, 202, 'the server really answers 202 here');
    const res = await new Promise<CliRun>((resolve) => {
      execFile(process.execPath, [BIN, 'invoke', 'slow'], { env: { ...process.env, NANOGRID_URL: stack.url } }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      });
    });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'patience\n');
    assert.match(res.stderr, /^SUCCESS · exit 0 · /m);
  });
});
