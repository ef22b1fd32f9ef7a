import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/storage/s3.ts';
import { startTestStack, upload, uploadZip, run, leftoverContainers, type TestStack } from './helpers.ts';

const HELLO = 'print("Hello from NanoGrid Plus!")\n';

describe('the pipeline end to end (real Redis, S3/SQS emulators, Docker)', () => {
  let stack: TestStack;
  before(async () => (stack = await startTestStack()));
  after(async () => {
    const workerId = stack.worker.workerId;
    await stack.dispose();
    assert.deepEqual(await leftoverContainers(workerId), [], 'no container may outlive the stack');
  });

  it('uploads a function and stores it as v1 in the code bucket', async () => {
    const res = await upload(stack.url, { 'main.py': HELLO });
    assert.equal(res.status, 201);
    const { functionId, version, codeKey, sizeBytes, sha256, runtime } = res.body;
    assert.match(functionId, /^fn-[0-9a-f]{16}$/);
    assert.equal(version, 1);
    assert.equal(runtime, 'python');
    assert.equal(codeKey, `functions/${functionId}/v1.zip`);
    assert.ok(typeof sizeBytes === 'number' && sizeBytes > 22);
    assert.match(String(sha256), /^[0-9a-f]{64}$/);
    const s3 = createS3Client(stack.config.aws);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: stack.config.storage.codeBucket, Prefix: `functions/${functionId}/` }));
    assert.deepEqual(listed.Contents?.map((o) => o.Key), [codeKey]);
    s3.destroy();
  });

  it('runs hello world and returns the result JSON of design.md', async () => {
    const { body: fn } = await upload(stack.url, { 'main.py': HELLO });
    const res = await run(stack.url, { functionId: fn.functionId, inputData: {} });
    assert.equal(res.status, 200);
    const r = res.body;
    assert.equal(r.status, 'SUCCESS');
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, 'Hello from NanoGrid Plus!\n');
    assert.equal(r.stderr, '');
    assert.equal(r.functionId, fn.functionId);
    assert.match(r.requestId, /^[0-9a-f-]{36}$/);
    assert.ok(r.durationMillis > 0 && r.durationMillis < 5000, `durationMillis ${r.durationMillis}`);
    assert.ok(r.peakMemoryBytes > 0, 'peak memory is measured');
    assert.equal(r.peakMemoryMB, Math.round((r.peakMemoryBytes / 1048576) * 10) / 10);
    assert.deepEqual(r.outputFiles, []);
    assert.ok(r.optimizationTip && r.recommendedMemoryMb);

    // The run's log lines carry its ids, and the worker ends the run with [DONE][OK].
    const mine = stack.lines.filter((l) => l.requestId === r.requestId);
    assert.ok(mine.length >= 4);
    assert.ok(mine.every((l) => l.functionId === fn.functionId));
    const done = mine.find((l) => String(l.msg).startsWith(`[DONE][OK] requestId=${r.requestId}`));
    assert.ok(done, 'a [DONE][OK] line');
    assert.equal(typeof done.subscribers, 'number');
    assert.equal(r.coldStart, true, 'a new function starts cold');
    assert.equal((await leftoverContainers(stack.worker.workerId, fn.functionId)).length, 1, 'its container stays warm');

    // The next run of the same version reuses that container: same answer, coldStart false.
    const again = await run(stack.url, { functionId: fn.functionId, inputData: {} });
    assert.equal(again.body.status, 'SUCCESS');
    assert.equal(again.body.stdout, 'Hello from NanoGrid Plus!\n');
    assert.equal(again.body.coldStart, false);
    assert.equal((await leftoverContainers(stack.worker.workerId, fn.functionId)).length, 1);
  });

  it('retires a warm container whose run changed files outside output/', async () => {
    const { body: fn } = await upload(stack.url, { 'main.py': 'open("state.txt", "a").write("x")\nprint(len(open("state.txt").read()))\n' });
    const first = await run(stack.url, { functionId: fn.functionId });
    assert.equal(first.body.status, 'SUCCESS', first.body.stderr);
    assert.equal(first.body.stdout, '1\n');
    const second = await run(stack.url, { functionId: fn.functionId });
    assert.equal(second.body.coldStart, true, 'a spoiled container is not reused');
    assert.equal(second.body.stdout, '1\n', 'the next run starts from the uploaded code, not from what the last run left');
    assert.ok(stack.lines.some((l) => l.requestId === first.body.requestId && l.msg === 'the run changed files outside output/; retiring its container'));
  });

  it('reports each warm run\'s own peak memory, not the container\'s highest so far', async () => {
    const code = 'import json, sys\nn = json.load(sys.stdin)["mb"]\nx = bytearray(n * 1024 * 1024)\nfor i in range(0, len(x), 4096):\n    x[i] = 1\nprint(n)\n';
    const { body: fn } = await upload(stack.url, { 'main.py': code });
    const heavy = await run(stack.url, { functionId: fn.functionId, inputData: { mb: 150 } });
    assert.equal(heavy.body.status, 'SUCCESS', heavy.body.stderr);
    assert.ok(heavy.body.peakMemoryBytes >= 150 * 1048576, `heavy peak ${heavy.body.peakMemoryMB} MB`);
    const light = await run(stack.url, { functionId: fn.functionId, inputData: { mb: 1 } });
    assert.equal(light.body.coldStart, false);
    assert.ok(light.body.peakMemoryBytes < 40 * 1048576, `light peak ${light.body.peakMemoryMB} MB after a heavy run`);
  });

  it('passes inputData as JSON on stdin and in the file named by NANOGRID_INPUT', async () => {
    const code = [
      'import json, os, sys',
      'from_stdin = json.load(sys.stdin)',
      'from_file = json.load(open(os.environ["NANOGRID_INPUT"]))',
      'print(json.dumps({"stdin": from_stdin, "file": from_file}))',
    ].join('\n');
    const { body: fn } = await upload(stack.url, { 'main.py': code });
    const input = { name: 'Ada', list: [1, 2, 3], nested: { ok: true }, text: 'ünïcødé' };
    const res = await run(stack.url, { functionId: fn.functionId, inputData: input });
    assert.equal(res.body.status, 'SUCCESS', res.body.stderr);
    assert.deepEqual(JSON.parse(res.body.stdout), { stdin: input, file: input });
  });

  it('binds files written under output/ to URLs that a plain GET downloads, with Content-Type', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const code = [
      'import os',
      'os.makedirs("output/nested", exist_ok=True)',
      'open("output/result.txt", "w").write("the answer is 42")',
      'open("output/data.json", "w").write("{\\"a\\": 1}")',
      'open("output/nested/table.csv", "w").write("a,b\\n1,2\\n")',
      `open("output/pic.png", "wb").write(bytes.fromhex("${png.toString('hex')}"))`,
      'open("output/blob.weird", "wb").write(b"\\x00\\x01")',
      'open("not-an-output.txt", "w").write("stays")',
    ].join('\n');
    const { body: fn } = await upload(stack.url, { 'main.py': code });
    const res = await run(stack.url, { functionId: fn.functionId, inputData: {} });
    assert.equal(res.body.status, 'SUCCESS', res.body.stderr);
    const byName = new Map(res.body.outputFiles.map((u) => [new URL(u).pathname.split(`/outputs/${res.body.requestId}/`)[1], u]));
    assert.deepEqual([...byName.keys()].sort(), ['blob.weird', 'data.json', 'nested/table.csv', 'pic.png', 'result.txt']);
    for (const u of res.body.outputFiles) assert.ok(new URL(u).pathname.startsWith(`/${stack.config.storage.userDataBucket}/outputs/${res.body.requestId}/`));
    const expect: Record<string, [RegExp, Buffer | string]> = {
      'result.txt': [/^text\/plain/, 'the answer is 42'],
      'data.json': [/^application\/json/, '{"a": 1}'],
      'nested/table.csv': [/^text\/csv/, 'a,b\n1,2\n'],
      'pic.png': [/^image\/png$/, png],
      'blob.weird': [/^application\/octet-stream$/, Buffer.from([0, 1])],
    };
    for (const [name, [type, content]] of Object.entries(expect)) {
      const got = await fetch(byName.get(name) as string);
      assert.equal(got.status, 200, name);
      assert.match(got.headers.get('content-type') ?? '', type, name);
      assert.deepEqual(Buffer.from(await got.arrayBuffer()), Buffer.from(content), name);
    }
  });

  it('reports a non-zero exit as FAILED with its exit code and stderr', async () => {
    const { body: fn } = await upload(stack.url, { 'main.py': 'import sys\nprint("about to fail")\nprint("bad input", file=sys.stderr)\nsys.exit(3)\n' });
    const res = await run(stack.url, { functionId: fn.functionId, inputData: {} });
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'FAILED');
    assert.equal(res.body.exitCode, 3);
    assert.equal(res.body.stdout, 'about to fail\n');
    assert.equal(res.body.stderr, 'bad input\n');
    assert.ok(stack.lines.some((l) => String(l.msg).startsWith(`[DONE][FAIL] requestId=${res.body.requestId}`)));
  });

  it('reports an uncaught exception as FAILED with the traceback', async () => {
    const { body: fn } = await upload(stack.url, { 'main.py': 'raise ValueError("nope")\n' });
    const res = await run(stack.url, { functionId: fn.functionId, inputData: {} });
    assert.equal(res.body.status, 'FAILED');
    assert.equal(res.body.exitCode, 1);
    assert.match(res.body.stderr, /ValueError: nope/);
  });

  it('refuses a non-ZIP and an empty archive with a 400 that says so, storing nothing', async () => {
    const before = await (await fetch(`${stack.url}/functions`)).json();
    const notZip = await uploadZip(stack.url, Buffer.from('print("I am not a zip")\n'));
    assert.equal(notZip.status, 400);
    assert.equal(notZip.body.error?.code, 'NOT_A_ZIP');
    assert.match(notZip.body.error?.message ?? '', /not a ZIP/);
    const empty = Buffer.from('504b0506' + '00'.repeat(18), 'hex');
    const emptyRes = await uploadZip(stack.url, empty);
    assert.equal(emptyRes.status, 400);
    assert.equal(emptyRes.body.error?.code, 'EMPTY_ARCHIVE');
    assert.match(emptyRes.body.error?.message ?? '', /the archive is empty — zip the files themselves/);
    assert.deepEqual(await (await fetch(`${stack.url}/functions`)).json(), before);
  });

  it('refuses bad run requests: malformed JSON, no functionId, unknown function or version', async () => {
    const malformed = await fetch(`${stack.url}/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"functionId": ' });
    assert.equal(malformed.status, 400);
    assert.equal(((await malformed.json()) as { error: { code: string } }).error.code, 'MALFORMED_JSON');
    const missing = await run(stack.url, { inputData: {} });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error?.code, 'MISSING_FUNCTION_ID');
    const unknown = await run(stack.url, { functionId: 'fn-does-not-exist' });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error?.message ?? '', /no function fn-does-not-exist/);
    const { body: fn } = await upload(stack.url, { 'main.py': HELLO });
    const badVersion = await run(stack.url, { functionId: fn.functionId, version: 7 });
    assert.equal(badVersion.status, 404);
    assert.equal(badVersion.body.error?.code, 'VERSION_NOT_FOUND');
  });

  it('answers 202 with a Location for async runs, and the result is there later', async () => {
    const { body: fn } = await upload(stack.url, { 'main.py': HELLO });
    const res = await run(stack.url, { functionId: fn.functionId, async: true });
    assert.equal(res.status, 202);
    assert.equal(res.body.status, 'PENDING');
    assert.equal(res.location, `/runs/${res.body.requestId}`);
    let final: { status: string } | undefined;
    for (let i = 0; i < 100 && !['SUCCESS', 'FAILED', 'ERROR'].includes(final?.status ?? ''); i++) {
      final = (await (await fetch(`${stack.url}${res.location}`)).json()) as { status: string };
      if (!['SUCCESS', 'FAILED', 'ERROR'].includes(final.status)) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(final?.status, 'SUCCESS');
    const unknown = await fetch(`${stack.url}/runs/00000000-0000-4000-8000-000000000000`);
    assert.equal(unknown.status, 404);
  });

  it('shows the four stage queues (and the callback queue) on the dashboard and reports ready', async () => {
    const page = await fetch(`${stack.url}/admin/queues`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const api = (await (await fetch(`${stack.url}/admin/queues/api/queues`)).json()) as { queues: { name: string }[] };
    const names = api.queues.map((q) => q.name).sort();
    const id = stack.worker.workerId;
    assert.deepEqual(names, [`bind-outputs@${id}`, `callback@${id}`, `execute@${id}`, `fetch-code@${id}`, `publish@${id}`]);
    assert.equal((await fetch(`${stack.url}/healthz`)).status, 200);
    const ready = await fetch(`${stack.url}/readyz`);
    assert.equal(ready.status, 200, JSON.stringify(await ready.clone().json()));
    assert.deepEqual(((await ready.json()) as { checks: object }).checks, { redis: 'ok', sqs: 'ok', s3: 'ok', docker: 'ok' });
  });
});
