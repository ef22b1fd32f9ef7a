import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import type { Sandbox, SandboxReport, SandboxSpec } from './ports.ts';
import { PermanentRunError } from '../errors.ts';

export interface DockerSandboxConfig {
  workerId: string;
  cpus: number;
  pidsLimit: number;
  workspaceSizeMb: number;
  stdoutCapBytes: number;
  stderrCapBytes: number;
}

interface RunnerReport extends Partial<SandboxReport> {
  runnerError?: string;
  spawnError?: string;
}

/** Extra time the container gets past the code's own limit before the worker kills it from outside. */
const BACKSTOP_MS = 10_000;
const LABEL = 'nanogrid.sandbox';

/** The container's limits: strict by default, nothing of the host but the run's own workspace. */
export function containerOptions(spec: SandboxSpec, config: DockerSandboxConfig): Docker.ContainerCreateOptions {
  const memory = spec.memoryMb * 1024 * 1024;
  return {
    name: `nanogrid-${spec.requestId}`,
    Image: spec.image,
    User: '65534:65534',
    WorkingDir: '/workspace',
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    NetworkDisabled: true,
    Labels: { [LABEL]: config.workerId, 'nanogrid.request': spec.requestId, 'nanogrid.function': spec.functionId },
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
      Tmpfs: { '/tmp': `rw,exec,nosuid,nodev,size=${config.workspaceSizeMb}m` },
      Binds: [`${spec.workspaceDir}:/workspace:rw`],
      LogConfig: { Type: 'none', Config: {} },
    },
  };
}

function lastJsonLine(text: string): RunnerReport | null {
  const lines = text.trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i] as string) as RunnerReport;
    } catch {
      // not a report line; keep looking
    }
  }
  return null;
}

/** One container per run: created, fed one request on stdin, awaited, measured, removed. */
export function fromDocker(docker: Docker, config: DockerSandboxConfig): Sandbox {
  return {
    async run(spec, signal) {
      let container: Docker.Container;
      try {
        container = await docker.createContainer(containerOptions(spec, config));
      } catch (err) {
        const e = err as { statusCode?: number; message?: string };
        if (e.statusCode === 404) throw new PermanentRunError(`runtime image ${spec.image} is missing on this worker — run \`npm run images\``);
        throw err;
      }
      const kill = () => void container.kill().catch(() => undefined);
      signal.addEventListener('abort', kill, { once: true });
      try {
        const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as NodeJS.ReadWriteStream;
        const out = new PassThrough();
        const err = new PassThrough();
        let stdoutText = '';
        let stderrText = '';
        out.on('data', (c: Buffer) => (stdoutText += c.toString()));
        err.on('data', (c: Buffer) => (stderrText = (stderrText + c.toString()).slice(-8000)));
        docker.modem.demuxStream(stream, out, err);
        await container.start();
        const request = {
          requestId: spec.requestId,
          functionId: spec.functionId,
          command: spec.command,
          compile: spec.compile,
          input: spec.input,
          timeoutMs: spec.timeoutMs,
          stdoutCapBytes: config.stdoutCapBytes,
          stderrCapBytes: config.stderrCapBytes,
        };
        stream.write(JSON.stringify(request) + '\n');
        stream.end();
        const backstop = setTimeout(kill, spec.timeoutMs + BACKSTOP_MS);
        let state: { OOMKilled?: boolean; ExitCode?: number };
        try {
          await container.wait();
          state = (await container.inspect()).State;
        } finally {
          clearTimeout(backstop);
        }
        if (signal.aborted) throw new Error('run cancelled: the worker is shutting down');
        const report = lastJsonLine(stdoutText);
        const oomKilled = Boolean(state.OOMKilled) || Boolean(report?.oomKilled);
        if (!report || report.runnerError) {
          if (oomKilled) return oomReport(spec);
          throw new Error(`the runner in ${spec.image} gave no report (container exit ${state.ExitCode}): ${report?.runnerError ?? stderrText.trim().slice(-500)}`);
        }
        if (report.spawnError) throw new PermanentRunError(`could not start the function: ${report.spawnError}`);
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
          coldStart: true,
        };
      } finally {
        signal.removeEventListener('abort', kill);
        // Whatever happened, the container goes: no orphan survives a run.
        await container.remove({ force: true }).catch(() => undefined);
      }
    },

    async ping() {
      await docker.ping();
    },

    async removeOrphans() {
      const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL}=${config.workerId}`] } });
      await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
      return list.length;
    },
  };
}

function oomReport(spec: SandboxSpec): SandboxReport {
  return {
    exitCode: null,
    signal: 'SIGKILL',
    timedOut: false,
    oomKilled: true,
    phase: 'run',
    durationMillis: 0,
    cpuMillis: 0,
    peakMemoryBytes: spec.memoryMb * 1024 * 1024,
    stdout: '',
    stderr: '',
    stdoutTruncated: false,
    stderrTruncated: false,
    coldStart: true,
  };
}
