import { now } from './measure.ts';

/** One POST /run as the benchmark sees it: never throws, errors are data. */
export interface RunOutcome {
  /** HTTP 200 and status SUCCESS. */
  ok: boolean;
  /** HTTP in to result out (request sent → response body parsed), in ms. */
  ms: number;
  httpStatus: number | null;
  status: string | null;
  coldStart: boolean | null;
  /** Why it is not ok, in a few words; null when ok. */
  error: string | null;
}

export interface RunRequest {
  functionId: string;
  version?: number;
  inputData?: unknown;
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'client timeout';
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** A synchronous POST /run with the server's default wait budget, cut off after `timeoutMs`. */
export async function runOnce(baseUrl: string, request: RunRequest, timeoutMs: number): Promise<RunOutcome> {
  const started = now();
  try {
    const res = await fetch(`${baseUrl}/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    const ms = now() - started;
    let body: { status?: unknown; coldStart?: unknown; error?: { code?: string } } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // not JSON: reported below through the HTTP status or the missing status
    }
    const status = typeof body.status === 'string' ? body.status : null;
    const coldStart = typeof body.coldStart === 'boolean' ? body.coldStart : null;
    const ok = res.status === 200 && status === 'SUCCESS';
    const error = ok ? null : res.status !== 200 ? `HTTP ${res.status}${body.error?.code ? ` ${body.error.code}` : status ? ` ${status}` : ''}` : `status ${status ?? 'missing'}`;
    return { ok, ms, httpStatus: res.status, status, coldStart, error };
  } catch (err) {
    return { ok: false, ms: now() - started, httpStatus: null, status: null, coldStart: null, error: describe(err) };
  }
}

export interface Uploaded {
  functionId: string;
  version: number;
}

/** POST /upload of a python function; a new function, or the next version of `functionId`. Throws when refused. */
export async function uploadPython(baseUrl: string, zip: Buffer, functionId?: string): Promise<Uploaded> {
  const form = new FormData();
  form.set('runtime', 'python');
  if (functionId) form.set('functionId', functionId);
  form.set('file', new Blob([new Uint8Array(zip)]), 'function.zip');
  const res = await fetch(`${baseUrl}/upload`, { method: 'POST', body: form, signal: AbortSignal.timeout(30_000) });
  const body = (await res.json()) as { functionId?: string; version?: number; error?: { code: string; message: string } };
  if (res.status !== 201 || !body.functionId || typeof body.version !== 'number') {
    throw new Error(`upload refused: HTTP ${res.status} ${body.error ? `${body.error.code}: ${body.error.message}` : JSON.stringify(body)}`);
  }
  return { functionId: body.functionId, version: body.version };
}

/** Polls GET /readyz until it answers 200; `alive` stops the wait early when a process died. */
export async function waitReady(baseUrl: string, timeoutMs: number, alive: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    const dead = alive();
    if (dead) throw new Error(dead);
    try {
      const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(5_000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status} ${await res.text()}`;
    } catch (err) {
      last = describe(err);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`GET ${baseUrl}/readyz did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}
