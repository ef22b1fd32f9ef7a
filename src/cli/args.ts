import { parseArgs } from 'node:util';
import type { Writable } from 'node:stream';
import type { Api } from './api.ts';

/** Exit codes, the same for every command. */
export const EXIT = {
  OK: 0,
  /** The server refused, could not be reached, or a local check failed. */
  ERROR: 1,
  /** Unknown command or flag, missing argument. */
  USAGE: 2,
  /** The run finished but not with SUCCESS (FAILED, TIMEOUT, OOM, ERROR). */
  RUN_FAILED: 3,
} as const;

/** A command line the CLI cannot make sense of: the command's usage goes to stderr, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A failure to report in one line on stderr (exit 1); `code` is the server's or a local one. */
export class CliError extends Error {
  override name = 'CliError';

  constructor(
    message: string,
    readonly code = 'ERROR',
    readonly status?: number,
    /** A next step, printed on its own line after the message. */
    readonly hint?: string,
  ) {
    super(message);
  }
}

export interface Io {
  stdout: Writable;
  stderr: Writable;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface CommandContext {
  api: Api;
  json: boolean;
  io: Io;
}

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: false };

export interface Command {
  /** e.g. `functions ls`. */
  name: string;
  summary: string;
  /** The full --help text, without the global options (appended). */
  help: string;
  options: Record<string, OptionSpec>;
  /** The positional arguments the command takes (their names, for messages); the first `min` are required. */
  positionals: { names: string[]; min: number };
  run(args: ParsedArgs, ctx: CommandContext): Promise<number>;
}

export interface ParsedArgs {
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export const GLOBAL_HELP = `Global options:
  --url URL     the NanoGrid API (default: $NANOGRID_URL, else http://127.0.0.1:8080)
  --json        print machine-readable JSON on stdout
  -h, --help    show this help`;

/** Parses a command's arguments strictly: an unknown flag or a wrong number of arguments is a UsageError. */
export function parseCommandArgs(command: Command, argv: string[]): ParsedArgs {
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  if (parsed.values.help) return parsed;
  const { names, min } = command.positionals;
  if (parsed.positionals.length < min) throw new UsageError(`missing ${names.slice(parsed.positionals.length, min).join(' ')}`);
  if (parsed.positionals.length > names.length) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[names.length])}`);
  return parsed;
}

export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A whole-number option, or undefined when absent; anything else is a UsageError. */
export function integerOption(args: ParsedArgs, name: string, min = 1): number | undefined {
  const raw = stringOption(args, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min) throw new UsageError(`--${name} must be a whole number from ${min}, not ${JSON.stringify(raw)}`);
  return value;
}

export function writeLine(stream: Writable, text = ''): void {
  stream.write(`${text}\n`);
}

export function printJson(ctx: CommandContext, value: unknown): void {
  writeLine(ctx.io.stdout, JSON.stringify(value, null, 2));
}
