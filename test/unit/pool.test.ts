import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ContainerPool } from '../../src/sandbox/pool.ts';
import type { WarmContainer } from '../../src/sandbox/container.ts';

/** Just what the pool looks at: key, busy, alive, lastUsed. */
function fake(key: string, lastUsed = Date.now()): WarmContainer {
  return { key, busy: false, alive: true, lastUsed } as unknown as WarmContainer;
}

describe('warm container pool', () => {
  it('hands an idle container of the same key, once, and never one of another key', () => {
    const pool = new ContainerPool({ perKey: 2, total: 10, idleMs: 60_000 });
    const a = fake('fn-a@v1');
    pool.add(a);
    pool.release(a);
    assert.equal(pool.take('fn-b@v1'), null, 'never shared between functions');
    assert.equal(pool.take('fn-a@v2'), null, 'never shared between versions');
    assert.equal(pool.take('fn-a@v1'), a);
    assert.equal(pool.take('fn-a@v1'), null, 'busy containers are not handed out twice');
  });

  it('keeps at most perKey containers of one key and total in all', () => {
    const pool = new ContainerPool({ perKey: 1, total: 2, idleMs: 60_000 });
    const a1 = fake('a');
    const a2 = fake('a');
    pool.add(a1);
    pool.add(a2);
    assert.equal(pool.mayKeep(a2), false, 'a second container of the key is over perKey');
    pool.remove(a2);
    assert.equal(pool.mayKeep(a1), true);
    pool.add(fake('b'));
    const c = fake('c');
    pool.add(c);
    assert.equal(pool.mayKeep(c), false, 'three containers are over total');
  });

  it('evicts the least recently used idle container, and expires idle ones past the TTL', () => {
    const pool = new ContainerPool({ perKey: 4, total: 4, idleMs: 1000 });
    const old = fake('a', Date.now() - 5000);
    const fresh = fake('b', Date.now());
    const busy = fake('c', Date.now() - 9000);
    for (const c of [old, fresh, busy]) pool.add(c);
    pool.release(old);
    pool.release(fresh);
    assert.equal(pool.evictIdle(), old, 'the busy one is older but in use');
    pool.add(old);
    pool.release(old);
    assert.deepEqual(pool.expired(), [old]);
    assert.equal(pool.size, 2);
    assert.deepEqual(new Set(pool.drain()), new Set([fresh, busy]));
    assert.equal(pool.size, 0);
  });
});
