import { createHash, randomBytes } from 'node:crypto';
import type Router from '@koa/router';
import { HttpError } from '../../errors.ts';
import { RUNTIME_NAMES, isRuntimeName } from '../../contracts/runtimes.ts';
import { inspectPackage } from '../../packages/inspect.ts';
import { PackageError } from '../../packages/errors.ts';
import type { FunctionVersion } from '../../contracts/functionMeta.ts';
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
      throw new HttpError(400, 'UNKNOWN_RUNTIME', `${runtime ? `unknown runtime "${runtime}"` : 'the "runtime" field is missing'}; known runtimes: ${RUNTIME_NAMES.join(', ')}`);
    }
    const name = form.fields.name?.trim() || undefined;
    if (name !== undefined && !NAME.test(name)) throw new HttpError(400, 'INVALID_NAME', 'name must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit');
    const limits = resolveLimits(deps.limits, { timeoutMs: form.fields.timeoutMs, memoryMb: form.fields.memoryMb });

    const zip = form.file.data;
    try {
      inspectPackage(zip, runtime);
    } catch (err) {
      if (err instanceof PackageError) throw new HttpError(400, err.code, err.message);
      throw err;
    }

    let functionId = form.fields.functionId?.trim() || null;
    if (functionId && !(await deps.functions.get(functionId))) {
      throw new HttpError(404, 'FUNCTION_NOT_FOUND', `no function ${functionId}; leave functionId out to create a new function`);
    }
    functionId ??= (name ? await deps.functions.findByName(name) : null) ?? newFunctionId();
    const existing = await deps.functions.get(functionId);

    const sha256 = createHash('sha256').update(zip).digest('hex');
    const version = await deps.functions.nextVersion(functionId);
    const codeKey = `functions/${functionId}/v${version}.zip`;
    // Code first, metadata second: the catalogue never names an object that is not there.
    await deps.codeStore.put(codeKey, zip, sha256);
    const record: FunctionVersion = { version, codeKey, sizeBytes: zip.length, sha256, runtime, ...limits, createdAt: new Date().toISOString() };
    const meta = await deps.functions.saveVersion({ functionId, name: name ?? existing?.name ?? functionId, runtime }, record);
    deps.log.info({ functionId, version, runtime, sizeBytes: zip.length }, 'function version stored');
    ctx.status = 201;
    ctx.set('Location', `/functions/${functionId}`);
    ctx.body = { functionId, name: meta.name, codeBucket: deps.codeBucket, ...record };
  });
}
