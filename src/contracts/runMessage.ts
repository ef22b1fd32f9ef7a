import { z } from 'zod';
import { RUNTIME_NAMES } from './runtimes.ts';

/** The SQS message the controller sends and the worker consumes (design.md, fixed field names). */
export const runMessageSchema = z.object({
  requestId: z.string().uuid(),
  functionId: z.string().min(1),
  version: z.number().int().min(1),
  runtime: z.enum(RUNTIME_NAMES as [string, ...string[]]),
  s3Bucket: z.string().min(1),
  s3Key: z.string().min(1),
  timeoutMs: z.number().int().positive(),
  memoryMb: z.number().int().positive(),
  inputData: z.unknown(),
  sha256: z.string().optional(),
  enqueuedAt: z.string().optional(),
  /** Where the final result is POSTed (retried with backoff), besides the result stream. */
  callbackUrl: z.string().url().optional(),
  /** Not a run: ready a warm container for this version (sent after an upload that asks for it). */
  prewarm: z.boolean().optional(),
});

export type RunMessage = z.infer<typeof runMessageSchema> & { runtime: import('./runtimes.ts').RuntimeName };

export function parseRunMessage(body: string): RunMessage {
  return runMessageSchema.parse(JSON.parse(body)) as RunMessage;
}
