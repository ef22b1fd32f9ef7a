import type { FunctionVersion } from '../contracts/functionMeta.ts';
import { EXIT, printJson, writeLine, type Command } from './args.ts';

/** Left-aligned columns, two spaces apart. */
function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((row) => (row[col] ?? '').length))) ?? [];
  return rows.map((row) => row.map((cell, col) => cell.padEnd(widths[col] ?? 0)).join('  ').trimEnd()).join('\n');
}

export const functionsLsCommand: Command = {
  name: 'functions ls',
  summary: 'list the deployed functions',
  help: `Usage: nanogrid functions ls [--json]

Lists every function: name, id, runtime, latest version, last update.`,
  options: {},
  positionals: { names: [], min: 0 },
  async run(_args, ctx) {
    const functions = await ctx.api.listFunctions();
    if (ctx.json) printJson(ctx, functions);
    else if (functions.length === 0) writeLine(ctx.io.stderr, 'no functions yet: nanogrid deploy DIR --runtime python --name NAME');
    else {
      const rows = functions.map((fn) => [fn.name, fn.functionId, fn.runtime, `v${fn.latestVersion}`, fn.updatedAt]);
      writeLine(ctx.io.stdout, table([['NAME', 'ID', 'RUNTIME', 'LATEST', 'UPDATED'], ...rows]));
    }
    return EXIT.OK;
  },
};

export const functionsGetCommand: Command = {
  name: 'functions get',
  summary: 'show one function with its versions',
  help: `Usage: nanogrid functions get NAME|ID [--json]

Shows the function and every version it keeps: size, sha256, runtime, limits, creation time.`,
  options: {},
  positionals: { names: ['NAME|ID'], min: 1 },
  async run(args, ctx) {
    const { functionId } = await ctx.api.resolveFunction(args.positionals[0] as string);
    const fn = await ctx.api.getFunction(functionId);
    if (ctx.json) printJson(ctx, fn);
    else {
      writeLine(ctx.io.stdout, `${fn.name} (${fn.functionId}) · ${fn.runtime} · latest v${fn.latestVersion} · created ${fn.createdAt}`);
      const row = (v: FunctionVersion) => [`v${v.version}`, v.runtime, String(v.sizeBytes), v.sha256.slice(0, 12), `${v.memoryMb} MB`, `${v.timeoutMs} ms`, v.createdAt];
      writeLine(ctx.io.stdout, table([['VERSION', 'RUNTIME', 'BYTES', 'SHA256', 'MEMORY', 'TIMEOUT', 'CREATED'], ...fn.versions.map(row)]));
    }
    return EXIT.OK;
  },
};

export const functionsRmCommand: Command = {
  name: 'functions rm',
  summary: 'delete a function: every version, its code and its metadata',
  help: `Usage: nanogrid functions rm NAME|ID [--json]

Deletes the function, all its versions and their code. Runs already executing finish.`,
  options: {},
  positionals: { names: ['NAME|ID'], min: 1 },
  async run(args, ctx) {
    const fn = await ctx.api.resolveFunction(args.positionals[0] as string);
    const { body } = await ctx.api.request<{ functionId: string; deletedVersions: number[] }>('DELETE', `/functions/${encodeURIComponent(fn.functionId)}`);
    if (ctx.json) printJson(ctx, body);
    else writeLine(ctx.io.stdout, `deleted ${fn.name} (${fn.functionId}): version${body.deletedVersions.length === 1 ? '' : 's'} ${body.deletedVersions.join(', ')}`);
    return EXIT.OK;
  },
};
