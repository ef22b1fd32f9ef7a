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

// Atomic "first result wins", in one round trip: XADD only into an empty stream (so a redelivered
// run cannot store a second, different result), EXPIRE, then PUBLISH whichever result is stored.
// Returns { added (1|0), subscribers, stored JSON }.
const PUBLISH_ONCE = `
local added = 0
local json = ARGV[1]
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if first then
  for i = 1, #first[2], 2 do if first[2][i] == 'result' then json = first[2][i + 1] end end
else
  redis.call('XADD', KEYS[1], '*', 'result', json)
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  added = 1
end
local subscribers = redis.call('PUBLISH', KEYS[1], json)
return { added, subscribers, json }`;

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

  // One pattern subscription for all results, made once: a read then costs one stream read, not a
  // SUBSCRIBE/UNSUBSCRIBE pair. Every reader process receives every result's notice; it is small
  // next to the run, and only waiters of that request parse it.
  const subscribed = subscriber ? subscriber.psubscribe(`${config.prefix}*`) : null;
  subscribed?.catch(() => undefined);
  subscriber?.on('pmessage', (_pattern: string, channel: string, message: string) => {
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
      const [added, subscribers, json] = (await commands.eval(PUBLISH_ONCE, 1, key(result.requestId), JSON.stringify(result), String(config.ttlSeconds))) as [number, number, string];
      return { stored: added === 1, subscribers, result: added === 1 ? result : (JSON.parse(json) as RunResult) };
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
        // Subscribed first (once, above), then the stream read from its start: a result published
        // in between is seen by one or the other, and one published before we came is on the stream.
        await subscribed;
        const early = await peek(requestId);
        if (early) wake(early);
        return await done;
      } finally {
        clearTimeout(timer);
        clearInterval(poll);
        signal?.removeEventListener('abort', onAbort);
        set.delete(wake);
        if (set.size === 0) waiters.delete(channel);
      }
    },

    async close() {
      waiters.clear();
    },
  };
}
