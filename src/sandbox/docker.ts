import path from 'node:path';
import type Docker from 'dockerode';
import type { Sandbox, SandboxReport, SandboxSpec } from './ports.ts';
import { PermanentRunError } from '../errors.ts';
import { extractPackage } from '../packages/extract.ts';
import type { PackageLimits } from '../packages/inspect.ts';
import { WarmContainer, ContainerGoneError, type RunnerReport } from './container.ts';
import { ContainerPool, type PoolLimits } from './pool.ts';
import { collectOutputs, type OutputLimits } from './outputs.ts';
import { openPeakProbe } from './cgroup.ts';
import type { Workspaces } from './workspace.ts';
import type { Logger } from '../log.ts';
import { readFile } from 'node:fs/promises';
import { chownTree } from './chown.ts';

export interface DockerSandboxConfig {
  workerId: string;
  cpus: number;
  pidsLimit: number;
  tmpSizeMb: number;
  stdoutCapBytes: number;
  stderrCapBytes: number;
  sandboxUid: number;
  packageLimits: PackageLimits;
  outputLimits: OutputLimits;
  pool: PoolLimits;
}

/** Extra time a container gets past the code's own limit before the worker kills it from outside. */
const BACKSTOP_MS = 10_000;
const LABEL = 'nanogrid.sandbox';
const SWEEP_MS = 15_000;

/** The container's limits: strict by default, nothing of the host but its own workspace. */
export function containerOptions(name: string, image: string, memoryMb: number, workspaceDir: string, labels: Record<string, string>, config: DockerSandboxConfig): Docker.ContainerCreateOptions {
  const memory = memoryMb * 1024 * 1024;
  return {
    name,
    Image: image,
    User: `${config.sandboxUid}:${config.sandboxUid}`,
    WorkingDir: '/workspace',
    OpenStdin: true,
    StdinOnce: false, // the runner serves one request per line for as long as the container is warm
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    NetworkDisabled: true,
    Labels: { [LABEL]: config.workerId, ...labels },
    HostConfig: {
      NetworkMode: 'none',
      Memory: memory,
      MemorySwap: memory, // no swap: the limit is the limit
      NanoCpus: Math.round(config.cpus * 1e9),
      PidsLimit: config.pidsLimit,
      ReadonlyRootfs: true,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      IpcMode: 'private',
      Tmpfs: { '/tmp': `rw,exec,nosuid,nodev,size=${config.tmpSizeMb}m,uid=${config.sandboxUid},gid=${config.sandboxUid}` },
      Binds: [`${workspaceDir}:/workspace:rw`],
      LogConfig: { Type: 'none', Config: {} },
    },
  };
}

/** Warm pool key: one function version at one memory size, on one code digest. */
function poolKey(spec: SandboxSpec): string {
  return `${spec.functionId}@v${spec.version}#${spec.codeSha256.slice(0, 16)}:${spec.memoryMb}m`;
}

function toReport(report: RunnerReport, oomKilled: boolean, coldStart: boolean, outputs: SandboxReport['outputs']): SandboxReport {
  return {
    exitCode: report.exitCode ?? null,
    signal: report.signal ?? null,
    timedOut: Boolean(report.timedOut),
    oomKilled,
    phase: report.phase ?? 'run',
    durationMillis: report.durationMillis ?? 0,
    ...(report.compileMillis !== undefined ? { compileMillis: report.compileMillis } : {}),
    cpuMillis: report.cpuMillis ?? 0,
    peakMemoryBytes: report.peakMemoryBytes ?? 0,
    stdout: report.stdout ?? '',
    stderr: report.stderr ?? '',
    stdoutTruncated: Boolean(report.stdoutTruncated),
    stderrTruncated: Boolean(report.stderrTruncated),
    coldStart,
    outputs,
  };
}

/**
 * Runs code in a warm container of its function version when one is idle, else in a new one
 * that then stays warm. A run that may have spoiled its container (OOM, timeout, a changed code
 * tree, a runner that misbehaved) retires it; idle containers retire after the idle TTL.
 */
