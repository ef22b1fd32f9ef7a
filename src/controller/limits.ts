import { HttpError } from '../errors.ts';
import type { ControllerDeps } from './deps.ts';

type Limits = ControllerDeps['limits'];

function integerIn(name: string, raw: unknown, min: number, max: number): number {
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new HttpError(400, 'INVALID_LIMIT', `${name} must be a whole number between ${min} and ${max}`);
  if (value < min) throw new HttpError(400, 'LIMIT_OUT_OF_BOUNDS', `${name}=${value} is below the minimum of ${min}`);
  if (value > max) throw new HttpError(400, 'LIMIT_OUT_OF_BOUNDS', `${name}=${value} is above the maximum of ${max}`);
  return value;
}

/** A run's limits: the request's, else the function's, else the defaults; always within the operator's bounds. */
export function resolveLimits(limits: Limits, requested: { timeoutMs?: unknown; memoryMb?: unknown }, fallback?: { timeoutMs: number; memoryMb: number }) {
  const timeoutMs = requested.timeoutMs === undefined || requested.timeoutMs === '' ? (fallback?.timeoutMs ?? limits.defaultTimeoutMs) : integerIn('timeoutMs', requested.timeoutMs, 100, limits.maxTimeoutMs);
  const memoryMb = requested.memoryMb === undefined || requested.memoryMb === '' ? (fallback?.memoryMb ?? limits.defaultMemoryMb) : integerIn('memoryMb', requested.memoryMb, limits.minMemoryMb, limits.maxMemoryMb);
  return { timeoutMs, memoryMb };
}
