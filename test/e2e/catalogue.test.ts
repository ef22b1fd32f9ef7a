import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { createS3Client } from '../../src/storage/s3.ts';
import { CatalogueConflict, fromRedisFunctions } from '../../src/catalogue/functions.ts';
import type { FunctionMeta, FunctionVersion } from '../../src/contracts/functionMeta.ts';
import type { RunResult } from '../../src/contracts/result.ts';
import { startTestStack, uploadZip, run, leftoverContainers, type TestStack } from './helpers.ts';
import { makeZip } from '../helpers/zip.ts';

type FunctionDetail = FunctionMeta & { versions: FunctionVersion[] };

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const printing = (text: string) => makeZip({ 'main.py': `print(${JSON.stringify(text)})\n` });

async function getJson<T>(url: string): Promise<{ status: number; body: T & { error?: { code: string; message: string } } }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T & { error?: { code: string; message: string } } };
}

describe('versions and the catalogue API (real stack)', () => {
  let stack: TestStack;
  let s3: S3Client;
  before(async () => {
    stack = await startTestStack();
    s3 = createS3Client(stack.config.aws);
  });
  after(async () => {
    s3.destroy();
    const workerId = stack.worker.workerId;
    await stack.dispose();
    assert.deepEqual(await leftoverContainers(workerId), [], 'no container may outlive the stack');
  });

  async function codeKeys(functionId: string): Promise<string[]> {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: stack.config.storage.codeBucket, Prefix: `functions/${functionId}/` }));
    return (listed.Contents ?? []).map((o) => o.Key ?? '').sort();
  }

  it('stores v1 then v2 under one name; GET /functions/{id} keeps each with sha256, size, runtime, limits, creation time', async () => {
    const zip1 = printing('v1');
    const zip2 = printing('version two');
    const first = await uploadZip(stack.url, zip1, { runtime: 'python', name: 'greeter' });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const second = await uploadZip(stack.url, zip2, { runtime: 'python', name: 'greeter', memoryMb: '128', timeoutMs: '5000' });
    assert.equal(second.status, 201, JSON.stringify(second.body));
    assert.equal(second.body.functionId, first.body.functionId, 'the name finds the same function');
    assert.equal(first.body.version, 1);
    assert.equal(second.body.version, 2);
    const id = first.body.functionId;

    const { status, body: fn } = await getJson<FunctionDetail>(`${stack.url}/functions/${id}`);
    assert.equal(status, 200);
    assert.equal(fn.name, 'greeter');
    assert.equal(fn.latestVersion, 2);
    assert.deepEqual(fn.versions.map((v) => v.version), [1, 2]);
    const [v1, v2] = fn.versions as [FunctionVersion, FunctionVersion];
    assert.deepEqual(
      { sha256: v1.sha256, sizeBytes: v1.sizeBytes, runtime: v1.runtime, memoryMb: v1.memoryMb, timeoutMs: v1.timeoutMs, codeKey: v1.codeKey },
      { sha256: sha256(zip1), sizeBytes: zip1.length, runtime: 'python', memoryMb: 256, timeoutMs: 10000, codeKey: `functions/${id}/v1.zip` },
    );
    assert.deepEqual(
      { sha256: v2.sha256, sizeBytes: v2.sizeBytes, runtime: v2.runtime, memoryMb: v2.memoryMb, timeoutMs: v2.timeoutMs, codeKey: v2.codeKey },
      { sha256: sha256(zip2), sizeBytes: zip2.length, runtime: 'python', memoryMb: 128, timeoutMs: 5000, codeKey: `functions/${id}/v2.zip` },
    );
    for (const v of fn.versions) assert.ok(!Number.isNaN(Date.parse(v.createdAt)) && v.createdAt.endsWith('Z'), v.createdAt);
    assert.ok(v2.createdAt >= v1.createdAt);
    assert.deepEqual(await codeKeys(id), [`functions/${id}/v1.zip`, `functions/${id}/v2.zip`]);

    const listed = await getJson<{ functions: FunctionMeta[] }>(`${stack.url}/functions`);
    const mine = listed.body.functions.filter((f) => f.name === 'greeter');
    assert.deepEqual(mine.map((f) => [f.functionId, f.latestVersion]), [[id, 2]]);

    const one = await getJson<FunctionVersion & { functionId: string }>(`${stack.url}/functions/${id}/versions/1`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, { functionId: id, name: 'greeter', ...v1 });
    const all = await getJson<{ versions: FunctionVersion[] }>(`${stack.url}/functions/${id}/versions`);
    assert.deepEqual(all.body.versions, fn.versions);
    const missing = await getJson(`${stack.url}/functions/${id}/versions/3`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error?.code, 'VERSION_NOT_FOUND');
    assert.match(missing.body.error?.message ?? '', /no version 3; the latest is 2/);
    const bad = await getJson(`${stack.url}/functions/${id}/versions/one`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error?.code, 'INVALID_VERSION');
    const unknown = await getJson(`${stack.url}/functions/fn-0000000000000000`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error?.code, 'FUNCTION_NOT_FOUND');

    // A run takes the latest unless it names a version.
    const latest = await run(stack.url, { functionId: id });
    assert.equal(latest.body.status, 'SUCCESS', latest.body.stderr);
    assert.equal(latest.body.stdout, 'version two\n');
    assert.equal(latest.body.version, 2);
    assert.equal(latest.body.memoryLimitMb, 128, "v2's own memory limit");
    const old = await run(stack.url, { functionId: id, version: 1 });
    assert.equal(old.body.stdout, 'v1\n');
    assert.equal(old.body.version, 1);
    const none = await run(stack.url, { functionId: id, version: 3 });
    assert.equal(none.status, 404);
    assert.equal(none.body.error?.code, 'VERSION_NOT_FOUND');
  });

  it('adds a version by functionId; refuses an unknown functionId (404) and a name that belongs to another function (409)', async () => {
    const a = await uploadZip(stack.url, printing('a'), { runtime: 'python', name: 'fn-a' });
    const b = await uploadZip(stack.url, printing('b'), { runtime: 'python', name: 'fn-b' });
    const byId = await uploadZip(stack.url, printing('a2'), { runtime: 'python', functionId: a.body.functionId });
    assert.equal(byId.status, 201);
    assert.equal(byId.body.version, 2);
    assert.equal(byId.body.name, 'fn-a', 'the name is kept');

    const unknown = await uploadZip(stack.url, printing('x'), { runtime: 'python', functionId: 'fn-ffffffffffffffff' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error?.code, 'FUNCTION_NOT_FOUND');

    const keysBefore = await codeKeys(a.body.functionId);
    const taken = await uploadZip(stack.url, printing('x'), { runtime: 'python', functionId: a.body.functionId, name: 'fn-b' });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.error?.code, 'NAME_TAKEN');
    assert.ok(taken.body.error?.message.includes(`belongs to function ${b.body.functionId}`), taken.body.error?.message);
    assert.deepEqual(await codeKeys(a.body.functionId), keysBefore, 'the refused upload stored nothing');
  });

  it('concurrent first uploads under one new name become v1..v5 of one function, latestVersion 5', async () => {
    const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => uploadZip(stack.url, printing(`c${i}`), { runtime: 'python', name: 'racer' })));
    assert.deepEqual(answers.map((a) => a.status), [201, 201, 201, 201, 201]);
    const ids = new Set(answers.map((a) => a.body.functionId));
    assert.equal(ids.size, 1, 'one function');
    assert.deepEqual(answers.map((a) => a.body.version as number).sort(), [1, 2, 3, 4, 5]);
    const { body: fn } = await getJson<FunctionDetail>(`${stack.url}/functions/${[...ids][0] ?? ''}`);
    assert.equal(fn.latestVersion, 5);
    assert.equal(fn.versions.length, 5);
    const listed = await getJson<{ functions: FunctionMeta[] }>(`${stack.url}/functions`);
    assert.equal(listed.body.functions.filter((f) => f.name === 'racer').length, 1);
  });

  it('DELETE /functions/{id} removes every code object and the metadata; then 404 everywhere and the name is free', async () => {
    const first = await uploadZip(stack.url, printing('d1'), { runtime: 'python', name: 'doomed' });
    await uploadZip(stack.url, printing('d2'), { runtime: 'python', name: 'doomed' });
    const id = first.body.functionId;
    assert.equal((await codeKeys(id)).length, 2);

    const res = await fetch(`${stack.url}/functions/${id}`, { method: 'DELETE' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { functionId: id, deletedVersions: [1, 2] });

    assert.deepEqual(await codeKeys(id), [], 'code objects gone from S3');
    assert.equal((await getJson(`${stack.url}/functions/${id}`)).status, 404);
    assert.equal((await getJson(`${stack.url}/functions/${id}/versions/1`)).status, 404);
    const listed = await getJson<{ functions: FunctionMeta[] }>(`${stack.url}/functions`);
    assert.ok(!listed.body.functions.some((f) => f.functionId === id || f.name === 'doomed'));
    const ran = await run(stack.url, { functionId: id });
    assert.equal(ran.status, 404);
    assert.equal(ran.body.error?.code, 'FUNCTION_NOT_FOUND');
    const again = await fetch(`${stack.url}/functions/${id}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.equal(((await again.json()) as { error: { code: string } }).error.code, 'FUNCTION_NOT_FOUND');

    const reborn = await uploadZip(stack.url, printing('new'), { runtime: 'python', name: 'doomed' });
    assert.equal(reborn.status, 201);
    assert.notEqual(reborn.body.functionId, id, 'a new function, not the deleted one');
    assert.equal(reborn.body.version, 1);
  });

  it('the store (real Redis): out-of-order saves keep the highest latestVersion; an upload racing a DELETE cannot revive it', async () => {
    const redis = new Redis(stack.redisUrl);
    try {
      const store = fromRedisFunctions(redis, { keyPrefix: `store-${Date.now()}` });
      const version = (n: number) => ({ version: n, codeKey: `functions/fn-s/v${n}.zip`, sizeBytes: 1, sha256: 'x', runtime: 'python' as const, memoryMb: 128, timeoutMs: 1000, createdAt: new Date().toISOString() });
      const meta = { functionId: 'fn-s', name: 'store', runtime: 'python' as const };
      assert.equal(await store.claimName('store', 'fn-s'), 'fn-s');
      assert.equal(await store.claimName('store', 'fn-other'), 'fn-s', 'a claimed name keeps its function');
      const [n1, n2] = [await store.nextVersion('fn-s'), await store.nextVersion('fn-s')];
      await store.saveVersion(meta, version(n2));
      const saved = await store.saveVersion(meta, version(n1));
      assert.equal(saved.latestVersion, 2, 'v1 recorded after v2 does not win');
      assert.equal((await store.get('fn-s'))?.latestVersion, 2);

      const inFlight = await store.nextVersion('fn-s');
      const removed = await store.delete('fn-s');
      assert.deepEqual(removed?.versions.map((v) => v.version), [1, 2]);
      assert.equal(removed?.reserved, 3, 'the in-flight reservation is reported, so its code object is removed too');
      await assert.rejects(store.saveVersion(meta, version(inFlight)), (err: Error) => err instanceof CatalogueConflict && err.code === 'FUNCTION_DELETED');
      assert.equal(await store.get('fn-s'), null);
      assert.equal(await store.findByName('store'), null);
      assert.deepEqual(await store.list(), []);
      assert.equal(await store.delete('fn-s'), null);
    } finally {
      redis.disconnect();
    }
  });

  it('a run in flight when its function is deleted still finishes', async () => {
    const up = await uploadZip(stack.url, makeZip({ 'main.py': 'import time\ntime.sleep(1.5)\nprint("finished anyway")\n' }), { runtime: 'python', name: 'slow' });
    const started = await run(stack.url, { functionId: up.body.functionId, async: true });
    assert.equal(started.status, 202);
    const requestId = (started.body as unknown as { requestId: string }).requestId;
    // Poll the run's own state until it is inside its container (the condition, not a fixed sleep).
    const deadline = Date.now() + 20_000;
    for (;;) {
      const state = await getJson<{ status: string; stage?: string }>(`${stack.url}/runs/${requestId}`);
      if (state.body.status === 'RUNNING' && state.body.stage === 'execute') break;
      assert.ok(Date.now() < deadline, `the run never reached execute: ${JSON.stringify(state.body)}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const deleted = await fetch(`${stack.url}/functions/${up.body.functionId}`, { method: 'DELETE' });
    assert.equal(deleted.status, 200);
    for (;;) {
      const state = await getJson<RunResult>(`${stack.url}/runs/${requestId}`);
      if (['SUCCESS', 'FAILED', 'TIMEOUT', 'OOM', 'ERROR'].includes(state.body.status)) {
        assert.equal(state.body.status, 'SUCCESS', JSON.stringify(state.body));
        assert.equal(state.body.stdout, 'finished anyway\n');
        break;
      }
      assert.ok(Date.now() < deadline, 'the run never finished');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
});
