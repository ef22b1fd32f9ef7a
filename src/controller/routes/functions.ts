import type Router from '@koa/router';
import { HttpError } from '../../errors.ts';
import { codeKeyFor } from '../../contracts/functionMeta.ts';
import type { ControllerDeps } from '../deps.ts';

function notFound(functionId: string): HttpError {
  return new HttpError(404, 'FUNCTION_NOT_FOUND', `no function ${functionId}; GET /functions lists them`);
}

/** The catalogue: what is deployed, with its versions. */
export function functionRoutes(router: Router, deps: ControllerDeps): void {
  router.get('/functions', async (ctx) => {
    ctx.body = { functions: await deps.functions.list() };
  });

  router.get('/functions/:functionId', async (ctx) => {
    const { functionId } = ctx.params as { functionId: string };
    const fn = await deps.functions.get(functionId);
    if (!fn) throw notFound(functionId);
    ctx.body = { ...fn, versions: await deps.functions.versions(functionId) };
  });

  router.get('/functions/:functionId/versions', async (ctx) => {
    const { functionId } = ctx.params as { functionId: string };
    if (!(await deps.functions.get(functionId))) throw notFound(functionId);
    ctx.body = { functionId, versions: await deps.functions.versions(functionId) };
  });

  router.get('/functions/:functionId/versions/:version', async (ctx) => {
    const { functionId, version: raw } = ctx.params as { functionId: string; version: string };
    const version = /^[1-9][0-9]{0,8}$/.test(raw) ? Number(raw) : null;
    if (version === null) throw new HttpError(400, 'INVALID_VERSION', `version "${raw}" must be a whole number from 1`);
    const fn = await deps.functions.get(functionId);
    if (!fn) throw notFound(functionId);
    const record = await deps.functions.getVersion(functionId, version);
    if (!record) throw new HttpError(404, 'VERSION_NOT_FOUND', `function ${functionId} has no version ${version}; the latest is ${fn.latestVersion}`);
    ctx.body = { functionId, name: fn.name, ...record };
  });

  /**
   * Metadata first, code second. Once the metadata is gone nothing can start a new run of the function,
   * and a crash between the two steps leaves only unreachable objects (garbage), never a catalogue entry
   * naming a missing object (every run of it would end in ERROR). Code first would risk exactly that.
   * Runs already queued carry their own s3Key and sha256 and never read the catalogue: those past
   * fetch-code finish on their extracted copy; those still waiting for it end in ERROR (code missing).
   */
  router.delete('/functions/:functionId', async (ctx) => {
    const { functionId } = ctx.params as { functionId: string };
    const removed = await deps.functions.delete(functionId);
    if (!removed) throw notFound(functionId);
    // Every number ever reserved, not just the recorded versions: an upload that failed between storing
    // its code and recording it left an object that nothing else would ever remove.
    const keys = Array.from({ length: removed.reserved }, (_, i) => codeKeyFor(functionId, i + 1));
    const outcomes = await Promise.allSettled(keys.map((key) => deps.codeStore.delete(key)));
    const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [{ key: keys[i] as string, reason: o.reason as unknown }] : []));
    const leftCodeKeys = failed.map((f) => f.key);
    const log = deps.log.child({ functionId });
    if (failed.length > 0) log.warn({ leftCodeKeys, err: failed[0]?.reason }, 'function deleted, but some code objects could not be removed');
    log.info({ versions: removed.versions.length }, 'function deleted');
    ctx.body = { functionId, deletedVersions: removed.versions.map((v) => v.version), ...(leftCodeKeys.length > 0 ? { leftCodeKeys } : {}) };
  });
}
