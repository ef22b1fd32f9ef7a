import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { loadConfig, PROJECT_ROOT } from '../src/config/load.ts';
import type { Logger } from '../src/log.ts';
import { freePort, stopChild } from '../src/local/processes.ts';
import { stackEnv, startLocalServices } from '../src/local/stack.ts';
import { waitReady } from './api.ts';

/** Label put on the containers the benchmark itself runs (the `docker run` yardstick). */
export const BENCH_LABEL = 'nanogrid.bench';
/** Label the worker puts on its sandboxes (src/sandbox/docker.ts). */
const SANDBOX_LABEL = 'nanogrid.sandbox';

export interface BenchStack {
  url: string;
  controllerPid: number;
  workerPid: number;
  workerId: string;
  /** Value of BENCH_LABEL for this run's own containers. */
  tag: string;
  docker: Docker;
  /** Where the controller's and worker's stdout/stderr go. */
  logs: { controller: string; worker: string };
  /** Why a process of the stack is gone, or null while both live. */
  dead(): string | null;
  stop(): Promise<void>;
}

export interface BenchStackOptions {
  workerConcurrency: number;
  logDir: string;
  log: Logger;
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Mount points under `dir` (the worker's tmpfs workspaces), deepest first. */
function mountsUnder(dir: string): string[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => unescape(line.split(' ')[4] ?? ''))
    .filter((mount) => mount.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * The platform as separate processes, so their CPU and memory can be read from /proc: the
 * embedded services run in this process (as `npm start` does), controller and worker are
 * `node --import tsx` children pointed at them by stackEnv(). A private state directory; the
 * runtime image cache is the project's `.nanogrid`. `stop()` removes everything it started,
 * containers included.
 */
export async function startBenchStack(options: BenchStackOptions): Promise<BenchStack> {
  const { log } = options;
  const stateDir = mkdtempSync(path.join(tmpdir(), 'nanogrid-bench-'));
  const tag = randomBytes(4).toString('hex');
  const workerId = `bench-${tag}`;
  const config = loadConfig({ ...process.env, NANOGRID_STATE_DIR: stateDir });
  const children: Record<'controller' | 'worker', ChildProcess | null> = { controller: null, worker: null };
  mkdirSync(options.logDir, { recursive: true });
  const logs = { controller: path.join(options.logDir, 'controller.log'), worker: path.join(options.logDir, 'worker.log') };

  const stops: { what: string; stop: () => Promise<void> }[] = [];
  let docker: Docker | null = null;
  const stopAll = async () => {
    // Children first (controller, then worker: it finishes runs in flight), then what they used.
    for (const name of ['controller', 'worker'] as const) {
      const child = children[name];
      if (child) await stopChild(child, 'SIGTERM', 20_000).catch((err: Error) => log.warn({ err }, `stopping the ${name} failed`));
    }
    if (docker) await removeContainers(docker, [`${SANDBOX_LABEL}=${workerId}`, `${BENCH_LABEL}=${tag}`], log);
    for (const { what, stop } of stops.reverse()) await stop().catch((err: Error) => log.warn({ err }, `stopping ${what} failed`));
    for (const mount of mountsUnder(stateDir)) await promisify(execFile)('umount', ['-l', mount]).catch(() => undefined);
    await rm(stateDir, { recursive: true, force: true }).catch((err: Error) => log.warn({ err, stateDir }, 'could not remove the state directory'));
  };

  try {
    // The embedded services exactly as `npm start` brings them up, handed to the children by stackEnv().
    const services = await startLocalServices(config, log, { runtimes: ['python'], imageCacheDir: path.join(PROJECT_ROOT, '.nanogrid') });
    docker = services.docker;
    stops.push({ what: 'the embedded services', stop: services.stop });
    Object.assign(config, services.config);

    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...stackEnv(config),
      PORT: String(port),
      LOG_LEVEL: 'warn',
      NANOGRID_WORKER_ID: workerId,
      NANOGRID_WORKER_CONCURRENCY: String(options.workerConcurrency),
      NANOGRID_WORKER_SHUTDOWN_GRACE_MS: '10000',
    };
    const spawnPart = (name: 'controller' | 'worker') => {
      const out = openSync(logs[name], 'w');
      // NANOGRID_BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each process there, for finding where the milliseconds go.
      const prof = process.env.NANOGRID_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.NANOGRID_BENCH_CPU_PROF}`] : [];
      const child = spawn(process.execPath, [...prof, '--import', 'tsx', path.join(PROJECT_ROOT, `src/${name}/main.ts`)], { cwd: PROJECT_ROOT, env, stdio: ['ignore', out, out] });
      closeSync(out);
      children[name] = child;
      return child;
    };
    const worker = spawnPart('worker');
    const controller = spawnPart('controller');
    const dead = () => {
      for (const [name, child] of Object.entries(children)) {
        if (child && (child.exitCode !== null || child.signalCode !== null)) {
          return `the ${name} exited (${child.exitCode ?? child.signalCode}); last lines of ${logs[name as keyof typeof logs]}:\n${tail(logs[name as keyof typeof logs])}`;
        }
      }
      return null;
    };
    const url = `http://${config.controller.host}:${port}`;
    await waitReady(url, 90_000, dead);
    if (worker.pid === undefined || controller.pid === undefined) throw new Error('a child process has no pid');
    return { url, controllerPid: controller.pid, workerPid: worker.pid, workerId, tag, docker: services.docker, logs, dead, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Force-removes the containers carrying any of these labels (key=value); none may outlive the bench. */
export async function removeContainers(docker: Docker, labels: string[], log: Logger): Promise<number> {
  let removed = 0;
  for (const label of labels) {
    try {
      const list = await docker.listContainers({ all: true, filters: { label: [label] } });
      for (const c of list) {
        await docker.getContainer(c.Id).remove({ force: true }).then(() => removed++, (err: Error) => log.warn({ err, id: c.Id }, 'could not remove a container'));
      }
    } catch (err) {
      log.warn({ err, label }, 'could not list containers');
    }
  }
  if (removed > 0) log.warn({ removed }, 'removed containers left behind');
  return removed;
}
