/**
 * `nanogrid`: the command line client. It talks only to the HTTP API (--url, else NANOGRID_URL, else
 * http://127.0.0.1:8080). Exit codes: 0 ok, 1 error, 2 usage, 3 a run that did not succeed.
 */
import { readFileSync } from 'node:fs';
import { createApi, DEFAULT_URL } from './api.ts';
import { CliError, EXIT, GLOBAL_HELP, parseCommandArgs, stringOption, UsageError, writeLine, type Command, type Io } from './args.ts';
import { deployCommand } from './deploy.ts';
import { invokeCommand } from './invoke.ts';
import { runsGetCommand } from './runs.ts';
import { outputsGetCommand } from './outputs.ts';
import { functionsGetCommand, functionsLsCommand, functionsRmCommand } from './functions.ts';

const COMMANDS: Command[] = [deployCommand, invokeCommand, runsGetCommand, outputsGetCommand, functionsLsCommand, functionsGetCommand, functionsRmCommand];
const GROUPS = new Set(COMMANDS.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0] as string));

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `nanogrid — deploy and run functions on NanoGrid Plus, through its HTTP API

Usage: nanogrid COMMAND [arguments] [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}   ${c.summary}`).join('\n')}

${GLOBAL_HELP}

\`nanogrid COMMAND --help\` explains a command. Exit codes: 0 ok; 1 the server refused, could not be
reached, or a local check failed (the message says which); 2 bad usage; 3 a run finished without SUCCESS.`;
}

function groupHelp(group: string): string {
  const members = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  return `Usage: nanogrid ${group} ${members.map((c) => c.name.split(' ')[1]).join('|')} …\n\n${members.map((c) => `  ${c.name.padEnd(16)} ${c.summary}`).join('\n')}\n\n${GLOBAL_HELP}`;
}

function commandHelp(command: Command): string {
  return `${command.help}\n\n${GLOBAL_HELP}`;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Global options given before the command word (`nanogrid --url X functions ls`) move after it. */
function splitLeadingGlobals(argv: string[]): { globals: string[]; rest: string[] } {
  const globals: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i] as string;
    if (arg === '--json' || arg.startsWith('--url=')) globals.push(arg);
    else if (arg === '--url' && i + 1 < argv.length) globals.push(arg, argv[++i] as string);
    else break;
    i++;
  }
  return { globals, rest: argv.slice(i) };
}

/** Runs one command line; returns the exit code. Never throws. */
export async function main(argv: string[], io: Io): Promise<number> {
  const { globals, rest } = splitLeadingGlobals(argv);
  const [first, second] = rest;
  if (first === undefined) {
    writeLine(io.stderr, topHelp());
    return EXIT.USAGE;
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    const topic = COMMANDS.find((c) => c.name === rest.slice(1).join(' ')) ?? null;
    if (second !== undefined && GROUPS.has(second) && !topic) writeLine(io.stdout, groupHelp(second));
    else writeLine(io.stdout, topic ? commandHelp(topic) : topHelp());
    return EXIT.OK;
  }
  if (first === '--version' || first === '-V') {
    writeLine(io.stdout, version());
    return EXIT.OK;
  }

  let command: Command | undefined;
  let args: string[];
  if (GROUPS.has(first)) {
    if (second === undefined || second === '--help' || second === '-h') {
      writeLine(second === undefined ? io.stderr : io.stdout, groupHelp(first));
      return second === undefined ? EXIT.USAGE : EXIT.OK;
    }
    command = COMMANDS.find((c) => c.name === `${first} ${second}`);
    args = rest.slice(2);
    if (!command) return usage(io, `unknown command "${first} ${second}"`, groupHelp(first));
  } else {
    command = COMMANDS.find((c) => c.name === first);
    args = rest.slice(1);
    if (!command) return usage(io, `unknown command "${first}"`, topHelp());
  }

  let json = globals.includes('--json');
  try {
    const parsed = parseCommandArgs(command, [...args, ...globals]);
    json = parsed.values.json === true;
    if (parsed.values.help) {
      writeLine(io.stdout, commandHelp(command));
      return EXIT.OK;
    }
    const api = createApi(stringOption(parsed, 'url') ?? (io.env.NANOGRID_URL || DEFAULT_URL));
    return await command.run(parsed, { api, json, io });
  } catch (err) {
    if (err instanceof UsageError) return usage(io, `${command.name}: ${err.message}`, commandHelp(command));
    const cliError = err instanceof CliError ? err : new CliError(err instanceof Error ? err.message : String(err), 'INTERNAL');
    if (json) writeLine(io.stdout, JSON.stringify({ error: { code: cliError.code, message: cliError.message, ...(cliError.status ? { status: cliError.status } : {}), ...(cliError.hint ? { hint: cliError.hint } : {}) } }, null, 2));
    writeLine(io.stderr, `error: ${cliError.message}${cliError.code === 'ERROR' ? '' : ` [${cliError.code}]`}`);
    if (cliError.hint) writeLine(io.stderr, `hint: ${cliError.hint}`);
    return EXIT.ERROR;
  }
}

function usage(io: Io, message: string, help: string): number {
  writeLine(io.stderr, `nanogrid ${message}\n\n${help}`);
  return EXIT.USAGE;
}
