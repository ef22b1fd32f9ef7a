import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import S3rver from 's3rver';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client, ensureBuckets, fromS3Code, fromS3Outputs } from '../../src/storage/s3.ts';
import { freePort } from '../../src/local/processes.ts';
import type { CodeStore, OutputStore } from '../../src/storage/ports.ts';
import { memoryCodeStore, memoryOutputStore } from '../fakes/stores.ts';

/** What a URL from OutputStore.put serves: the S3 adapter's is a real GET; the fake keeps bytes. */
type Fetcher = (url: string) => Promise<{ body: Buffer; contentType: string } | null>;

/** The same contract for the S3 adapters (against s3rver) and the in-memory fakes of the unit tests. */
function contract(name: string, make: () => { code: CodeStore; outputs: OutputStore; fetchOutput: Fetcher }) {
  describe(`storage contract: ${name}`, () => {
    it('gets back the bytes it put, and null for a key it never had', async () => {
      const { code } = make();
      const zip = Buffer.from('PK\u0005\u0006 not really a zip, but bytes');
      await code.put('functions/fn-a/v1.zip', zip, 'sha');
      assert.deepEqual(await code.get('functions/fn-a/v1.zip'), zip);
      assert.equal(await code.get('functions/fn-a/v9.zip'), null);
    });
    it('deletes', async () => {
      const { code } = make();
      await code.put('functions/fn-b/v1.zip', Buffer.from('x'), 'sha');
      await code.delete('functions/fn-b/v1.zip');
      assert.equal(await code.get('functions/fn-b/v1.zip'), null);
    });
    it('stores an output from a stream and serves it, with its Content-Type, at the URL it returns', async () => {
      const { outputs, fetchOutput } = make();
      const url = await outputs.put('req-1', 'nested/result.json', Readable.from([Buffer.from('{"a":'), Buffer.from('1}')]), 'application/json', 7);
      assert.match(url, /outputs\/req-1\/nested\/result\.json/);
      const got = await fetchOutput(url);
      assert.equal(got?.body.toString(), '{"a":1}');
      assert.match(got?.contentType ?? '', /^application\/json/);
    });
  });
}

let dir: string;
let server: S3rver;
let client: S3Client;
const config = { codeBucket: 'contract-code', userDataBucket: 'contract-data', outputPrefix: 'outputs', outputUrlExpirySeconds: 600 };

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'ng-store-'));
  const port = await freePort();
  server = new S3rver({ port, address: '127.0.0.1', directory: dir, silent: true });
  await server.run();
  client = createS3Client({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
  await ensureBuckets(client, [config.codeBucket, config.userDataBucket]);
});
after(async () => {
  client.destroy();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

contract('S3 adapters (AWS SDK v3 against s3rver)', () => ({
  code: fromS3Code(client, config),
  outputs: fromS3Outputs(client, config),
  fetchOutput: async (url) => {
    const res = await fetch(url);
    return res.ok ? { body: Buffer.from(await res.arrayBuffer()), contentType: res.headers.get('content-type') ?? '' } : null;
  },
}));

contract('in-memory fakes', () => {
  const outputs = memoryOutputStore();
  return { code: memoryCodeStore(), outputs, fetchOutput: async (url) => outputs.files.get(url) ?? null };
});
