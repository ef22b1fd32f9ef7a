import type { WarmContainer } from './container.ts';

export interface PoolLimits {
  /** Warm containers per pool key (one function version at one memory size). */
  perKey: number;
  /** Warm containers on this worker in all. */
  total: number;
  /** An idle container older than this is retired. */
  idleMs: number;
}

/**
 * The warm containers of one worker, by key. A key names one function version (and memory
 * size): containers are never shared between functions or versions. Only bookkeeping here;
 * the sandbox creates and destroys.
 */
export class ContainerPool {
  private readonly byKey = new Map<string, Set<WarmContainer>>();

  constructor(readonly limits: PoolLimits) {}

  get size(): number {
    let n = 0;
    for (const set of this.byKey.values()) n += set.size;
    return n;
  }

  /** An idle, live container for this key, now marked busy; null when there is none. */
  take(key: string): WarmContainer | null {
    for (const c of this.byKey.get(key) ?? []) {
      if (!c.busy && c.alive) {
        c.busy = true;
        return c;
      }
    }
    return null;
  }

  hasIdle(key: string): boolean {
    for (const c of this.byKey.get(key) ?? []) if (!c.busy && c.alive) return true;
    return false;
  }

  /** Registers a new container, busy. */
  add(c: WarmContainer): void {
    c.busy = true;
    const set = this.byKey.get(c.key) ?? new Set();
    set.add(c);
    this.byKey.set(c.key, set);
  }

  /** Whether a container may go back to the pool after its run, within the limits. */
  mayKeep(c: WarmContainer): boolean {
    const set = this.byKey.get(c.key);
    if (!set?.has(c) || !c.alive) return false;
    return set.size <= this.limits.perKey && this.size <= this.limits.total;
  }

  release(c: WarmContainer): void {
    c.busy = false;
  }

  remove(c: WarmContainer): void {
    const set = this.byKey.get(c.key);
    set?.delete(c);
    if (set?.size === 0) this.byKey.delete(c.key);
  }

  /** The least recently used idle container (to make room), removed from the pool. */
  evictIdle(): WarmContainer | null {
    let oldest: WarmContainer | null = null;
    for (const set of this.byKey.values()) for (const c of set) if (!c.busy && (!oldest || c.lastUsed < oldest.lastUsed)) oldest = c;
    if (oldest) this.remove(oldest);
    return oldest;
  }

  /** Idle containers past the idle TTL (or dead), removed from the pool. */
  expired(now = Date.now()): WarmContainer[] {
    const out: WarmContainer[] = [];
    for (const set of this.byKey.values()) for (const c of set) if (!c.busy && (!c.alive || now - c.lastUsed > this.limits.idleMs)) out.push(c);
    for (const c of out) this.remove(c);
    return out;
  }

  drain(): WarmContainer[] {
    const all = [...this.byKey.values()].flatMap((set) => [...set]);
    this.byKey.clear();
    return all;
  }
}
