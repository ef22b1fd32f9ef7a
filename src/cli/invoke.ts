import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { RunResult } from '../contracts/result.ts';
import { CliError, EXIT, integerOption, printJson, stringOption, UsageError, writeLine, type Command, type CommandContext, type ParsedArgs } from './args.ts';
import { printResult, waitForResult } from './result.ts';

type RunAnswer = RunResult | { requestId: string; status: 'PENDING'; location: string };

export const invokeCommand: Command = {
  name: 'invoke',
  summary: 'run a function and print its output',
  help: `Usage: nanogrid invoke NAME|ID [--data JSON | --data-file FILE] [options]

Runs the function's latest version (or --version N) with the JSON input, waits for the result and prints
the function's stdout on stdout, its stderr on stderr, then one summary line (status, exit code, duration,
peak memory) on stderr. With --json, prints the whole result JSON instead.
Exits 0 only when the run's status is SUCCESS; 3 when it finished otherwise (FAILED, TIMEOUT, OOM, ERROR).

Options:
  --data JSON          the input (default {})
  --data-file FILE     read the input from FILE (- for stdin)
  --version N          run this version instead of the latest
  --memory-mb N        memory limit for this run (MB)
  --timeout-ms N       time limit for this run (ms)
  --async              do not wait: print the request id (see \`nanogrid runs get\`)

Example:
  nanogrid invoke hello --data '{"name":"Ada"}'`,
  options: {
    data: { type: 'string', short: 'd' },
    'data-file': { type: 'string' },
    version: { type: 'string' },
    'memory-mb': { type: 'string' },
    'timeout-ms': { type: 'string' },
    async: { type: 'boolean' },
  },
  positionals: { names: ['NAME|ID'], min: 1 },
  async run(args, ctx) {
    const inputData = await readInput(args, ctx);
    const version = integerOption(args, 'version');
    const memoryMb = integerOption(args, 'memory-mb');
    const timeoutMs = integerOption(args, 'timeout-ms');
    const fn = await ctx.api.resolveFunction(args.positionals[0] as string);
    const asynchronous = args.values.async === true;
    const { status, body } = await ctx.api.request<RunAnswer>('POST', '/run', {
      json: { functionId: fn.functionId, inputData, version, memoryMb, timeoutMs, ...(asynchronous ? { async: true } : {}) },
    });
    if (asynchronous) {
      if (ctx.json) printJson(ctx, body);
      else writeLine(ctx.io.stdout, body.requestId);
      return EXIT.OK;
    }
    // 202: the controller's wait budget ran out; the run goes on and its result is fetched by id.
    const result = status === 202 ? await waitForResult(ctx.api, body.requestId) : (body as RunResult);
    printResult(ctx, result);
    return result.status === 'SUCCESS' ? EXIT.OK : EXIT.RUN_FAILED;
  },
};

async function readInput(args: ParsedArgs, ctx: CommandContext): Promise<unknown> {
  const data = stringOption(args, 'data');
  const file = stringOption(args, 'data-file');
  if (data !== undefined && file !== undefined) throw new UsageError('give either --data or --data-file, not both');
  let text = data;
  let source = '--data';
  if (file !== undefined) {
    source = file === '-' ? 'stdin' : file;
    text = file === '-' ? await readStream(ctx.io.stdin) : await readFile(path.resolve(ctx.io.cwd, file), 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new CliError(`cannot read --data-file ${file}: ${err.code ?? err.message}`, 'BAD_INPUT');
    });
  }
  if (text === undefined) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CliError(`the input from ${source} is not valid JSON (${(err as Error).message}); pass a JSON value, e.g. --data '{"name":"Ada"}'`, 'INVALID_INPUT');
  }
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}