export function fromDocker(docker: Docker, config: DockerSandboxConfig, workspaces: Workspaces, log: Logger): Sandbox & { readonly pool: ContainerPool } {
  const pool = new ContainerPool(config.pool);
  let counter = 0;

  async function retire(c: WarmContainer): Promise<void> {
    pool.remove(c);
    await c.destroy();
    await workspaces.destroy(c.workspaceId);
  }

  const sweeper = setInterval(() => {
    for (const c of pool.expired()) void retire(c);
  }, SWEEP_MS);
  sweeper.unref();

  async function startContainer(spec: SandboxSpec, key: string): Promise<WarmContainer> {
    if (pool.size >= config.pool.total) {
      const evicted = pool.evictIdle();
      if (evicted) await retire(evicted);
    }
    const workspaceId = `c-${spec.requestId}`;
    const workspaceDir = await workspaces.create(workspaceId);
    try {
      try {
        await extractPackage(await readFile(spec.codePath), workspaceDir, spec.runtime, config.packageLimits);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new PermanentRunError('the unpacked code does not fit in the run workspace — raise worker.workspaceSizeMb or ship less', { cause: err });
        throw err;
      }
      await chownTree(workspaceDir, config.sandboxUid);
      const name = `nanogrid-${config.workerId.replace(/[^a-zA-Z0-9_.-]/g, '_')}-${++counter}-${spec.requestId.slice(0, 8)}`;
      const labels = { 'nanogrid.function': spec.functionId, 'nanogrid.version': String(spec.version) };
      try {
        return await WarmContainer.start(docker, containerOptions(name, spec.image, spec.memoryMb, workspaceDir, labels, config), key, workspaceId, workspaceDir);
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) throw new PermanentRunError(`runtime image ${spec.image} is missing on this worker — run \`npm run images\``, { cause: err });
        throw err;
      }
    } catch (err) {
      await workspaces.destroy(workspaceId);
      throw err;
    }
  }

  return {
    pool,
    async run(spec, signal) {
      const key = poolKey(spec);
      let container = pool.take(key);
      const coldStart = !container;
      if (!container) {
        container = await startContainer(spec, key);
        pool.add(container);
      }
      const c = container;
      // The container's own peak counter, reset now: the run's peak, not the container's all-time one.
      const probe = openPeakProbe(c.id);
      let report: RunnerReport;
      try {
        report = await c.run(
          {
            requestId: spec.requestId,
            functionId: spec.functionId,
            command: spec.command,
            compile: spec.compile,
            compileOutput: spec.compileOutput,
            forkScript: spec.forkScript,
            input: spec.input,
            timeoutMs: spec.timeoutMs,
            stdoutCapBytes: config.stdoutCapBytes,
            stderrCapBytes: config.stderrCapBytes,
          },
          spec.timeoutMs + BACKSTOP_MS,
          signal,
        );
        const peak = probe?.read();
        if (typeof peak === 'number' && typeof report.baseMemoryBytes === 'number') report.peakMemoryBytes = Math.max(0, peak - report.baseMemoryBytes);
      } catch (err) {
        const oom = err instanceof ContainerGoneError && (await c.oomKilled());
        await retire(c);
        if (signal.aborted) throw new Error('run cancelled: the worker is shutting down', { cause: err });
        if (oom) return toReport({ exitCode: null, signal: 'SIGKILL', peakMemoryBytes: spec.memoryMb * 1024 * 1024 }, true, coldStart, { files: [], skipped: [] });
        throw err;
      } finally {
        probe?.close();
      }
      try {
        if (report.runnerError) throw new Error(`the runner in ${spec.image} failed: ${report.runnerError}`);
        if (report.spawnError) throw new PermanentRunError(`could not start the function: ${report.spawnError}`);
        const oomKilled = Boolean(report.oomKilled);
        // Between runs nothing of the function runs (the runner killed its strays): safe to copy.
        const outputs = await collectOutputs(path.join(c.workspaceDir, 'output'), spec.outputDir, config.outputLimits);
        const spoiled = oomKilled || report.timedOut || report.workspaceChanged;
        if (spoiled || !pool.mayKeep(c)) {
          if (report.workspaceChanged) log.info({ requestId: spec.requestId, container: c.id.slice(0, 12) }, 'the run changed files outside output/; retiring its container');
          await retire(c);
        } else {
          pool.release(c);
        }
        return toReport(report, oomKilled, coldStart, outputs);
      } catch (err) {
        await retire(c);
        throw err;
      }
    },

    async prewarm(spec) {
      const key = poolKey(spec);
      if (config.pool.perKey === 0 || pool.hasIdle(key)) return false;
      const c = await startContainer(spec, key);
      pool.add(c);
      if (!pool.mayKeep(c)) {
        await retire(c);
        return false;
      }
      pool.release(c);
      return true;
    },

    async ping() {
      await docker.ping();
    },

    async removeOrphans() {
      const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL}=${config.workerId}`] } });
      await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
      return list.length;
    },

    async close() {
      clearInterval(sweeper);
      await Promise.all(pool.drain().map((c) => c.destroy().then(() => workspaces.destroy(c.workspaceId))));
    },
  };
}
