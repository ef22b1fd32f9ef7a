import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { startTestStack, upload, run, leftoverContainers, type TestStack } from './helpers.ts';

const MB = 1024 * 1024;

// Every hostile case runs twice: in a new (cold) container, and in a pre-warmed one, so the
// limits are shown to hold on warm containers too.
for (const mode of ['cold', 'warm'] as const)
describe(`the sandbox against hostile code (real Docker, ${mode} containers)`, () => {
  let stack: TestStack;
  let hello: string;
  const hostSecret = `/tmp/ng-host-secret-${randomBytes(4).toString('hex')}`;

  before(async () => {
    writeFileSync(hostSecret, 'the host secret');
    stack = await startTestStack();
    hello = (await upload(stack.url, { 'main.py': 'print("still here")\n' })).body.functionId;
  });
  after(async () => {
    rmSync(hostSecret, { force: true });
    const workerId = stack.worker.workerId;
    await stack.dispose();
    assert.deepEqual(await leftoverContainers(workerId), [], 'the engine holds no container of ours');
  });

  /**
   * After each hostile run: the worker serves the next run normally, and a container that a run
   * may have spoiled (timeout, OOM) is gone rather than kept warm.
   */
  async function stillServes(spoiledFunction?: string) {
    const res = await run(stack.url, { functionId: hello });
    assert.equal(res.body.status, 'SUCCESS');
    assert.equal(res.body.stdout, 'still here\n');
    if (spoiledFunction) assert.deepEqual(await leftoverContainers(stack.worker.workerId, spoiledFunction), [], 'the spoiled container was retired');
  }

  let lastFunction = '';
  async function runCode(files: Record<string, string>, runBody: Record<string, unknown> = {}, uploadFields: Record<string, string> = {}) {
    const up = await upload(stack.url, files, { runtime: 'python', ...uploadFields, ...(mode === 'warm' ? { prewarm: 'true' } : {}) });
    assert.equal(up.status, 201, JSON.stringify(up.body));
    lastFunction = up.body.functionId;
    if (mode === 'warm') await prewarmed(up.body.functionId);
    const res = await run(stack.url, { functionId: up.body.functionId, inputData: {}, ...runBody });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.coldStart, mode === 'cold', `the run was ${res.body.coldStart ? 'cold' : 'warm'}`);
    return res.body;
  }

  /** Waits for the worker's word that the function's container is ready. */
  async function prewarmed(functionId: string) {
    const deadline = Date.now() + 30_000;
    while (!stack.lines.some((l) => l.functionId === functionId && l.msg === 'container pre-warmed' && l.added === true)) {
      assert.ok(Date.now() < deadline, 'no pre-warmed container within 30 s');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('kills an infinite loop at its time limit: TIMEOUT, wall time within 500 ms of the limit', async () => {
    const r = await runCode({ 'main.py': 'while True:\n    pass\n' }, { timeoutMs: 1500 });
    assert.equal(r.status, 'TIMEOUT');
    assert.ok(Math.abs(r.durationMillis - 1500) <= 500, `durationMillis ${r.durationMillis}`);
    assert.match(r.message ?? '', /1500 ms limit/);
    await stillServes(lastFunction);
  });

  it('reports a 1 GB allocation under 128 MB as OOM, from the kernel, not from exit 137', async () => {
    // The limit is the function's (set at upload), so a pre-warmed container has it too.
    const r = await runCode({ 'main.py': 'x = bytearray(1024 ** 3)\nprint("allocated")\n' }, {}, { memoryMb: '128' });
    assert.equal(r.status, 'OOM');
    assert.equal(r.stdout, '');
    assert.match(r.message ?? '', /128 MB memory limit/);
    assert.equal(r.recommendedMemoryMb, 256);
    await stillServes(lastFunction);
  });

  it('measures peak memory from the cgroup: 100 MB touched reports 100–130 MB', async () => {
    const code = 'x = bytearray(100 * 1024 * 1024)\nfor i in range(0, len(x), 4096):\n    x[i] = 1\nprint("ok")\n';
    const r = await runCode({ 'main.py': code });
    assert.equal(r.status, 'SUCCESS');
    assert.ok(r.peakMemoryBytes >= 100 * MB && r.peakMemoryBytes <= 130 * MB, `peak ${r.peakMemoryBytes / MB} MB`);
    assert.ok((r.cpuMillis ?? -1) >= 0);
  });

  it('contains a fork bomb at the pids limit and kills it at the time limit', async () => {
    const code = 'import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n';
    const r = await runCode({ 'main.py': code }, { timeoutMs: 2000 });
    assert.equal(r.status, 'TIMEOUT');
    await stillServes(lastFunction);
  });

  it('caps 200 MB of stdout at 1 MiB and says so', async () => {
    const code = 'import sys\nchunk = b"x" * (1024 * 1024)\nfor _ in range(200):\n    sys.stdout.buffer.write(chunk)\nprint("done", file=sys.stderr)\n';
    const r = await runCode({ 'main.py': code }, { timeoutMs: 20000 });
    assert.equal(r.status, 'SUCCESS');
    assert.equal(r.stdout.length, MB);
    assert.equal(r.stdoutTruncated, true);
    assert.equal(r.stderr, 'done\n');
    assert.equal(r.stderrTruncated, false);
    await stillServes();
  });

  it('has no network: neither the controller port nor a public address can be reached', async () => {
    const port = new URL(stack.url).port;
    const code = [
      'import json, os, socket',
      'out = {"interfaces": sorted(os.listdir("/sys/class/net"))}',
      `for name, addr in [("controller", ("127.0.0.1", ${port})), ("public", ("1.1.1.1", 80))]:`,
      '    try:',
      '        socket.create_connection(addr, timeout=2).close()',
      '        out[name] = "connected"',
      '    except OSError as e:',
      '        out[name] = type(e).__name__',
      'print(json.dumps(out))',
    ].join('\n');
    const r = await runCode({ 'main.py': code });
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(out.interfaces, ['lo']);
    assert.notEqual(out.controller, 'connected');
    assert.notEqual(out.public, 'connected');
    await stillServes();
  });

  it('cannot write to /etc, read the host\'s files or see the Docker socket', async () => {
    const code = [
      'import json, os',
      'out = {}',
      'try:',
      '    open("/etc/evil", "w").write("x")',
      '    out["etc"] = "written"',
      'except OSError as e:',
      '    out["etc"] = e.strerror',
      `out["hostFile"] = os.path.exists("${hostSecret}")`,
      'out["dockerSock"] = os.path.exists("/var/run/docker.sock")',
      'print(json.dumps(out))',
    ].join('\n');
    const r = await runCode({ 'main.py': code });
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.match(String(out.etc), /Read-only file system|Permission denied/);
    assert.equal(out.hostFile, false);
    assert.equal(out.dockerSock, false);
    await stillServes();
  });

  it('never binds a symlink in output/: not to a host file, not to /etc/passwd', async () => {
    const code = [
      'import os',
      'os.makedirs("output", exist_ok=True)',
      'os.symlink("/etc/passwd", "output/passwd.txt")',
      `os.symlink("${hostSecret}", "output/secret.txt")`,
      'os.symlink("/", "output/rootdir")',
      'open("output/real.txt", "w").write("real")',
    ].join('\n');
    const r = await runCode({ 'main.py': code });
    assert.equal(r.status, 'SUCCESS', r.stderr);
    assert.equal(r.outputFiles.length, 1);
    assert.match(r.outputFiles[0] ?? '', /\/real\.txt\?/);
    const skipped = Object.fromEntries((r.skippedOutputs ?? []).map((s) => [s.path, s.reason]));
    for (const name of ['passwd.txt', 'secret.txt', 'rootdir']) assert.match(skipped[name] ?? '', /symbolic link/, name);
  });

  it('kills what the code leaves running in the background when main exits', async () => {
    const code = [
      'import json, os, subprocess, sys',
      'data = json.load(sys.stdin)',
      'if data["phase"] == "spawn":',
      '    subprocess.Popen(["sleep", "1000"])',
      '    subprocess.Popen(["python3", "-c", "import time\\nwhile True: time.sleep(1)"], start_new_session=True)',
      '    print("main done")',
      'else:',
      '    cmds = []',
      '    for pid in os.listdir("/proc"):',
      '        if pid.isdigit():',
      '            try:',
      '                cmds.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode().strip())',
      '            except OSError:',
      '                pass',
      '    print(json.dumps(cmds))',
    ].join('\n');
    const r = await runCode({ 'main.py': code }, { inputData: { phase: 'spawn' } });
    assert.equal(r.status, 'SUCCESS', r.stderr);
    assert.equal(r.stdout, 'main done\n');
    assert.ok(r.durationMillis < 1000, `the run waited for its strays: ${r.durationMillis} ms`);
    // The next run of the same function gets the same warm container: nothing of the first is alive.
    const check = await run(stack.url, { functionId: lastFunction, inputData: { phase: 'check' } });
    assert.equal(check.body.coldStart, false);
    const cmds = JSON.parse(check.body.stdout) as string[];
    assert.ok(!cmds.some((c) => c.includes('sleep') || c.includes('time.sleep')), JSON.stringify(cmds));
    await stillServes();
  });

  it('runs as an unprivileged user with no capabilities and no way back to root', async () => {
    const code = [
      'import json, os',
      'status = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\\t" in l)',
      'out = {"uid": os.getuid(), "euid": os.geteuid(), "capEff": status["CapEff"].strip(), "noNewPrivs": status["NoNewPrivs"].strip()}',
      'try:',
      '    os.setuid(0)',
      '    out["setuid"] = "ok"',
      'except OSError as e:',
      '    out["setuid"] = e.strerror',
      'print(json.dumps(out))',
    ].join('\n');
    const r = await runCode({ 'main.py': code });
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.notEqual(out.uid, 0);
    assert.notEqual(out.euid, 0);
    assert.equal(out.capEff, '0000000000000000');
    assert.equal(out.noNewPrivs, '1');
    assert.match(String(out.setuid), /not permitted/);
  });

  it('refuses limits out of bounds with a 400 naming the bound', async () => {
    const low = await upload(stack.url, { 'main.py': 'print(1)\n' }, { runtime: 'python', memoryMb: '10' });
    assert.equal(low.status, 400);
    assert.match(low.body.error?.message ?? '', /memoryMb=10 is below the minimum of 64/);
    const high = await run(stack.url, { functionId: hello, memoryMb: 5000 });
    assert.equal(high.status, 400);
    assert.match(high.body.error?.message ?? '', /memoryMb=5000 is above the maximum of 4096/);
    const long = await run(stack.url, { functionId: hello, timeoutMs: 3_600_000 });
    assert.equal(long.status, 400);
    assert.match(long.body.error?.message ?? '', /timeoutMs=3600000 is above the maximum of 900000/);
    const odd = await run(stack.url, { functionId: hello, timeoutMs: 'soon' });
    assert.equal(odd.status, 400);
    assert.match(odd.body.error?.message ?? '', /timeoutMs must be a whole number/);
  });
});

describe('the three runtimes', () => {
  let stack: TestStack;
  before(async () => (stack = await startTestStack()));
  after(async () => stack.dispose());

  it('node: input on stdin and NANOGRID_INPUT, files under output/', async () => {
    const code = [
      "const fs = require('fs');",
      "const fromFile = JSON.parse(fs.readFileSync(process.env.NANOGRID_INPUT, 'utf8'));",
      "const fromStdin = JSON.parse(fs.readFileSync(0, 'utf8'));",
      "fs.writeFileSync('output/doubled.json', JSON.stringify({ doubled: fromFile.n * 2 }));",
      'console.log(fromStdin.n + fromFile.n);',
    ].join('\n');
    const up = await upload(stack.url, { 'index.js': code }, { runtime: 'node' });
    const r = (await run(stack.url, { functionId: up.body.functionId, inputData: { n: 21 } })).body;
    assert.equal(r.status, 'SUCCESS', r.stderr);
    assert.equal(r.stdout, '42\n');
    const got = await fetch(r.outputFiles[0] ?? '');
    assert.deepEqual(await got.json(), { doubled: 42 });
  });

  it('cpp: compiled then run, input on stdin, output/ ready', async () => {
    const code = [
      '#include <fstream>',
      '#include <iostream>',
      '#include <iterator>',
      '#include <string>',
      'int main() {',
      '  std::string input((std::istreambuf_iterator<char>(std::cin)), {});',
      '  std::ofstream("output/echo.json") << input;',
      '  std::cout << "got " << input.size() << " bytes" << std::endl;',
      '  return 0;',
      '}',
    ].join('\n');
    const up = await upload(stack.url, { 'main.cpp': code }, { runtime: 'cpp' });
    const r = (await run(stack.url, { functionId: up.body.functionId, inputData: { a: 1 } })).body;
    assert.equal(r.status, 'SUCCESS', r.stderr);
    assert.equal(r.stdout, 'got 8 bytes\n');
    assert.equal(r.phase, 'run');
    assert.equal(await (await fetch(r.outputFiles[0] ?? '')).text(), '{"a": 1}');
  });

  it('cpp: a compile error is FAILED with the compiler output and phase "compile"', async () => {
    const up = await upload(stack.url, { 'main.cpp': 'int main() { return undefined_thing; }\n' }, { runtime: 'cpp' });
    const r = (await run(stack.url, { functionId: up.body.functionId })).body;
    assert.equal(r.status, 'FAILED');
    assert.equal(r.phase, 'compile');
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /undefined_thing/);
    assert.match(r.message ?? '', /did not compile/);
  });
});
