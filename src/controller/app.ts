import Koa from 'koa';
import Router from '@koa/router';
import { isHttpError } from '../errors.ts';
import type { ControllerDeps } from './deps.ts';
import { uploadRoutes } from './routes/upload.ts';
import { runRoutes } from './routes/run.ts';
import { functionRoutes } from './routes/functions.ts';
import { healthRoutes } from './routes/health.ts';
import { eventRoutes } from './routes/events.ts';

/** The HTTP API. Errors leave as `{ error: { code, message } }` with the status they carry. */
export function createApp(deps: ControllerDeps, extra: Koa.Middleware[] = []): Koa {
  const app = new Koa();
  // Registered first, so it sees every error of every later middleware.
  app.use(async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: { code: 'NOT_FOUND', message: `no route ${ctx.method} ${ctx.path}; see the README for the API` } };
      }
    } catch (err) {
      if (isHttpError(err)) {
        ctx.status = err.status;
        ctx.body = { error: { code: err.code, message: err.message } };
        deps.log.info({ status: err.status, code: err.code, path: ctx.path }, err.message);
        return;
      }
      deps.log.error({ err, path: ctx.path }, 'request failed');
      ctx.status = 500;
      ctx.body = { error: { code: 'INTERNAL', message: 'the controller failed to handle this request; see its log' } };
    }
  });
  const router = new Router();
  uploadRoutes(router, deps);
  runRoutes(router, deps);
  eventRoutes(router, deps);
  functionRoutes(router, deps);
  healthRoutes(router, deps);
  for (const mw of extra) app.use(mw);
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
