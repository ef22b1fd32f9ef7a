import { PassThrough } from 'node:stream';
import type Router from '@koa/router';
import { HttpError } from '../../errors.ts';
import type { ControllerDeps } from '../deps.ts';

const STATE_POLL_MS = 250;
const KEEPALIVE_MS = 15_000;

/**
 * GET /runs/{id}/events: server-sent events — `state` on every stage change, then one `result`
 * and the end of the stream. The result comes from the stream read, so it is never missed.
 */
export function eventRoutes(router: Router, deps: ControllerDeps): void {
  router.get('/runs/:requestId/events', async (ctx) => {
    const { requestId } = ctx.params as { requestId: string };
    const [result, state] = await Promise.all([deps.bus.peek(requestId), deps.runState.get(requestId)]);
    if (!result && !state) throw new HttpError(404, 'RUN_NOT_FOUND', `no run ${requestId}: the id is wrong, or its result expired`);

    const stream = new PassThrough();
    const send = (event: string, data: unknown) => stream.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    ctx.req.socket.setTimeout(0);
    ctx.set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    ctx.status = 200;
    ctx.body = stream;

    if (result) {
      send('result', result);
      stream.end();
      return;
    }
    const closed = new AbortController();
    ctx.req.on('close', () => closed.abort());
    let last = '';
    const emitState = async () => {
      const now = await deps.runState.get(requestId);
      const key = now ? `${now.status}:${now.stage ?? ''}` : '';
      if (now && key !== last && now.status !== 'DONE') {
        last = key;
        send('state', now);
      }
    };
    await emitState();
    const poll = setInterval(() => void emitState().catch(() => undefined), STATE_POLL_MS);
    const keepalive = setInterval(() => stream.write(': keep-alive\n\n'), KEEPALIVE_MS);
    void deps.bus
      .read(requestId, deps.limits.maxTimeoutMs + 5 * 60_000, closed.signal)
      .then((final) => {
        if (final) send('result', final);
        else if (!closed.signal.aborted) send('timeout', { requestId, message: 'no result yet; GET /runs/{id} later' });
      })
      .finally(() => {
        clearInterval(poll);
        clearInterval(keepalive);
        stream.end();
      });
  });
}
