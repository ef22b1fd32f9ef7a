import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCodeCache } from '../../src/worker/codeCache.ts';

let dir: string;
beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'ng-cache-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('code cache', () => {
  it('returns what it stored, by sha256, and nothing for an unknown digest', async () => {
    const cache = await createCodeCache({ dir, maxBytes: 1000 });
    const stored = await cache.put('a'.repeat(64), Buffer.from('zip-a'));
    assert.equal(await cache.get('a'.repeat(64)), stored);
    assert.equal(await cache.get('b'.repeat(64)), null);
  });

  it('stays within its size bound by dropping the least recently used packages', async () => {
    const cache = await createCodeCache({ dir, maxBytes: 250 });
    const a = await cache.put('a'.repeat(64), Buffer.alloc(100));
    const b = await cache.put('b'.repeat(64), Buffer.alloc(100));
    // a is older than b, but used since: b is now the least recently used.
    const past = new Date(Date.now() - 60_000);
    utimesSync(a, past, past);
    utimesSync(b, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    await cache.get('a'.repeat(64));
    await cache.put('c'.repeat(64), Buffer.alloc(100));
    assert.equal(await cache.get('b'.repeat(64)), null, 'the least recently used went');
    assert.ok(await cache.get('a'.repeat(64)));
    assert.ok(await cache.get('c'.repeat(64)));
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.partial')), [], 'no half-written package is left');
  });
});
