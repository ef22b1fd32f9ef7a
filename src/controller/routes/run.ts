import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { HttpError } from '../../errors.ts';
import type { RunMessage } from '../../contracts/runMessage.ts';
import { readJson } from '../multipart.ts';
import { resolveLimits } from '../limits.ts';
import type { ControllerDeps } from '../deps.ts';

const MAX_RUN_BODY = 6 * 1024 * 1024;

function pending(ctx: Context, requestId: string, base: string): void {
  ctx.status = 202;
  ctx.set('Location', `${base}/runs/${requestId}`);
  ctx.body = { requestId, status: 'PENDING', location: `${base}/runs/${requestId}` };
}

function parseCallbackUrl(raw: unknown): string | null {
  if (raw === undefined || raw === null || raw === '') return null;
  let url: URL | null;
  try {
    url = typeof raw === 'string' ? new URL(raw) : null;
  } catch {
    url = null;
  }
  if (!url || !['http:', 'https:'].includes(url.protocol)) {
    throw new HttpError(400, 'INVALID_CALLBACK_URL', '"callbackUrl" must be an absolute http:// or https:// URL that accepts a POST of the result JSON');
  }
  return url.toString();
}

/** POST /run: queue a run; wait for its result up to the wait budget, else answer 202. */
export function runRoutes(router: Router, deps: ControllerDeps): void {
  router.post('/run', async (ctx) => {
    const body = await readJson(ctx.req, MAX_RUN_BODY);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new HttpError(400, 'INVALID_BODY', 'the body must be a JSON object like {"functionId":"…","inputData":{}}');
    }
    const req = body as Record<string, unknown>;
    if (typeof req.functionId !== 'string' || req.functionId.trim() === '') {
      throw new HttpError(400, 'MISSING_FUNCTION_ID', '"functionId" is missing; send the id that POST /upload returned');
    }
    if (req.version !== undefined && (typeof req.version !== 'number' || !Number.isInteger(req.version) || req.version < 1)) {
      throw new HttpError(400, 'INVALID_VERSION', '"version" must be a whole number from 1');
    }
    if (req.async !== undefined && typeof req.async !== 'boolean') throw new HttpError(400, 'INVALID_ASYNC', '"async" must be true or false');

    const functionId = req.functionId.trim();
    const fn = await deps.functions.get(functionId);
    if (!fn) throw new HttpError(404, 'FUNCTION_NOT_FOUND', `no function ${functionId}; upload one with POST /upload or list them with GET /functions`);
    const versionNumber = (req.version as number | undefined) ?? fn.latestVersion;
    const version = await deps.functions.getVersion(functionId, versionNumber);
    if (!version) throw new HttpError(404, 'VERSION_NOT_FOUND', `function ${functionId} has no version ${versionNumber}; the latest is ${fn.latestVersion}`);
    const limits = resolveLimits(deps.limits, { timeoutMs: req.timeoutMs, memoryMb: req.memoryMb }, version);
    const callbackUrl = parseCallbackUrl(req.callbackUrl);
    const idempotencyKey = ctx.get('Idempotency-Key').trim();
    if (idempotencyKey.length > 255) throw new HttpError(400, 'INVALID_IDEMPOTENCY_KEY', 'the Idempotency-Key header may be at most 255 characters');

    const message: RunMessage = {
      requestId: randomUUID(),
      functionId,
      version: version.version,
      runtime: version.runtime,
      s3Bucket: deps.codeBucket,
      s3Key: version.codeKey,
      sha256: version.sha256,
      ...limits,
      inputData: req.inputData ?? {},
      enqueuedAt: new Date().toISOString(),
      ...(callbackUrl ? { callbackUrl } : {}),
    };
    const log = deps.log.child({ requestId: message.requestId, functionId });
    const scopedKey = idempotencyKey ? `${functionId}:${idempotencyKey}` : '';
    const earlier = scopedKey ? await deps.idempotency.claim(scopedKey, message.requestId) : null;
    if (earlier) {
      // Same key, same function, within the TTL: the earlier run answers, nothing new is queued.
      log.info({ earlierRequestId: earlier }, 'Idempotency-Key seen before; answering with the earlier run');
      ctx.set('Idempotent-Replayed', 'true');
      const result = await deps.bus.peek(earlier);
      if (result) {
        ctx.body = result;
        return;
      }
      return pending(ctx, earlier, deps.limits.publicUrl);
    }
    try {
      // Both before we answer (so GET /runs finds the run at once), but side by side: neither needs the other.
      await Promise.all([deps.runState.queued(message), deps.queue.send(message)]);
    } catch (err) {
      if (scopedKey) await deps.idempotency.release(scopedKey, message.requestId).catch(() => undefined);
      throw err;
    }
    log.info({ version: message.version, async: req.async === true }, 'run queued');

    // Relative unless the operator names the public URL (behind a proxy the Host header may lie).
    const base = deps.limits.publicUrl;
    if (req.async === true) return pending(ctx, message.requestId, base);
    const closed = new AbortController();
    ctx.req.on('close', () => closed.abort());
    const result = await deps.bus.read(message.requestId, deps.limits.waitBudgetMs, closed.signal);
    if (!result) {
      log.info({ waitBudgetMs: deps.limits.waitBudgetMs }, 'wait budget spent; answering 202');
      return pending(ctx, message.requestId, base);
    }
    ctx.body = result;
  });

  router.get('/runs/:requestId', async (ctx) => {
    const { requestId } = ctx.params as { requestId: string };
    const result = await deps.bus.peek(requestId);
    if (result) {
      ctx.body = result;
      return;
    }
    const state = await deps.runState.get(requestId);
    if (!state) throw new HttpError(404, 'RUN_NOT_FOUND', `no run ${requestId}: the id is wrong, or its result expired`);
    ctx.body = state;
  });
}
