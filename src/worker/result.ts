import type { RunMessage } from '../contracts/runMessage.ts';
import type { RunResult, RunStatus } from '../contracts/result.ts';
import type { SandboxReport } from '../sandbox/ports.ts';

const MB = 1024 * 1024;

/**
 * The memory-sizing hint the first system sent as `optimizationTip`, made structured: the
 * recommendation is peak + 25 % headroom, rounded up to a multiple of 64 MB.
 */
export function memoryAdvice(peakBytes: number, limitMb: number, status: RunStatus): { recommendedMemoryMb: number; optimizationTip: string } {
  if (status === 'OOM') {
    const recommendedMemoryMb = Math.min(limitMb * 2, 4096);
    return { recommendedMemoryMb, optimizationTip: `The run hit its ${limitMb} MB memory limit; try memoryMb=${recommendedMemoryMb}.` };
  }
  const peakMb = peakBytes / MB;
  const recommendedMemoryMb = Math.max(64, Math.ceil((peakMb * 1.25) / 64) * 64);
  const usedPct = Math.round((peakMb / limitMb) * 100);
  let optimizationTip: string;
  if (usedPct >= 80) optimizationTip = `Peak memory was ${usedPct}% of the ${limitMb} MB limit; raise memoryMb to ${recommendedMemoryMb} for headroom.`;
  else if (recommendedMemoryMb < limitMb / 2) optimizationTip = `Peak memory was ${peakMb.toFixed(1)} MB of ${limitMb} MB; memoryMb=${recommendedMemoryMb} would do.`;
  else optimizationTip = `Peak memory was ${peakMb.toFixed(1)} MB of ${limitMb} MB; the limit fits.`;
  return { recommendedMemoryMb, optimizationTip };
}

/** The caller's view of a finished run. */
export function buildResult(message: RunMessage, status: RunStatus, report: SandboxReport, outputFiles: string[], workerId: string): RunResult {
  const result: RunResult = {
    requestId: message.requestId,
    functionId: message.functionId,
    version: message.version,
    status,
    exitCode: report.exitCode,
    signal: report.signal,
    stdout: report.stdout,
    stderr: report.stderr,
    stdoutTruncated: report.stdoutTruncated,
    stderrTruncated: report.stderrTruncated,
    durationMillis: Math.round(report.durationMillis),
    cpuMillis: report.cpuMillis,
    peakMemoryBytes: report.peakMemoryBytes,
    peakMemoryMB: Math.round((report.peakMemoryBytes / MB) * 10) / 10,
    memoryLimitMb: message.memoryMb,
    ...memoryAdvice(report.peakMemoryBytes, message.memoryMb, status),
    outputFiles,
    skippedOutputs: report.outputs.skipped,
    phase: report.phase,
    coldStart: report.coldStart,
    workerId,
    finishedAt: new Date().toISOString(),
  };
  if (status === 'TIMEOUT') result.message = `the function ran past its ${message.timeoutMs} ms limit and was killed`;
  if (status === 'OOM') result.message = `the function exceeded its ${message.memoryMb} MB memory limit and was killed`;
  if (report.phase === 'compile' && status === 'FAILED') result.message = 'the code did not compile; the compiler output is in stderr';
  return result;
}
