import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, symlinkSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fetchCode } from '../../src/worker/stages/fetchCode.ts';
import { execute, statusOf } from '../../src/worker/stages/execute.ts';
import { bindOutputs } from '../../src/worker/stages/bindOutputs.ts';
import { publish } from '../../src/worker/stages/publish.ts';
import { DEFAULT_PACKAGE_LIMITS } from '../../src/packages/inspect.ts';
import { createCodeCache } from '../../src/worker/codeCache.ts';
import type { RunMessage } from '../../src/contracts/runMessage.ts';
import { errorResult } from '../../src/contracts/result.ts';
import type { Sandbox, SandboxReport, SandboxSpec } from '../../src/sandbox/ports.ts';
import { memoryCodeStore, memoryOutputStore } from '../fakes/stores.ts';
import { memoryBus } from '../fakes/bus.ts';
import { captureLogger, silentLogger } from '../fakes/log.ts';
import { makeZip } from '../helpers/zip.ts';

const signal = new AbortController().signal;

function message(overrides: Partial<RunMessage> = {}): RunMessage {
  return {
    requestId: '5b0d8a4e-1c2f-4e7a-9a51-0c7f2b9d6e11',
    functionId: 'fn-test',
    version: 1,
    runtime: 'python',
    s3Bucket: 'code',
    s3Key: 'functions/fn-test/v1.zip',
    timeoutMs: 1000,
    memoryMb: 128,
    inputData: { n: 1 },
    ...overrides,
  };
}

function report(overrides: Partial<SandboxReport> = {}): SandboxReport {
  return {
    exitCode: 0, signal: null, timedOut: false, oomKilled: false, phase: 'run', durationMillis: 12, cpuMillis: 5,
    peakMemoryBytes: 3 * 1024 * 1024, stdout: 'hi\n', stderr: '', stdoutTruncated: false, stderrTruncated: false, coldStart: true, outputs: { files: [], skipped: [] },
    ...overrides,
  };
}

let dir: string;
beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'ng-stage-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('fetch-code', () => {
  const deps = async (store = memoryCodeStore()) => ({ log: silentLogger, signal, codeStore: store, cache: await createCodeCache({ dir: path.join(dir, 'cache'), maxBytes: 1 << 20 }), packageLimits: DEFAULT_PACKAGE_LIMITS });

  it('downloads, checks and caches the code by sha256, then serves it from the cache', async () => {
    const store = memoryCodeStore();
    const zip = makeZip({ 'main.py': 'print(1)\n', 'lib/util.py': 'X = 2\n' });
    await store.put('functions/fn-test/v1.zip', zip, '');
    const sha256 = createHash('sha256').update(zip).digest('hex');
    const d = await deps(store);
    const first = await fetchCode(message({ sha256 }), d);
    assert.equal(first.cached, false);
    assert.equal(first.codeSha256, sha256);
    assert.deepEqual(readFileSync(first.codePath), zip);
    store.objects.clear(); // the second run must not need the bucket
    const second = await fetchCode(message({ sha256 }), d);
    assert.equal(second.cached, true);
    assert.equal(second.codePath, first.codePath);
  });

  it('refuses, without retry, code that is missing from the bucket', async () => {
    await assert.rejects(fetchCode(message(), await deps()), (err: Error) => err.name === 'PermanentRunError' && /does not exist/.test(err.message));
  });

  it('refuses code whose sha256 differs from the uploaded one', async () => {
    const store = memoryCodeStore();
    await store.put('functions/fn-test/v1.zip', makeZip({ 'main.py': 'print(2)\n' }), '');
    await assert.rejects(fetchCode(message({ sha256: 'a'.repeat(64) }), await deps(store)), (err: Error) => err.name === 'PermanentRunError' && /sha256/.test(err.message));
  });

  it('validates the package again: an archive without the entrypoint is refused', async () => {
    const store = memoryCodeStore();
    await store.put('functions/fn-test/v1.zip', makeZip({ 'app.py': 'print(3)\n' }), '');
    await assert.rejects(fetchCode(message(), await deps(store)), (err: Error & { code?: string }) => err.name === 'PackageError' && err.code === 'MISSING_ENTRYPOINT');
  });
});

