import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CliError, EXIT, printJson, stringOption, writeLine, type Command } from './args.ts';
import { isFinal } from './api.ts';

export const outputsGetCommand: Command = {
  name: 'outputs get',
  summary: 'download the files a run wrote under output/',
  help: `Usage: nanogrid outputs get REQUEST_ID [-o DIR] [--json]

Downloads every file in the run's outputFiles into DIR, keeping its path under output/
(output/charts/a.png → DIR/charts/a.png). Files already in DIR are overwritten.

Options:
  -o, --output DIR     where to write (default ./outputs/REQUEST_ID)

Example:
  nanogrid outputs get 3b8f7c2e-… -o ./results`,
  options: { output: { type: 'string', short: 'o' } },
  positionals: { names: ['REQUEST_ID'], min: 1 },
  async run(args, ctx) {
    const requestId = args.positionals[0] as string;
    const run = await ctx.api.getRun(requestId);
    if (!isFinal(run)) throw new CliError(`run ${requestId} has not finished (${run.status}); try again when \`nanogrid runs get ${requestId}\` shows its result`, 'RUN_NOT_FINISHED');
    const dir = path.resolve(ctx.io.cwd, stringOption(args, 'output') ?? path.join('outputs', requestId));
    // Resolve every path before downloading anything: one bad URL refuses the lot, nothing half-written.
    const files = run.outputFiles.map((url) => ({ url, relative: outputPath(url, requestId) }));
    const written: { path: string; bytes: number; url: string }[] = [];
    for (const file of files) {
      const target = path.join(dir, ...file.relative);
      const res = await fetch(file.url).catch((err: Error) => {
        throw new CliError(`cannot download ${file.relative.join('/')}: ${err.message}`, 'DOWNLOAD_FAILED');
      });
      if (!res.ok) throw new CliError(`cannot download ${file.relative.join('/')}: HTTP ${res.status} (presigned links expire; run the function again for fresh ones)`, 'DOWNLOAD_FAILED', res.status);
      const body = Buffer.from(await res.arrayBuffer());
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, body);
      written.push({ path: target, bytes: body.length, url: file.url });
      if (!ctx.json) writeLine(ctx.io.stdout, `${path.relative(ctx.io.cwd, target) || target} (${body.length} bytes)`);
    }
    if (ctx.json) printJson(ctx, { requestId, directory: dir, files: written });
    else if (written.length === 0) writeLine(ctx.io.stderr, `run ${requestId} wrote no output files`);
    return EXIT.OK;
  },
};

/**
 * The file's path under output/, from its URL: the path segments after `/{requestId}/` (the server stores
 * outputs at {outputPrefix}/{requestId}/{path}). Refuses anything that could land outside the target folder.
 */
export function outputPath(url: string, requestId: string): string[] {
  let segments: string[];
  try {
    segments = new URL(url).pathname.split('/').map((s) => decodeURIComponent(s));
  } catch {
    throw new CliError(`the output URL ${JSON.stringify(url)} cannot be read`, 'BAD_OUTPUT_URL');
  }
  const at = segments.indexOf(requestId);
  const relative = at === -1 ? [] : segments.slice(at + 1);
  if (relative.length === 0) throw new CliError(`the output URL ${JSON.stringify(url)} holds no path after /${requestId}/`, 'BAD_OUTPUT_URL');
  for (const segment of relative) {
    if (segment === '' || segment === '.' || segment === '..' || segment.includes('\\') || segment.includes('\0')) {
      throw new CliError(`refusing output path ${JSON.stringify(relative.join('/'))}: it could write outside the target folder`, 'UNSAFE_OUTPUT_PATH');
    }
  }
  return relative;
}
