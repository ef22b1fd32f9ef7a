import { stat } from 'node:fs/promises';
import path from 'node:path';
import { isRuntimeName, RUNTIME_NAMES, RUNTIMES, unknownRuntimeMessage } from '../contracts/runtimes.ts';
import type { FunctionVersion } from '../contracts/functionMeta.ts';
import { PackageError } from '../packages/errors.ts';
import { CliError, EXIT, integerOption, printJson, stringOption, UsageError, writeLine, type Command } from './args.ts';
import { packDirectory, type PackedDirectory } from './packDirectory.ts';

type UploadAnswer = FunctionVersion & { functionId: string; name: string; codeBucket: string };

export const deployCommand: Command = {
  name: 'deploy',
  summary: 'zip a folder and upload it as a new function, or as the next version of one',
  help: `Usage: nanogrid deploy DIR --runtime ${RUNTIME_NAMES.join('|')} [--name NAME] [options]

Zips the CONTENTS of DIR (the entrypoint must sit directly in DIR: ${RUNTIME_NAMES.map((r) => `${RUNTIMES[r].entrypoint} for ${r}`).join(', ')})
and uploads it. Deploying again under the same --name (or --function-id) stores the next version.
Symbolic links are skipped with a warning, never followed. The archive is checked locally with the
server's own rules first: an empty folder or one without the entrypoint is refused before any upload.

Options:
  --runtime R          ${RUNTIME_NAMES.join(', ')} (required)
  --name NAME          the function's name; an existing name gets a new version
  --function-id ID     add a version to this function
  --memory-mb N        the function's memory limit (MB)
  --timeout-ms N       the function's time limit (ms)
  --prewarm            have a worker ready a warm container now, so even the first run is warm

Example:
  nanogrid deploy ./hello --runtime python --name hello`,
  options: {
    runtime: { type: 'string', short: 'r' },
    name: { type: 'string' },
    'function-id': { type: 'string' },
    'memory-mb': { type: 'string' },
    'timeout-ms': { type: 'string' },
    prewarm: { type: 'boolean' },
  },
  positionals: { names: ['DIR'], min: 1 },
  async run(args, ctx) {
    const runtime = stringOption(args, 'runtime');
    if (!isRuntimeName(runtime)) throw new UsageError(runtime === undefined ? `--runtime is required; known runtimes: ${RUNTIME_NAMES.join(', ')}` : unknownRuntimeMessage(runtime));
    const memoryMb = integerOption(args, 'memory-mb');
    const timeoutMs = integerOption(args, 'timeout-ms');
    const dir = path.resolve(ctx.io.cwd, args.positionals[0] as string);
    const isDir = await stat(dir).then((s) => s.isDirectory(), () => false);
    if (!isDir) throw new CliError(`${dir} is not a folder; pass the folder that holds ${RUNTIMES[runtime].entrypoint}`, 'NOT_A_DIRECTORY');

    let packed: PackedDirectory;
    try {
      packed = await packDirectory(dir, runtime);
    } catch (err) {
      if (!(err instanceof PackageError)) throw err;
      // The server's code and message, word for word; plus the CLI's way of doing what it suggests.
      const nested = err.code === 'MISSING_ENTRYPOINT' ? /is at `([^`]*)\/[^/`]+`/.exec(err.message)?.[1] : undefined;
      const hint = nested ? `deploy that folder instead: nanogrid deploy ${path.join(args.positionals[0] as string, nested)} --runtime ${runtime}` : undefined;
      throw new CliError(err.message, err.code, undefined, hint);
    }
    for (const skip of packed.skipped) writeLine(ctx.io.stderr, `warning: skipped ${skip.path}: ${skip.reason}`);

    const form = new FormData();
    form.set('runtime', runtime);
    const name = stringOption(args, 'name');
    const functionId = stringOption(args, 'function-id');
    if (name !== undefined) form.set('name', name);
    if (functionId !== undefined) form.set('functionId', functionId);
    if (memoryMb !== undefined) form.set('memoryMb', String(memoryMb));
    if (timeoutMs !== undefined) form.set('timeoutMs', String(timeoutMs));
    if (args.values.prewarm === true) form.set('prewarm', 'true');
    form.set('file', new Blob([new Uint8Array(packed.zip)], { type: 'application/zip' }), 'function.zip');
    const { body } = await ctx.api.request<UploadAnswer>('POST', '/upload', { form });

    if (ctx.json) printJson(ctx, body);
    else {
      writeLine(ctx.io.stdout, `deployed ${body.name} (${body.functionId}) version ${body.version}: ${packed.info.fileCount} file${packed.info.fileCount === 1 ? '' : 's'}, ${body.sizeBytes} bytes, sha256 ${body.sha256.slice(0, 12)}…`);
      writeLine(ctx.io.stdout, `run it: nanogrid invoke ${body.name} --data '{}'`);
    }
    return EXIT.OK;
  },
};
