import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import type { SandboxSpec } from './ports.ts';

/** One request to the runner (runtimes/runner/runner.py), one JSON line on its stdin. */
export type RunnerRequest = Pick<SandboxSpec, 'requestId' | 'functionId' | 'command' | 'compile' | 'compileOutput' | 'forkScript' | 'input' | 'timeoutMs'> & {
  stdoutCapBytes: number;
  stderrCapBytes: number;
};

/** The runner's answer, one JSON line on its stdout. */
export interface RunnerReport {
  exitCode?: number | null;
  signal?: string | null;
  timedOut?: boolean;
  oomKilled?: boolean;
  workspaceChanged?: boolean;
  phase?: 'compile' | 'run';
  durationMillis?: number;
  compileMillis?: number;
  cpuMillis?: number;
  peakMemoryBytes?: number | null;
  /** The container's memory use when the run began (the runner's own share), subtracted from the peak. */
  baseMemoryBytes?: number;
  stdout?: string;
  stderr?: string;
  stdoutTruncated?: boolean;
  stderrTruncated?: boolean;
  runnerError?: string;
  spawnError?: string;
}

export class ContainerGoneError extends Error {
  override name = 'ContainerGoneError';
}

/**
 * A started container whose runner waits for requests on a held-open stdin. One run at a time;
 * the pool decides who may use it. Reports are read line by line from the container's stdout,
 * which only the runner writes (the function's own output goes to pipes inside).
 */
export class WarmContainer {
  runs = 0;
  busy = false;
  lastUsed = Date.now();
  private gone = false;
  private pending: { resolve: (r: RunnerReport) => void; reject: (e: Error) => void } | null = null;
  private lines: string[] = [];
  private partial = '';
  private stderrTail = '';

  private constructor(
    readonly container: Docker.Container,
    readonly key: string,
    readonly workspaceId: string,
    readonly workspaceDir: string,
    private readonly stream: NodeJS.ReadWriteStream,
  ) {}

  get id(): string {
    return this.container.id;
  }

  get alive(): boolean {
    return !this.gone;
  }

  /** Creates, attaches to and starts a container; its runner is then ready for requests. */
  static async start(docker: Docker, options: Docker.ContainerCreateOptions, key: string, workspaceId: string, workspaceDir: string): Promise<WarmContainer> {
    const container = await docker.createContainer(options);
    try {
      // Attach before start, so not a byte of the runner's output is missed.
      const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as NodeJS.ReadWriteStream;
      const warm = new WarmContainer(container, key, workspaceId, workspaceDir, stream);
      const out = new PassThrough();
      const err = new PassThrough();
      docker.modem.demuxStream(stream, out, err);
      out.on('data', (chunk: Buffer) => warm.onStdout(chunk.toString()));
      err.on('data', (chunk: Buffer) => (warm.stderrTail = (warm.stderrTail + chunk.toString()).slice(-4000)));
      stream.on('end', () => warm.onGone());
      stream.on('close', () => warm.onGone());
      stream.on('error', () => warm.onGone());
      await container.start();
      return warm;
    } catch (err) {
      await container.remove({ force: true }).catch(() => undefined);
      throw err;
    }
  }

  private onStdout(text: string): void {
    this.partial += text;
    let newline = this.partial.indexOf('\n');
    while (newline >= 0) {
      const line = this.partial.slice(0, newline).trim();
      this.partial = this.partial.slice(newline + 1);
      if (line) this.lines.push(line);
      newline = this.partial.indexOf('\n');
    }
    this.deliver();
  }

  private deliver(): void {
    if (!this.pending) return;
    const line = this.lines.shift();
    if (line === undefined) return;
    const { resolve, reject } = this.pending;
    this.pending = null;
    try {
      resolve(JSON.parse(line) as RunnerReport);
    } catch {
      reject(new Error(`the runner wrote something that is not a report: ${line.slice(0, 200)}`));
    }
  }

  private onGone(): void {
    if (this.gone) return;
    this.gone = true;
    const pending = this.pending;
    this.pending = null;
    pending?.reject(new ContainerGoneError(`the container exited during the run${this.stderrTail ? `: ${this.stderrTail.trim().slice(-300)}` : ''}`));
  }

  /** Sends one request and waits for its report; kills the container if the runner overstays. */
  run(request: RunnerRequest, backstopMs: number, signal: AbortSignal): Promise<RunnerReport> {
    if (this.gone) return Promise.reject(new ContainerGoneError('the container is gone'));
    this.runs++;
    this.lastUsed = Date.now();
    return new Promise<RunnerReport>((resolve, reject) => {
      const kill = () => void this.container.kill().catch(() => undefined);
      const timer = setTimeout(kill, backstopMs);
      signal.addEventListener('abort', kill, { once: true });
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', kill);
        this.lastUsed = Date.now();
      };
      this.pending = {
        resolve: (r) => (done(), resolve(r)),
        reject: (e) => (done(), reject(e)),
      };
      this.stream.write(JSON.stringify(request) + '\n');
      this.deliver();
    });
  }

  /** The engine's view: was the container killed for memory? */
  async oomKilled(): Promise<boolean> {
    const info = await this.container.inspect().catch(() => null);
    return Boolean(info?.State.OOMKilled);
  }

  async destroy(): Promise<void> {
    this.gone = true;
    this.stream.end();
    await this.container.remove({ force: true }).catch(() => undefined);
  }
}
