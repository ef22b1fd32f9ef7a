import type { RunMessage } from '../../contracts/runMessage.ts';
import type { RunStatus } from '../../contracts/result.ts';
import { RUNTIMES } from '../../contracts/runtimes.ts';
import type { Sandbox, SandboxReport, SandboxSpec } from '../../sandbox/ports.ts';
import type { StageContext } from './types.ts';

export interface ExecuteDeps extends StageContext {
  sandbox: Sandbox;
}

export interface ExecuteInput {
  message: RunMessage;
  codePath: string;
  codeSha256: string;
  /** Where the sandbox leaves the run's output files for bind-outputs. */
  outputDir: string;
}

export interface ExecuteOutput {
  status: RunStatus;
  report: SandboxReport;
}

/** What the report means for the caller. OOM comes from the kernel's count, never from exit 137. */
export function statusOf(report: SandboxReport): RunStatus {
  if (report.oomKilled) return 'OOM';
  if (report.timedOut) return 'TIMEOUT';
  return report.exitCode === 0 ? 'SUCCESS' : 'FAILED';
}

/** What the sandbox needs to run this message's code (also used to pre-warm its container). */
export function sandboxSpec(input: ExecuteInput): SandboxSpec {
  const { message } = input;
  const runtime = RUNTIMES[message.runtime];
  return {
    requestId: message.requestId,
    functionId: message.functionId,
    version: message.version,
    runtime: message.runtime,
    image: runtime.image,
    codePath: input.codePath,
    codeSha256: input.codeSha256,
    command: runtime.command,
    compile: runtime.compile,
    compileOutput: runtime.compileOutput,
    forkScript: runtime.forkScript,
    input: message.inputData ?? null,
    timeoutMs: message.timeoutMs,
    memoryMb: message.memoryMb,
    outputDir: input.outputDir,
  };
}

/** Runs the function once in the sandbox, under the run's limits. */
export async function execute(input: ExecuteInput, deps: ExecuteDeps): Promise<ExecuteOutput> {
  const report = await deps.sandbox.run(sandboxSpec(input), deps.signal);
  const status = statusOf(report);
  deps.log.info(
    { stage: 'execute', status, exitCode: report.exitCode, durationMillis: report.durationMillis, peakMemoryBytes: report.peakMemoryBytes, coldStart: report.coldStart },
    'code ran',
  );
  return { status, report };
}
