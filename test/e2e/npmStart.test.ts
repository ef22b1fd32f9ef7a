import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PROJECT_ROOT } from '../../src/config/load.ts';
import { upload, run, leftoverContainers } from './helpers.ts';

const stateDir = mkdtempSync(path.join(tmpdir(), 'ng-start-'));
const workerId = `start-${randomBytes(4).toString('hex')}`;

/** Starts `npm start`'s program as a user would, and waits for its banner. */
async function start(): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/local/main.ts'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, NANOGRID_STATE_DIR: stateDir, PORT: '0', NANOGRID_WORKER_ID: workerId, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within 120 s:\n${output}`)), 120_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /controller\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => reject(new Error(`npm start exited with ${code}:\n${output}`)));
  });
  return { child, url, exited };
}

describe('npm start', () => {
  after(() => rmSync(stateDir, { recursive: true, force: true }));

  it('brings the stack up, runs a function, stops on Ctrl-C, and keeps code and metadata across a restart', async () => {
    const first = await start();
    const up = await upload(first.url, { 'main.py': 'print("Hello from NanoGrid Plus!")\n' });
    assert.equal(up.status, 201);
    const ran = await run(first.url, { functionId: up.body.functionId, inputData: {} });
    assert.equal(ran.body.status, 'SUCCESS');
    assert.equal(ran.body.stdout, 'Hello from NanoGrid Plus!\n');

    first.child.kill('SIGINT');
    assert.equal(await first.exited, 0, 'Ctrl-C ends npm start cleanly');
    assert.deepEqual(await leftoverContainers(workerId), [], 'no container left behind');

    const second = await start();
    try {
      const fn = (await (await fetch(`${second.url}/functions/${up.body.functionId}`)).json()) as { latestVersion: number };
      assert.equal(fn.latestVersion, 1, 'metadata survived the restart');
      const again = await run(second.url, { functionId: up.body.functionId, inputData: {} });
      assert.equal(again.body.status, 'SUCCESS', 'code survived the restart');
      const earlier = await fetch(`${second.url}/runs/${ran.body.requestId}`);
      assert.equal(((await earlier.json()) as { stdout: string }).stdout, 'Hello from NanoGrid Plus!\n', 'results survived the restart');
    } finally {
      second.child.kill('SIGINT');
      assert.equal(await second.exited, 0);
    }
  });
});
