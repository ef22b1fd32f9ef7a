import type { ResultBus } from '../../src/bus/resultBus.ts';
import type { RunResult } from '../../src/contracts/result.ts';

/** In-memory ResultBus with the same first-result-wins and read-from-start semantics as Redis. */
export function memoryBus(): ResultBus & { subscribers: number } {
  const results = new Map<string, RunResult>();
  const waiters = new Map<string, Set<(r: RunResult) => void>>();
  const bus = {
    subscribers: 0,
    async publish(result: RunResult) {
      const existing = results.get(result.requestId);
      const kept = existing ?? result;
      if (!existing) results.set(result.requestId, result);
      const set = waiters.get(result.requestId);
      for (const wake of set ?? []) wake(kept);
      return { stored: !existing, subscribers: (set?.size ?? 0) + bus.subscribers, result: kept };
    },
    async peek(requestId: string) {
      return results.get(requestId) ?? null;
    },
    async read(requestId: string, timeoutMs: number, signal?: AbortSignal) {
      const early = results.get(requestId);
      if (early) return early;
      return new Promise<RunResult | null>((resolve) => {
        const set = waiters.get(requestId) ?? new Set();
        waiters.set(requestId, set);
        const done = (r: RunResult | null) => {
          clearTimeout(timer);
          set.delete(done);
          resolve(r);
        };
        const timer = setTimeout(() => done(null), timeoutMs);
        signal?.addEventListener('abort', () => done(null), { once: true });
        set.add(done);
      });
    },
    async close() {},
  };
  return bus;
}
