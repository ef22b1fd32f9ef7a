import type { RuntimeName } from './runtimes.ts';

/** One stored version of a function's code; immutable once written. */
export interface FunctionVersion {
  version: number;
  codeKey: string;
  sizeBytes: number;
  sha256: string;
  runtime: RuntimeName;
  memoryMb: number;
  timeoutMs: number;
  createdAt: string;
}

/** A function as the catalogue knows it. */
export interface FunctionMeta {
  functionId: string;
  name: string;
  runtime: RuntimeName;
  latestVersion: number;
  createdAt: string;
  updatedAt: string;
}

/** Where a version's code lives in the code bucket (design.md, fixed): functions/{functionId}/v{version}.zip. */
export function codeKeyFor(functionId: string, version: number): string {
  return `functions/${functionId}/v${version}.zip`;
}
