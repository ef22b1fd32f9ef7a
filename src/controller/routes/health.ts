import type Router from '@koa/router';
import type { ControllerDeps } from '../deps.ts';

const CHECK_TIMEOUT_MS = 3000;

function withTimeout(check: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
    check().then(resolve, reject).finally(() => clearTimeout(timer));
  });
}

/** /healthz: the process lives. /readyz: every dependency answers, or 503 naming those that do not. */
export function healthRoutes(router: Router, deps: ControllerDeps): void {
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const names = Object.keys(deps.checks);
    const outcomes = await Promise.allSettled(names.map((n) => withTimeout(deps.checks[n] as () => Promise<void>)));
    const checks: Record<string, string> = {};
    const failing: string[] = [];
    outcomes.forEach((o, i) => {
      const name = names[i] as string;
      if (o.status === 'fulfilled') checks[name] = 'ok';
      else {
        failing.push(name);
        checks[name] = o.reason instanceof Error ? o.reason.message : String(o.reason);
      }
    });
    ctx.status = failing.length === 0 ? 200 : 503;
    ctx.body = failing.length === 0 ? { status: 'ready', checks } : { status: 'unavailable', failing, checks, message: `not ready: ${failing.join(', ')} unreachable` };
  });
}
