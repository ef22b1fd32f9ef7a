import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Redis } from 'ioredis';
import { fromRedis, type ResultBus } from '../../src/bus/resultBus.ts';
import { fromRedisRunState } from '../../src/bus/runState.ts';
import { fromRedisIdempotency } from '../../src/bus/idempotency.ts';
import { fromRedisFunctions } from '../../src/catalogue/functions.ts';
import { createApp } from '../../src/controller/app.ts';
import { DEFAULT_PACKAGE_LIMITS } from '../../src/packages/inspect.ts';
import { startRedis, type Service } from '../../src/local/services.ts';
import { createS3Client, fromS3Code } from '../../src/storage/s3.ts';
import { errorResult, type RunResult } from '../../src/contracts/result.ts';
import type { RunMessage } from '../../src/contracts/runMessage.ts';
import { memoryBus } from '../fakes/bus.ts';
import { memoryCodeStore } from '../fakes/stores.ts';
import { silentLogger } from '../fakes/log.ts';

function result(requestId: string, stdout: string): RunResult {
  return { ...errorResult({ requestId, functionId: 'fn-x' }, ''), status: 'SUCCESS', exitCode: 0, stdout, message: undefined };
}

let redisService: Service;
let stateDir: string;
const connections: Redis[] = [];
const connect = () => {
  const c = new Redis(redisService.url, { maxRetriesPerRequest: null });
  connections.push(c);
  return c;
};

before(async () => {
  stateDir = mkdtempSync(path.join(tmpdir(), 'ng-bus-'));
  redisService = await startRedis(stateDir, silentLogger);
});
after(async () => {
  for (const c of connections) c.disconnect();
  await redisService.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

/** The same contract for the Redis adapter and the in-memory fake the unit tests use. */
function contract(name: string, make: () => ResultBus) {
  describe(`result bus contract: ${name}`, () => {
    it('returns a result published before anyone read', async () => {
      const bus = make();
      await bus.publish(result('a1', 'early'));
      assert.equal((await bus.read('a1', 1000))?.stdout, 'early');
    });
    it('wakes a reader that came first', async () => {
      const bus = make();
      const reading = bus.read('a2', 5000);
      await new Promise((r) => setTimeout(r, 50));
      await bus.publish(result('a2', 'late'));
      assert.equal((await reading)?.stdout, 'late');
    });
    it('keeps the first result: a redelivered run cannot publish a different one', async () => {
      const bus = make();
      assert.equal((await bus.publish(result('a3', 'first'))).stored, true);
      const second = await bus.publish(result('a3', 'second'));
      assert.equal(second.stored, false);
      assert.equal(second.result.stdout, 'first');
      assert.equal((await bus.peek('a3'))?.stdout, 'first');
    });
    it('gives null when nothing comes within the timeout', async () => {
      const started = Date.now();
      assert.equal(await make().read('a4', 200), null);
      assert.ok(Date.now() - started >= 190);
    });
  });
}

const prefix = () => `result:${Math.random().toString(36).slice(2)}:`;
contract('redis', () => fromRedis(connect(), connect(), { prefix: prefix(), ttlSeconds: 60 }));
contract('in-memory fake', () => memoryBus());

describe('the race that broke the first system', () => {
  let server: Server;
  let url: string;
  let published: { subscribers: number } | undefined;
  let otherRedis: Service;
  let deafSubscriber: Redis;
  before(async () => {
    otherRedis = await startRedis(mkdtempSync(path.join(tmpdir(), 'ng-bus-deaf-')), silentLogger);
    deafSubscriber = new Redis(otherRedis.url, { maxRetriesPerRequest: null });
    connections.push(deafSubscriber);
    const redis = connect();
    const keyPrefix = `race${Date.now()}`;
    const functions = fromRedisFunctions(redis, { keyPrefix });
    await functions.saveVersion(
      { functionId: 'fn-race', name: 'race', runtime: 'python' },
      { version: 1, codeKey: 'functions/fn-race/v1.zip', sizeBytes: 1, sha256: 'x', runtime: 'python', memoryMb: 128, timeoutMs: 1000, createdAt: new Date().toISOString() },
    );
    const resultsConfig = { prefix: `result:${keyPrefix}:`, ttlSeconds: 60 };
    // The "worker" publishes on its own connection before the controller even starts to read:
    // send() resolves only once the result is on the stream, with no subscriber yet.
    const workerBus = fromRedis(connect(), null, resultsConfig);
    const deadS3 = createS3Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9', accessKeyId: 'x', secretAccessKey: 'x', forcePathStyle: true });
    const app = createApp({
      log: silentLogger,
      limits: { waitBudgetMs: 5000, maxUploadBytes: 1 << 20, publicUrl: '', defaultTimeoutMs: 1000, defaultMemoryMb: 128, maxTimeoutMs: 10000, minMemoryMb: 64, maxMemoryMb: 512 },
      packageLimits: DEFAULT_PACKAGE_LIMITS,
      codeBucket: 'code',
      functions,
      codeStore: memoryCodeStore(),
      queue: {
        async send(message: RunMessage) {
          published = await workerBus.publish(result(message.requestId, 'published before anyone listened'));
        },
        async ping() {},
      },
      // The controller's Pub/Sub connection goes to a Redis where nothing is ever published (as when
      // it subscribed late, or lost its subscription): only the stream can deliver the result.
      bus: fromRedis(redis, deafSubscriber, resultsConfig),
      runState: fromRedisRunState(redis, { keyPrefix, ttlSeconds: 60 }),
      idempotency: fromRedisIdempotency(redis, { keyPrefix, ttlSeconds: 60 }),
      checks: { redis: async () => void (await redis.ping()), s3: () => fromS3Code(deadS3, { codeBucket: 'code' }).ping() },
    });
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    deafSubscriber.disconnect();
    await otherRedis.stop();
  });

  it('still returns the result to POST /run, from the stream', async () => {
    const res = await fetch(`${url}/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ functionId: 'fn-race', inputData: {} }) });
    assert.equal(res.status, 200);
    assert.equal(published?.subscribers, 0, 'nobody heard the result when it was published');
    const body = (await res.json()) as RunResult;
    assert.equal(body.stdout, 'published before anyone listened');
    assert.equal(body.status, 'SUCCESS');
  });

  it('answers /readyz with 503 naming the dependency that does not answer', async () => {
    const res = await fetch(`${url}/readyz`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { failing: string[]; checks: Record<string, string> };
    assert.deepEqual(body.failing, ['s3']);
    assert.equal(body.checks.redis, 'ok');
  });
});
