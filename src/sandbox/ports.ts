/** What the execute stage asks of a sandbox: run this code once, under these limits. */
export interface SandboxSpec {
  requestId: string;
  functionId: string;
  image: string;
  /** Host directory holding the code; mounted as the function's working directory. */
  workspaceDir: string;
  command: readonly string[];
  compile: readonly string[] | null;
  input: unknown;
  timeoutMs: number;
  memoryMb: number;
}

/** What happened, as measured inside and around the container. */
export interface SandboxReport {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  oomKilled: boolean;
  phase: 'compile' | 'run';
  durationMillis: number;
  compileMillis?: number;
  cpuMillis: number;
  peakMemoryBytes: number;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  coldStart: boolean;
}

/** Runs code in isolation. Throws on platform failure; the code's own failures are in the report. */
export interface Sandbox {
  run(spec: SandboxSpec, signal: AbortSignal): Promise<SandboxReport>;
  ping(): Promise<void>;
  /** Removes containers a previous instance of this worker left behind. */
  removeOrphans(): Promise<number>;
}
