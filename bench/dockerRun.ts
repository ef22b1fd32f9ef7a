import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { which } from '../src/local/processes.ts';
import { now } from './measure.ts';

export const HELLO_SOURCE = 'print("Hello from NanoGrid Plus!")\n';
export const HELLO_STDOUT = 'Hello from NanoGrid Plus!\n';
export const RUNTIME_IMAGE = 'nanogrid-runtime-python';
const COMMAND = ['python3', '-u', '/workspace/main.py'];
const RUN_TIMEOUT_MS = 60_000;

export type DockerRunMethod = 'docker CLI' | 'Docker API (dockerode)';

export interface DockerRunSample {
  ok: boolean;
  ms: number;
  error: string | null;
}

export interface DockerRunYardstick {
  method: DockerRunMethod;
  /** What one run does, for the record. */
  command: string;
  run(): Promise<DockerRunSample>;
  dispose(): void;
}

/**
 * The yardstick: one container of the runtime image per run, by hand, with the hello world
 * mounted at /workspace. The Docker CLI when installed (`docker run --rm`), else the same
 * through the engine's API (create, attach, start, wait, remove).
 */
export function dockerRunYardstick(docker: Docker, label: { key: string; value: string }): DockerRunYardstick {
  const dir = mkdtempSync(path.join(tmpdir(), 'nanogrid-bench-hello-'));
  writeFileSync(path.join(dir, 'main.py'), HELLO_SOURCE);
  // The image runs as nobody: it must be able to read the code.
  chmodSync(dir, 0o755);
  chmodSync(path.join(dir, 'main.py'), 0o644);
  const dispose = () => rmSync(dir, { recursive: true, force: true });
  const cli = which('docker');
  if (cli) {
    const args = ['run', '--rm', '--network', 'none', '--label', `${label.key}=${label.value}`, '-v', `${dir}:/workspace`, RUNTIME_IMAGE, ...COMMAND];
    return { method: 'docker CLI', command: `docker ${args.join(' ')}`, run: () => viaCli(cli, args), dispose };
  }
  return {
    method: 'Docker API (dockerode)',
    command: `create+attach+start+wait+remove ${RUNTIME_IMAGE} ${COMMAND.join(' ')} (network none, ${dir}:/workspace)`,
    run: () => viaApi(docker, dir, label),
    dispose,
  };
}

function viaCli(cli: string, args: string[]): Promise<DockerRunSample> {
  const started = now();
  return new Promise((resolve) => {
    const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, ms: now() - started, error: err.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = now() - started;
      if (code !== 0) return resolve({ ok: false, ms, error: `exit ${code ?? signal}: ${stderr.trim().slice(-300)}` });
      if (stdout !== HELLO_STDOUT) return resolve({ ok: false, ms, error: `unexpected stdout ${JSON.stringify(stdout.slice(0, 100))}` });
      resolve({ ok: true, ms, error: null });
    });
  });
}

async function viaApi(docker: Docker, dir: string, label: { key: string; value: string }): Promise<DockerRunSample> {
  const started = now();
  let container: Docker.Container | null = null;
  try {
    container = await docker.createContainer({
      Image: RUNTIME_IMAGE,
      Cmd: COMMAND,
      Labels: { [label.key]: label.value },
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      NetworkDisabled: true,
      HostConfig: { NetworkMode: 'none', Binds: [`${dir}:/workspace`] },
    });
    const stream = (await container.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
    const out = new PassThrough();
    let stdout = '';
    out.on('data', (c: Buffer) => (stdout += c.toString()));
    docker.modem.demuxStream(stream, out, new PassThrough().resume());
    const ended = new Promise<void>((resolve) => stream.once('end', () => resolve()));
    await container.start();
    const state = (await Promise.race([
      container.wait(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('container did not finish in time')), RUN_TIMEOUT_MS).unref()),
    ])) as { StatusCode?: number };
    await Promise.race([ended, new Promise((r) => setTimeout(r, 1_000).unref())]);
    await container.remove({ force: true });
    container = null;
    const ms = now() - started;
    if (state.StatusCode !== 0) return { ok: false, ms, error: `exit ${state.StatusCode}` };
    if (stdout !== HELLO_STDOUT) return { ok: false, ms, error: `unexpected stdout ${JSON.stringify(stdout.slice(0, 100))}` };
    return { ok: true, ms, error: null };
  } catch (err) {
    return { ok: false, ms: now() - started, error: (err as Error).message };
  } finally {
    if (container) await container.remove({ force: true }).catch(() => undefined);
  }
}
