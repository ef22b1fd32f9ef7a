import { randomUUID, createHash, randomBytes } from 'node:crypto';
import type Router from '@koa/router';
import { HttpError } from '../../errors.ts';
import { isRuntimeName, unknownRuntimeMessage } from '../../contracts/runtimes.ts';
import { inspectPackage } from '../../packages/inspect.ts';
import { PackageError } from '../../packages/errors.ts';
import { codeKeyFor, type FunctionMeta, type FunctionVersion } from '../../contracts/functionMeta.ts';
import { CatalogueConflict } from '../../catalogue/functions.ts';
import { readMultipart } from '../multipart.ts';
import { resolveLimits } from '../limits.ts';
import type { ControllerDeps } from '../deps.ts';

export function newFunctionId(): string {
  return `fn-${randomBytes(8).toString('hex')}`;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** POST /upload: validate the package, store it as the next version, then record it. */
export function uploadRoutes(router: Router, deps: ControllerDeps): void {
  router.post('/upload', async (ctx) => {
    const form = await readMultipart(ctx.req, deps.limits.maxUploadBytes);
    if (!form.file) throw new HttpError(400, 'MISSING_FILE', 'no file in the upload: send the ZIP in a form field named "file", e.g. curl -F file=@function.zip -F runtime=python');
    const runtime = form.fields.runtime;
    if (!isRuntimeName(runtime)) {
      throw new HttpError(400, 'UNKNOWN_RUNTIME', unknownRuntimeMessage(runtime));
    }
    const name = form.fields.name?.trim() || undefined;
    if (name !== undefined && !NAME.test(name)) throw new HttpError(400, 'INVALID_NAME', 'name must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit');
    const limits = resolveLimits(deps.limits, { timeoutMs: form.fields.timeoutMs, memoryMb: form.fields.memoryMb });

    const zip = form.file.data;
    try {
      inspectPackage(zip, runtime, deps.packageLimits);
    } catch (err) {
      if (err instanceof PackageError) throw new HttpError(400, err.code, err.message);
      throw err;
    }

    const functionId = await resolveFunctionId(deps, form.fields.functionId?.trim() || null, name);
    const existing = await deps.functions.get(functionId);

    const sha256 = createHash('sha256').update(zip).digest('hex');
    const version = await deps.functions.nextVersion(functionId);
    const codeKey = codeKeyFor(functionId, version);
    // Code first, metadata second: the catalogue never names an object that is not there.
    await deps.codeStore.put(codeKey, zip, sha256);
    const record: FunctionVersion = { version, codeKey, sizeBytes: zip.length, sha256, runtime, ...limits, createdAt: new Date().toISOString() };
    let meta: FunctionMeta;
    try {
      meta = await deps.functions.saveVersion({ functionId, name: name ?? existing?.name ?? functionId, runtime }, record);
    } catch (err) {
      if (!(err instanceof CatalogueConflict)) throw err;
      // Nothing names the object we just stored: take it back so a refused upload leaves nothing behind.
      await deps.codeStore.delete(codeKey).catch((cause: unknown) => deps.log.warn({ err: cause, codeKey }, 'could not remove the code of a refused upload'));
      throw new HttpError(409, err.code, err.message);
    }
    deps.log.info({ functionId, version, runtime, sizeBytes: zip.length }, 'function version stored');
    // Optional pre-warm: a worker readies a container for this version, so even the first run is warm.
    const prewarm = ['true', '1', 'yes'].includes((form.fields.prewarm ?? '').toLowerCase());
    if (prewarm) {
      await deps.queue.send({
        requestId: randomUUID(),
        functionId,
        version,
        runtime,
        s3Bucket: deps.codeBucket,
        s3Key: codeKey,
        sha256,
        ...limits,
        inputData: null,
        prewarm: true,
      });
    }
    ctx.status = 201;
    ctx.set('Location', `/functions/${functionId}`);
    ctx.body = { functionId, name: meta.name, codeBucket: deps.codeBucket, ...record, prewarm };
  });
}

/**
 * The function this upload adds a version to: the one named by functionId (which must exist), else the one
 * called `name` (claimed atomically for a new id when nobody has it yet), else a new one.
 */
async function resolveFunctionId(deps: ControllerDeps, functionId: string | null, name: string | undefined): Promise<string> {
  if (functionId) {
    if (!(await deps.functions.get(functionId))) {
      throw new HttpError(404, 'FUNCTION_NOT_FOUND', `no function ${functionId}; leave functionId out to create a new function`);
    }
    const owner = name ? await deps.functions.findByName(name) : null;
    if (owner && owner !== functionId) {
      throw new HttpError(409, 'NAME_TAKEN', `the name "${name}" belongs to function ${owner}; choose another name, or upload with functionId=${owner} to add a version to it`);
    }
    return functionId;
  }
  return name ? deps.functions.claimName(name, newFunctionId()) : newFunctionId();
}
