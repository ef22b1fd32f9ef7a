import type Router from '@koa/router';
import { HttpError } from '../../errors.ts';
import type { ControllerDeps } from '../deps.ts';

/** The catalogue: what is deployed, with its versions. */
export function functionRoutes(router: Router, deps: ControllerDeps): void {
  router.get('/functions', async (ctx) => {
    ctx.body = { functions: await deps.functions.list() };
  });
  router.get('/functions/:functionId', async (ctx) => {
    const { functionId } = ctx.params as { functionId: string };
    const fn = await deps.functions.get(functionId);
    if (!fn) throw new HttpError(404, 'FUNCTION_NOT_FOUND', `no function ${functionId}; GET /functions lists them`);
    ctx.body = { ...fn, versions: await deps.functions.versions(functionId) };
  });
}
