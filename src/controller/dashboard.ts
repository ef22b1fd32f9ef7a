import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type Koa from 'koa';

export const DASHBOARD_PATH = '/admin/queues';

/**
 * Bull Board over every worker's stage queues. Workers register their queue names in
 * `{prefix}:queues`; the list is re-read at most every few seconds, when the dashboard is used.
 */
export function createDashboard(redis: Redis, keyPrefix: string): { middleware: Koa.Middleware; close(): Promise<void> } {
  const adapter = new KoaAdapter();
  adapter.setBasePath(DASHBOARD_PATH);
  const board = createBullBoard({ queues: [], serverAdapter: adapter });
  const queues = new Map<string, Queue>();
  let refreshedAt = 0;

  async function refresh(): Promise<void> {
    if (Date.now() - refreshedAt < 5000) return;
    refreshedAt = Date.now();
    const names = (await redis.smembers(`${keyPrefix}:queues`)).sort();
    for (const name of names) {
      if (queues.has(name)) continue;
      const queue = new Queue(name, { connection: redis, prefix: keyPrefix });
      queues.set(name, queue);
      board.addQueue(new BullMQAdapter(queue, { readOnlyMode: false }));
    }
  }

  const plugin = adapter.registerPlugin() as Koa.Middleware;
  return {
    middleware: async (ctx, next) => {
      if (ctx.path.startsWith(DASHBOARD_PATH)) await refresh();
      return plugin(ctx, next);
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}
