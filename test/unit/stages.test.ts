import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, symlinkSync, readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fetchCode } from '../../src/worker/stages/fetchCode.ts';
import { execute, statusOf } from '../../src/worker/stages/execute.ts';
import { bindOutputs } from '../../src/worker/stages/bindOutputs.ts';
import { publish } from '../../src/worker/stages/publish.ts';
import { DEFAULT_PACKAGE_LIMITS } from '../../src/packages/inspect.ts';
import type { RunMessage } from '../../src/contracts/runMessage.ts';
import { errorResult } from '../../src/contracts/result.ts';
import type { Sandbox, SandboxReport, SandboxSpec } from '../../src/sandbox/ports.ts';
import { memoryCodeStore, memoryOutputStore } from '../fakes/stores.ts';
import { memoryBus } from '../fakes/bus.ts';
import { captureLogger, silentLogger } from '../fakes/log.ts';
import { makeZip } from '../helpers/zip.ts';

const signal = new AbortController().signal;
const uid = process.getuid?.() ?? 0;

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
    peakMemoryBytes: 3 * 1024 * 1024, stdout: 'hi\n', stderr: '', stdoutTruncated: false, stderrTruncated: false, coldStart: true,
    ...overrides,
  };
}

let dir: string;
beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'ng-stage-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('fetch-code', () => {
  it('extracts the code into a fresh workspace named by the request id', async () => {
    const store = memoryCodeStore();
    const zip = makeZip({ 'main.py': 'print(1)\n', 'lib/util.py': 'X = 2\n' });
    await store.put('functions/fn-test/v1.zip', zip, '');
    const sha256 = createHash('sha256').update(zip).digest('hex');
    const out = await fetchCode(message({ sha256 }), { log: silentLogger, signal, codeStore: store, workRoot: dir, packageLimits: DEFAULT_PACKAGE_LIMITS, sandboxUid: uid });
    assert.equal(out.workspaceDir, path.join(dir, message().requestId));
    assert.equal(readFileSync(path.join(out.workspaceDir, 'lib/util.py'), 'utf8'), 'X = 2\n');
    assert.equal(out.files, 2);
  });

  it('refuses, without retry, code that is missing from the bucket', async () => {
    await assert.rejects(
      fetchCode(message(), { log: silentLogger, signal, codeStore: memoryCodeStore(), workRoot: dir, packageLimits: DEFAULT_PACKAGE_LIMITS, sandboxUid: uid }),
      (err: Error) => err.name === 'PermanentRunError' && /does not exist/.test(err.message),
    );
  });

  it('refuses code whose sha256 differs from the uploaded one', async () => {
    const store = memoryCodeStore();
    await store.put('functions/fn-test/v1.zip', makeZip({ 'main.py': 'print(2)\n' }), '');
    await assert.rejects(
      fetchCode(message({ sha256: 'a'.repeat(64) }), { log: silentLogger, signal, codeStore: store, workRoot: dir, packageLimits: DEFAULT_PACKAGE_LIMITS, sandboxUid: uid }),
      (err: Error) => err.name === 'PermanentRunError' && /sha256/.test(err.message),
    );
  });

  it('validates the package again: an archive without the entrypoint is refused', async () => {
    const store = memoryCodeStore();
    await store.put('functions/fn-test/v1.zip', makeZip({ 'app.py': 'print(3)\n' }), '');
    await assert.rejects(
      fetchCode(message(), { log: silentLogger, signal, codeStore: store, workRoot: dir, packageLimits: DEFAULT_PACKAGE_LIMITS, sandboxUid: uid }),
      (err: Error & { code?: string }) => err.name === 'PackageError' && err.code === 'MISSING_ENTRYPOINT',
    );
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

  it('asks the sandbox for the runtime image, command and the run limits', async () => {
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
    };
    const out = await execute({ message: message({ runtime: 'cpp', memoryMb: 300, timeoutMs: 700 }), workspaceDir: '/w' }, { log: silentLogger, signal, sandbox });
    assert.equal(out.status, 'FAILED');
    assert.equal(seen[0]?.image, 'nanogrid-runtime-cpp');
    assert.deepEqual(seen[0]?.compile?.[0], 'g++');
    assert.equal(seen[0]?.memoryMb, 300);
    assert.equal(seen[0]?.timeoutMs, 700);
    assert.deepEqual(seen[0]?.input, { n: 1 });
  });
});

describe('bind-outputs', () => {
  it('uploads regular files with their Content-Type and skips links, FIFOs and files over the caps', async () => {
    const out = path.join(dir, 'output');
    mkdirSync(path.join(out, 'sub'), { recursive: true });
    writeFileSync(path.join(out, 'result.txt'), 'hello');
    writeFileSync(path.join(out, 'data.json'), '{"a":1}');
    writeFileSync(path.join(out, 'sub', 'pic.png'), Buffer.from([0x89, 0x50]));
    writeFileSync(path.join(out, 'z-big.bin'), Buffer.alloc(2000));
    symlinkSync('/etc/passwd', path.join(out, 'passwd'));
    execFileSync('mkfifo', [path.join(out, 'pipe')]);
    const store = memoryOutputStore();
    const res = await bindOutputs({ requestId: 'r1', workspaceDir: dir }, { log: silentLogger, signal, outputStore: store, limits: { maxFiles: 10, maxTotalBytes: 1000 } });
    assert.deepEqual(res.outputFiles.sort(), ['memory://outputs/r1/data.json', 'memory://outputs/r1/result.txt', 'memory://outputs/r1/sub/pic.png']);
    assert.equal(store.files.get('memory://outputs/r1/result.txt')?.body.toString(), 'hello');
    assert.match(store.files.get('memory://outputs/r1/result.txt')?.contentType ?? '', /^text\/plain/);
    assert.match(store.files.get('memory://outputs/r1/data.json')?.contentType ?? '', /^application\/json/);
    assert.equal(store.files.get('memory://outputs/r1/sub/pic.png')?.contentType, 'image/png');
    const reasons = Object.fromEntries(res.skippedOutputs.map((s) => [s.path, s.reason]));
    assert.match(reasons.passwd ?? '', /symbolic link/);
    assert.match(reasons.pipe ?? '', /not a regular file/);
    assert.match(reasons['z-big.bin'] ?? '', /1000 output bytes/);
  });

  it('never follows output/ itself when it is a link', async () => {
    mkdirSync(path.join(dir, 'elsewhere'));
    writeFileSync(path.join(dir, 'elsewhere', 'secret.txt'), 'secret');
    symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, 'output'));
    const store = memoryOutputStore();
    const res = await bindOutputs({ requestId: 'r2', workspaceDir: dir }, { log: silentLogger, signal, outputStore: store, limits: { maxFiles: 10, maxTotalBytes: 1000 } });
    assert.deepEqual(res.outputFiles, []);
    assert.equal(store.files.size, 0);
    assert.match(res.skippedOutputs[0]?.reason ?? '', /itself is a symbolic link/);
  });

  it('caps the number of files', async () => {
    mkdirSync(path.join(dir, 'output'));
    for (let i = 0; i < 5; i++) writeFileSync(path.join(dir, 'output', `f${i}.txt`), String(i));
    const res = await bindOutputs({ requestId: 'r3', workspaceDir: dir }, { log: silentLogger, signal, outputStore: memoryOutputStore(), limits: { maxFiles: 3, maxTotalBytes: 1000 } });
    assert.equal(res.outputFiles.length, 3);
    assert.equal(res.skippedOutputs.length, 2);
    assert.ok(!existsSync(path.join(dir, 'output', 'missing')));
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