describe('execute', () => {
  it('maps reports to statuses: OOM from the flag, then TIMEOUT, then the exit code', () => {
    assert.equal(statusOf(report()), 'SUCCESS');
    assert.equal(statusOf(report({ exitCode: 3 })), 'FAILED');
    assert.equal(statusOf(report({ exitCode: 137, signal: 'SIGKILL' })), 'FAILED');
    assert.equal(statusOf(report({ exitCode: null, timedOut: true })), 'TIMEOUT');
    assert.equal(statusOf(report({ exitCode: null, oomKilled: true, timedOut: true })), 'OOM');
  });

  it('asks the sandbox for the runtime image, command, code and the run limits', async () => {
    const seen: SandboxSpec[] = [];
    const sandbox: Sandbox = {
      async run(spec) {
        seen.push(spec);
        return report({ exitCode: 2, stderr: 'boom' });
      },
      async ping() {},
      async removeOrphans() {
        return 0;
      },
      async close() {},
      async prewarm() {
        return false;
      },
    };
    const out = await execute(
      { message: message({ runtime: 'cpp', memoryMb: 300, timeoutMs: 700 }), codePath: '/c.zip', codeSha256: 'ab', outputDir: '/o' },
      { log: silentLogger, signal, sandbox },
    );
    assert.equal(out.status, 'FAILED');
    assert.equal(seen[0]?.image, 'nanogrid-runtime-cpp');
    assert.deepEqual(seen[0]?.compile?.[0], 'g++');
    assert.equal(seen[0]?.memoryMb, 300);
    assert.equal(seen[0]?.timeoutMs, 700);
    assert.equal(seen[0]?.codePath, '/c.zip');
    assert.equal(seen[0]?.outputDir, '/o');
    assert.deepEqual(seen[0]?.input, { n: 1 });
  });
});

describe('bind-outputs', () => {
  it('uploads the collected files with their Content-Type, in order', async () => {
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'result.txt'), 'hello');
    writeFileSync(path.join(dir, 'data.json'), '{"a":1}');
    writeFileSync(path.join(dir, 'sub', 'pic.png'), Buffer.from([0x89, 0x50]));
    const store = memoryOutputStore();
    const files = [{ path: 'data.json', size: 7 }, { path: 'result.txt', size: 5 }, { path: 'sub/pic.png', size: 2 }];
    const res = await bindOutputs({ requestId: 'r1', outputDir: dir, files }, { log: silentLogger, signal, outputStore: store });
    assert.deepEqual(res.outputFiles, ['memory://outputs/r1/data.json', 'memory://outputs/r1/result.txt', 'memory://outputs/r1/sub/pic.png']);
    assert.equal(store.files.get('memory://outputs/r1/result.txt')?.body.toString(), 'hello');
    assert.match(store.files.get('memory://outputs/r1/result.txt')?.contentType ?? '', /^text\/plain/);
    assert.match(store.files.get('memory://outputs/r1/data.json')?.contentType ?? '', /^application\/json/);
    assert.equal(store.files.get('memory://outputs/r1/sub/pic.png')?.contentType, 'image/png');
  });

  it('refuses to open a link, even one that appeared after collection', async () => {
    symlinkSync('/etc/passwd', path.join(dir, 'passwd.txt'));
    await assert.rejects(
      bindOutputs({ requestId: 'r2', outputDir: dir, files: [{ path: 'passwd.txt', size: 10 }] }, { log: silentLogger, signal, outputStore: memoryOutputStore() }),
      /ELOOP|symbolic link/,
    );
  });
});

describe('publish', () => {
  it('publishes once: a second, different result for the same request keeps the first', async () => {
    const bus = memoryBus();
    const { log, lines } = captureLogger();
    const first = { ...errorResult({ requestId: 'r9', functionId: 'f' }, 'x'), status: 'SUCCESS' as const, message: undefined };
    const a = await publish(first, { log, signal, bus });
    const b = await publish({ ...first, status: 'FAILED' }, { log, signal, bus });
    assert.equal(a.stored, true);
    assert.equal(b.stored, false);
    assert.equal((await bus.peek('r9'))?.status, 'SUCCESS');
    assert.ok(lines.some((l) => String(l.msg).startsWith('[DONE][OK] requestId=r9')));
  });

  it('ends a failed run with [DONE][FAIL] and the subscriber count', async () => {
    const bus = memoryBus();
    bus.subscribers = 2;
    const { log, lines } = captureLogger();
    await publish(errorResult({ requestId: 'r10', functionId: 'f' }, 'no code'), { log, signal, bus });
    const done = lines.find((l) => String(l.msg).startsWith('[DONE][FAIL] requestId=r10'));
    assert.ok(done);
    assert.equal(done.subscribers, 2);
  });
});
