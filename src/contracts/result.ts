/** Final statuses of a run (design.md): only these five reach a caller. */
export type RunStatus = 'SUCCESS' | 'FAILED' | 'TIMEOUT' | 'OOM' | 'ERROR';

/** The result JSON that goes on `result:{requestId}` and back to the caller. Add fields freely; never rename. */
export interface RunResult {
  requestId: string;
  functionId: string;
  version?: number;
  status: RunStatus;
  exitCode: number | null;
  signal?: string | null;
  stdout: string;
  stderr: string;
  stdoutTruncated?: boolean;
  stderrTruncated?: boolean;
  durationMillis: number;
  cpuMillis?: number;
  peakMemoryBytes: number;
  peakMemoryMB: number;
  memoryLimitMb?: number;
  recommendedMemoryMb?: number;
  optimizationTip?: string;
  outputFiles: string[];
  skippedOutputs?: { path: string; reason: string }[];
  phase?: 'compile' | 'run';
  coldStart?: boolean;
  message?: string;
  workerId?: string;
  finishedAt: string;
}

/** An ERROR result: the platform could not run the code. */
export function errorResult(base: { requestId: string; functionId: string; version?: number }, message: string): RunResult {
  return {
    ...base,
    status: 'ERROR',
    exitCode: null,
    stdout: '',
    stderr: '',
    durationMillis: 0,
    peakMemoryBytes: 0,
    peakMemoryMB: 0,
    outputFiles: [],
    message,
    finishedAt: new Date().toISOString(),
  };
}
