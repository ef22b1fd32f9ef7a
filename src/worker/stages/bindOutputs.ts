import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { OutputStore } from '../../storage/ports.ts';
import { contentTypeFor } from '../../storage/contentType.ts';
import type { StageContext } from './types.ts';

export interface OutputLimits {
  maxFiles: number;
  maxTotalBytes: number;
}

export interface BindOutputsDeps extends StageContext {
  outputStore: OutputStore;
  limits: OutputLimits;
}

export interface SkippedOutput {
  path: string;
  reason: string;
}

export interface BindOutputsOutput {
  outputFiles: string[];
  skippedOutputs: SkippedOutput[];
}

interface Candidate {
  relative: string;
  size: number;
}

/**
 * Lists what the code left under output/ without following any link: only regular files are
 * candidates; links, devices, FIFOs and sockets are reported as skipped.
 */
async function walk(root: string, relative: string, found: Candidate[], skipped: SkippedOutput[]): Promise<void> {
  const entries = await readdir(path.join(root, relative), { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    const rel = relative ? `${relative}/${entry.name}` : entry.name;
    const stat = await lstat(path.join(root, rel));
    if (stat.isSymbolicLink()) skipped.push({ path: rel, reason: 'symbolic link (links are never followed)' });
    else if (stat.isDirectory()) await walk(root, rel, found, skipped);
    else if (stat.isFile()) found.push({ relative: rel, size: stat.size });
    else skipped.push({ path: rel, reason: 'not a regular file (device, FIFO or socket)' });
  }
}

/** Uploads every regular file under `{workspace}/output/` and returns their URLs. */
export async function bindOutputs(input: { requestId: string; workspaceDir: string }, deps: BindOutputsDeps): Promise<BindOutputsOutput> {
  const outputDir = path.join(input.workspaceDir, 'output');
  const skipped: SkippedOutput[] = [];
  const found: Candidate[] = [];
  const top = await lstat(outputDir).catch(() => null);
  if (top?.isSymbolicLink()) skipped.push({ path: 'output', reason: 'output/ itself is a symbolic link (links are never followed)' });
  else if (top?.isDirectory()) await walk(outputDir, '', found, skipped);

  const outputFiles: string[] = [];
  let totalBytes = 0;
  for (const file of found) {
    if (outputFiles.length >= deps.limits.maxFiles) {
      skipped.push({ path: file.relative, reason: `over the limit of ${deps.limits.maxFiles} output files` });
      continue;
    }
    if (totalBytes + file.size > deps.limits.maxTotalBytes) {
      skipped.push({ path: file.relative, reason: `over the limit of ${deps.limits.maxTotalBytes} output bytes in all` });
      continue;
    }
    // O_NOFOLLOW: the code may have swapped the file for a link since we listed it.
    const handle = await open(path.join(outputDir, file.relative), constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
    if (!handle) {
      skipped.push({ path: file.relative, reason: 'could not be opened without following a link' });
      continue;
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) {
        skipped.push({ path: file.relative, reason: 'not a regular file' });
        continue;
      }
      const url = await deps.outputStore.put(input.requestId, file.relative, handle.createReadStream({ autoClose: false }), contentTypeFor(file.relative), stat.size);
      outputFiles.push(url);
      totalBytes += stat.size;
    } finally {
      await handle.close();
    }
  }
  deps.log.info({ stage: 'bind-outputs', files: outputFiles.length, bytes: totalBytes, skipped: skipped.length }, 'outputs bound');
  return { outputFiles, skippedOutputs: skipped };
}
