import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { pino } from 'pino';
import { loadConfig, PROJECT_ROOT } from '../../src/config/load.ts';
import { startLocalStack, type LocalStack } from '../../src/local/stack.ts';
import type { RunResult } from '../../src/contracts/result.ts';
import { makeZip } from '../helpers/zip.ts';
import { captureLogger } from '../fakes/log.ts';

export interface TestStack extends LocalStack {
  url: string;
  lines: Record<string, unknown>[];
  dispose(): Promise<void>;
}

/**
 * The real stack for one test file: embedded redis-server, s3rver, fauxqs, the Docker engine,
 * controller and worker, with a private state directory, queue and key prefix.
 */
export async function startTestStack(env: Record<string, string> = {}): Promise<TestStack> {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'ng-e2e-'));
  const tag = randomBytes(4).toString('hex');
  const config = loadConfig({
    ...process.env,
    NANOGRID_STATE_DIR: stateDir,
    NANOGRID_CONTROLLER_PORT: '0',
    NANOGRID_WORKER_ID: `test-${tag}`,
    NANOGRID_QUEUE_NAME: `runs-${tag}`,
    NANOGRID_QUEUE_DEAD_LETTER_NAME: `runs-${tag}-dlq`,
    NANOGRID_REDIS_KEY_PREFIX: `t${tag}`,
    NANOGRID_LOG_LEVEL: 'debug',
    ...env,
  });
  const capture = captureLogger();
  // Keep the lines for assertions; echo them only when asked (NANOGRID_TEST_LOGS=1).
  const log = process.env.NANOGRID_TEST_LOGS ? pino({ level: 'debug' }, pino.multistream([{ stream: process.stderr }])) : capture.log;
  const stack = await startLocalStack(config, log, { imageCacheDir: path.join(PROJECT_ROOT, '.nanogrid') });
  return {
    ...stack,
    url: stack.controller.url,
    lines: capture.lines,
    async dispose() {
      await stack.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

export async function upload(url: string, files: Record<string, string | Buffer>, fields: Record<string, string> = { runtime: 'python' }) {
  return uploadZip(url, makeZip(files), fields);
}

export async function uploadZip(url: string, zip: Buffer, fields: Record<string, string> = { runtime: 'python' }) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.set(k, v);
  form.set('file', new Blob([new Uint8Array(zip)]), 'function.zip');
  const res = await fetch(`${url}/upload`, { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { functionId: string; error?: { code: string; message: string } } };
}

export async function run(url: string, body: unknown) {
  const res = await fetch(`${url}/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, location: res.headers.get('location'), body: (await res.json()) as RunResult & { error?: { code: string; message: string } } };
}

/** Containers of this worker (optionally: of one function) that still exist, running or not. */
export async function leftoverContainers(workerId: string, functionId?: string): Promise<string[]> {
  const docker = new Docker();
  const label = [`nanogrid.sandbox=${workerId}`, ...(functionId ? [`nanogrid.function=${functionId}`] : [])];
  const list = await docker.listContainers({ all: true, filters: { label } });
  return list.map((c) => c.Id);
}
