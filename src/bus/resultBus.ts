import type { Redis } from 'ioredis';
import type { RunResult } from '../contracts/result.ts';

/**
 * The result bus. `publish` appends a result to the stream `{prefix}{requestId}` (once: a second,
 * different result for the same request is refused) and PUBLISHes it on the channel of the same
 * name. `read` returns the result even when it was published before anyone listened.
 */
export interface ResultBus {
  publish(result: RunResult): Promise<{ stored: boolean; subscribers: number; result: RunResult }>;
  read(requestId: string, timeoutMs: number, signal?: AbortSignal): Promise<RunResult | null>;
  peek(requestId: string): Promise<RunResult | null>;
  close(): Promise<void>;
}

export interface ResultBusConfig {
  prefix: string;
  ttlSeconds: number;
  /** How often a waiting reader re-reads the stream in case a Pub/Sub message was missed (e.g. across a reconnect). */
  pollMs?: number;
}

// Atomic "first result wins": XADD only into an empty stream, so a redelivered message cannot
// publish a second, different result. Returns 1 when added.
const PUBLISH_ONCE = `
if redis.call('XLEN', KEYS[1]) > 0 then return 0 end
redis.call('XADD', KEYS[1], '*', 'result', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1`;

function parseEntries(entries: [string, string[]][]): RunResult | null {
  const fields = entries[0]?.[1];
  if (!fields) return null;
  const index = fields.indexOf('result');
  const json = index >= 0 ? fields[index + 1] : undefined;
  return json ? (JSON.parse(json) as RunResult) : null;
}

/**
 * `commands` serves normal commands; `subscriber` is a connection the bus may put into subscriber
 * mode (only needed by readers). Both are owned by the caller, except that close() unsubscribes.
 */
export function fromRedis(commands: Redis, subscriber: Redis | null, config: ResultBusConfig): ResultBus {
  const key = (requestId: string) => `${config.prefix}${requestId}`;
  const waiters = new Map<string, Set<(r: RunResult) => void>>();

  subscriber?.on('message', (channel: string, message: string) => {
    const set = waiters.get(channel);
    if (!set) return;
    const result = JSON.parse(message) as RunResult;
    for (const wake of set) wake(result);
  });

  async function peek(requestId: string): Promise<RunResult | null> {
    const entries = (await commands.xrange(key(requestId), '-', '+', 'COUNT', 1)) as [string, string[]][];
    return parseEntries(entries);
  }

  return {
    async publish(result) {
      const k = key(result.requestId);
      const json = JSON.stringify(result);
      const added = (await commands.eval(PUBLISH_ONCE, 1, k, json, String(config.ttlSeconds))) as number;
      const stored = added === 1 ? result : ((await peek(result.requestId)) ?? result);
      const subscribers = await commands.publish(k, JSON.stringify(stored));
      return { stored: added === 1, subscribers, result: stored };
    },

    peek,

    async read(requestId, timeoutMs, signal) {
      if (!subscriber) throw new Error('this result bus was built without a subscriber connection');
      const channel = key(requestId);
      let wake!: (r: RunResult | null) => void;
      const done = new Promise<RunResult | null>((resolve) => (wake = resolve));
      const set = waiters.get(channel) ?? new Set();
      set.add(wake);
      waiters.set(channel, set);
      const timer = setTimeout(() => wake(null), timeoutMs);
      const onAbort = () => wake(null);
      signal?.addEventListener('abort', onAbort, { once: true });
      // Re-read the stream now and then: a result published while the subscriber was reconnecting
      // is still on the stream, so it is never lost.
      const poll = setInterval(() => void peek(requestId).then((r) => r && wake(r), () => undefined), config.pollMs ?? 1000);
      try {
        // Subscribe first, then read the stream from its start: a result published in between is
        // seen by one or the other, and one published before we came is on the stream.
        await subscriber.subscribe(channel);
        const early = await peek(requestId);
        if (early) wake(early);
        return await done;
      } finally {
        clearTimeout(timer);
        clearInterval(poll);
        signal?.removeEventListener('abort', onAbort);
        set.delete(wake);
        if (set.size === 0) {
          waiters.delete(channel);
          await subscriber.unsubscribe(channel).catch(() => undefined);
        }
      }
    },

    async close() {
      waiters.clear();
    },
  };
}
