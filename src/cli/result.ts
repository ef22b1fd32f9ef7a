import { setTimeout as sleep } from 'node:timers/promises';
import type { RunResult } from '../contracts/result.ts';
import { isFinal, type Api } from './api.ts';
import { CliError, writeLine, type CommandContext } from './args.ts';

const FIRST_POLL_MS = 200;
const MAX_POLL_MS = 2000;

/**
 * Polls GET /runs/{id} until the run has a final result. A CLI has no stream to wait on (only the HTTP
 * API), so it polls, backing off to one request every 2 s.
 */
export async function waitForResult(api: Api, requestId: string): Promise<RunResult> {
  let delay = FIRST_POLL_MS;
  for (;;) {
    const run = await api.getRun(requestId);
    if (isFinal(run)) return run;
    if (run.status === 'DONE') throw new CliError(`run ${requestId} finished but its result is no longer stored (results expire)`, 'RESULT_EXPIRED');
    await sleep(delay);
    delay = Math.min(delay * 2, MAX_POLL_MS);
  }
}

/** One line: status, exit code or signal, duration, peak memory, outputs, request id. */
export function summaryLine(result: RunResult): string {
  const parts: string[] = [result.status];
  if (result.status === 'ERROR') parts.push(result.message ?? 'the platform could not run the code');
  else {
    parts.push(result.signal ? `signal ${result.signal}` : `exit ${result.exitCode ?? '-'}`);
    if (result.phase === 'compile') parts.push('compile failed');
    parts.push(`${result.durationMillis} ms`);
    parts.push(`peak ${result.peakMemoryMB} MB${result.memoryLimitMb ? ` of ${result.memoryLimitMb} MB` : ''}`);
  }
  const outputs = result.outputFiles.length;
  if (outputs > 0) parts.push(`${outputs} output file${outputs === 1 ? '' : 's'} (nanogrid outputs get ${result.requestId})`);
  parts.push(`request ${result.requestId}`);
  return parts.join(' · ');
}

/** The function's stdout on stdout, its stderr on stderr, then the summary on stderr; or the JSON. */
export function printResult(ctx: CommandContext, result: RunResult): void {
  if (ctx.json) {
    writeLine(ctx.io.stdout, JSON.stringify(result, null, 2));
    return;
  }
  ctx.io.stdout.write(result.stdout);
  ctx.io.stderr.write(result.stderr);
  if (result.stdoutTruncated) writeLine(ctx.io.stderr, '(stdout was cut at the platform limit)');
  if (result.stderrTruncated) writeLine(ctx.io.stderr, '(stderr was cut at the platform limit)');
  writeLine(ctx.io.stderr, summaryLine(result));
}
