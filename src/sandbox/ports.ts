import type { RuntimeName } from '../contracts/runtimes.ts';

/** What the execute stage asks of a sandbox: run this code once, under these limits. */
export interface SandboxSpec {
  requestId: string;
  functionId: string;
  version: number;
  runtime: RuntimeName;
  image: string;
  /** The validated ZIP on this host, and its sha256: with functionId, version and memory it names the warm pool. */
  codePath: string;
  codeSha256: string;
  command: readonly string[];
  compile: readonly string[] | null;
  compileOutput: string | null;
  /** Python fast path: run this script in a fork of the runner's interpreter. */
  forkScript: string | null;
  input: unknown;
  timeoutMs: number;
  memoryMb: number;
  /** Host directory that receives the regular files the code wrote under output/. */
  outputDir: string;
}

export interface CollectedOutputs {
  files: { path: string; size: number }[];
  skipped: { path: string; reason: string }[];
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
  outputs: CollectedOutputs;
}

/** Runs code in isolation. Throws on platform failure; the code's own failures are in the report. */
export interface Sandbox {
  run(spec: SandboxSpec, signal: AbortSignal): Promise<SandboxReport>;
  /** Readies an idle warm container for the spec's function version; false when none was added. */
  prewarm(spec: SandboxSpec): Promise<boolean>;
  ping(): Promise<void>;
  /** Removes containers a previous instance of this worker left behind. */
  removeOrphans(): Promise<number>;
  /** Removes every warm container (shutdown). */
  close(): Promise<void>;
}
