import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { OutputStore } from '../../storage/ports.ts';
import { contentTypeFor } from '../../storage/contentType.ts';
import type { CollectedOutputs } from '../../sandbox/ports.ts';
import type { StageContext } from './types.ts';

export interface BindOutputsDeps extends StageContext {
  outputStore: OutputStore;
}

export interface BindOutputsInput {
  requestId: string;
  /** The host directory the sandbox copied the run's output files into. */
  outputDir: string;
  files: CollectedOutputs['files'];
}

/** Uploads the run's output files to `outputs/{requestId}/{path}` and returns their URLs, in order. */
export async function bindOutputs(input: BindOutputsInput, deps: BindOutputsDeps): Promise<{ outputFiles: string[] }> {
  const outputFiles: string[] = [];
  let bytes = 0;
  for (const file of input.files) {
    if (file.path.split('/').some((part) => part === '..' || part === '')) throw new Error(`refusing output path ${file.path}`);
    // O_NOFOLLOW: belt and braces; the sandbox copied regular files only.
    const handle = await open(path.join(input.outputDir, file.path), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const stat = await handle.stat();
      const url = await deps.outputStore.put(input.requestId, file.path, handle.createReadStream({ autoClose: false }), contentTypeFor(file.path), stat.size);
      outputFiles.push(url);
      bytes += stat.size;
    } finally {
      await handle.close();
    }
  }
  deps.log.info({ stage: 'bind-outputs', files: outputFiles.length, bytes }, 'outputs bound');
  return { outputFiles };
}
