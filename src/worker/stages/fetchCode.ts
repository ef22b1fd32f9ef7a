import { createHash } from 'node:crypto';
import { chown, readdir, lstat, rm } from 'node:fs/promises';
import path from 'node:path';
import type { RunMessage } from '../../contracts/runMessage.ts';
import type { CodeStore } from '../../storage/ports.ts';
import { extractPackage } from '../../packages/extract.ts';
import type { PackageLimits } from '../../packages/inspect.ts';
import { PermanentRunError } from '../../errors.ts';
import type { StageContext } from './types.ts';

export interface FetchCodeDeps extends StageContext {
  codeStore: CodeStore;
  /** Parent of every run's workspace on this worker. */
  workRoot: string;
  packageLimits: PackageLimits;
  /** The uid:gid the function runs as inside its container; the workspace belongs to it. */
  sandboxUid: number;
}

export interface FetchCodeOutput {
  workspaceDir: string;
  files: number;
  bytes: number;
}

async function chownTree(dir: string, uid: number): Promise<void> {
  await chown(dir, uid, uid);
  for (const entry of await readdir(dir)) {
    const full = path.join(dir, entry);
    const stat = await lstat(full);
    if (stat.isDirectory()) await chownTree(full, uid);
    else await chown(full, uid, uid);
  }
}

/**
 * Downloads the code named by the message, validates it again (the bucket may have been written
 * by someone other than our controller) and extracts it into a fresh workspace for this run.
 */
export async function fetchCode(message: RunMessage, deps: FetchCodeDeps): Promise<FetchCodeOutput> {
  const zip = await deps.codeStore.get(message.s3Key, message.s3Bucket);
  if (!zip) throw new PermanentRunError(`the code object s3://${message.s3Bucket}/${message.s3Key} does not exist — upload the function again`);
  if (message.sha256) {
    const actual = createHash('sha256').update(zip).digest('hex');
    if (actual !== message.sha256) {
      throw new PermanentRunError(`the code object s3://${message.s3Bucket}/${message.s3Key} has sha256 ${actual}, not the uploaded ${message.sha256}`);
    }
  }
  const workspaceDir = path.join(deps.workRoot, message.requestId);
  // A retried fetch starts from scratch: never run on a half-extracted tree.
  await rm(workspaceDir, { recursive: true, force: true });
  const { files, bytes } = await extractPackage(zip, workspaceDir, message.runtime, deps.packageLimits);
  await chownTree(workspaceDir, deps.sandboxUid);
  deps.log.info({ stage: 'fetch-code', files, bytes }, 'code ready');
  return { workspaceDir, files, bytes };
}
