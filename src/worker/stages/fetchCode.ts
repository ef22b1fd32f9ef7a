import { createHash } from 'node:crypto';
import type { RunMessage } from '../../contracts/runMessage.ts';
import type { CodeStore } from '../../storage/ports.ts';
import { inspectPackage, type PackageLimits } from '../../packages/inspect.ts';
import { PermanentRunError } from '../../errors.ts';
import type { StageContext } from './types.ts';
import type { CodeCache } from '../codeCache.ts';

export interface FetchCodeDeps extends StageContext {
  codeStore: CodeStore;
  cache: CodeCache;
  packageLimits: PackageLimits;
}

export interface FetchCodeOutput {
  codePath: string;
  codeSha256: string;
  cached: boolean;
}

/**
 * Makes the run's code available on this worker: from the local cache when its sha256 is known
 * and cached, else downloaded, checked against the uploaded sha256, validated again (the bucket
 * may have been written by someone other than our controller) and cached.
 */
export async function fetchCode(message: RunMessage, deps: FetchCodeDeps): Promise<FetchCodeOutput> {
  const hit = message.sha256 ? await deps.cache.get(message.sha256) : null;
  if (hit && message.sha256) {
    deps.log.debug({ stage: 'fetch-code' }, 'code cached');
    return { codePath: hit, codeSha256: message.sha256, cached: true };
  }
  const zip = await deps.codeStore.get(message.s3Key, message.s3Bucket);
  if (!zip) throw new PermanentRunError(`the code object s3://${message.s3Bucket}/${message.s3Key} does not exist — upload the function again`);
  const actual = createHash('sha256').update(zip).digest('hex');
  if (message.sha256 && actual !== message.sha256) {
    throw new PermanentRunError(`the code object s3://${message.s3Bucket}/${message.s3Key} has sha256 ${actual}, not the uploaded ${message.sha256}`);
  }
  const info = inspectPackage(zip, message.runtime, deps.packageLimits);
  const codePath = await deps.cache.put(actual, zip);
  deps.log.info({ stage: 'fetch-code', files: info.fileCount, bytes: info.uncompressedBytes }, 'code ready');
  return { codePath, codeSha256: actual, cached: false };
}
