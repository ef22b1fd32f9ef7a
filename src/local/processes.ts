import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Logger } from '../log.ts';

/** A TCP port that was free a moment ago, on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function which(binary: string, extraDirs: string[] = ['/usr/sbin', '/usr/bin', '/sbin', '/usr/local/bin', '/usr/local/sbin']): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), ...extraDirs];
  for (const dir of dirs) if (dir && existsSync(`${dir}/${binary}`)) return `${dir}/${binary}`;
  return null;
}

export class MissingDependencyError extends Error {
  override name = 'MissingDependencyError';
}

/**
 * Finds a binary from a Debian package; installs the package with apt-get when missing and we
 * are root (as on a fresh Debian machine or in CI); otherwise says exactly what to install.
 */
export function requireBinary(binary: string, debPackage: string, log: Logger): string {
  const found = which(binary);
  if (found) return found;
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !which('apt-get')) {
    throw new MissingDependencyError(`${binary} is not installed: run \`sudo apt-get install ${debPackage}\` and start again`);
  }
  log.info({ package: debPackage }, `installing ${debPackage} with apt-get (once)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let res = spawnSync('apt-get', ['install', '-y', '-qq', debPackage], { stdio: 'inherit', env });
  if (res.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    res = spawnSync('apt-get', ['install', '-y', '-qq', debPackage], { stdio: 'inherit', env });
  }
  const installed = which(binary);
  if (res.status !== 0 || !installed) throw new MissingDependencyError(`could not install ${debPackage} with apt-get; install it by hand and start again`);
  return installed;
}

/** Starts a long-lived child whose output goes to a log file; it dies with us. */
export function startDaemon(command: string, args: string[], logFile: string): ChildProcess {
  const out = openSync(logFile, 'a');
  return spawn(command, args, { stdio: ['ignore', out, out] });
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, child?: ChildProcess, logFile?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}${logFile ? `; see ${logFile}` : ''}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not come up within ${timeoutMs} ms${logFile ? `; see ${logFile}` : ''}`);
}

export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}
