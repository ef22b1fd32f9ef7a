/**
 * The CLI's only way to the platform: the HTTP API. Every non-2xx answer becomes a CliError carrying the
 * server's own `{ error: { code, message } }`, so the user reads what the server said.
 */
import type { FunctionMeta, FunctionVersion } from '../contracts/functionMeta.ts';
import type { RunResult, RunStatus } from '../contracts/result.ts';
import { CliError } from './args.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export const FINAL_STATUSES: readonly RunStatus[] = ['SUCCESS', 'FAILED', 'TIMEOUT', 'OOM', 'ERROR'];

/** What GET /runs/{id} answers: a result when finished, else the run's phase. */
export type RunLookup = RunResult | { requestId: string; status: 'QUEUED' | 'RUNNING' | 'DONE'; stage?: string };

export interface Api {
  readonly baseUrl: string;
  request<T>(method: string, path: string, body?: { json: unknown } | { form: FormData }): Promise<{ status: number; body: T }>;
  listFunctions(): Promise<FunctionMeta[]>;
  getFunction(functionId: string): Promise<FunctionMeta & { versions: FunctionVersion[] }>;
  getRun(requestId: string): Promise<RunLookup>;
  /** Finds a function by id or by name (an id wins); a CliError names what was looked for. */
  resolveFunction(ref: string): Promise<FunctionMeta>;
}

export function isFinal(run: RunLookup): run is RunResult {
  return (FINAL_STATUSES as readonly string[]).includes(run.status);
}

export function createApi(baseUrl: string): Api {
  const base = baseUrl.replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]/.test(base)) throw new CliError(`the API URL ${JSON.stringify(baseUrl)} is not an http(s) URL; pass --url http://host:port or set NANOGRID_URL`, 'BAD_URL');

  async function request<T>(method: string, path: string, body?: { json: unknown } | { form: FormData }) {
    const init: RequestInit = { method };
    if (body && 'json' in body) {
      init.headers = { 'content-type': 'application/json' };
      init.body = JSON.stringify(body.json);
    } else if (body) init.body = body.form;
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, init);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        `cannot reach NanoGrid at ${base} (${cause?.code ?? cause?.message ?? (err as Error).message}) — start it with \`npm start\`, or point --url / NANOGRID_URL at it`,
        'UNREACHABLE',
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      throw new CliError(`${method} ${path} answered ${res.status} with something that is not JSON: ${text.slice(0, 200)}`, 'BAD_RESPONSE', res.status);
    }
    if (!res.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      throw new CliError(error?.message ?? `${method} ${path} answered ${res.status}`, error?.code ?? `HTTP_${res.status}`, res.status);
    }
    return { status: res.status, body: parsed as T };
  }

  const api: Api = {
    baseUrl: base,
    request,
    async listFunctions() {
      return (await request<{ functions: FunctionMeta[] }>('GET', '/functions')).body.functions;
    },
    async getFunction(functionId) {
      return (await request<FunctionMeta & { versions: FunctionVersion[] }>('GET', `/functions/${encodeURIComponent(functionId)}`)).body;
    },
    async getRun(requestId) {
      return (await request<RunLookup>('GET', `/runs/${encodeURIComponent(requestId)}`)).body;
    },
    async resolveFunction(ref) {
      const all = await api.listFunctions();
      const found = all.find((fn) => fn.functionId === ref) ?? all.find((fn) => fn.name === ref);
      if (!found) throw new CliError(`no function with the id or name ${JSON.stringify(ref)}; \`nanogrid functions ls\` lists them`, 'FUNCTION_NOT_FOUND', 404);
      return found;
    },
  };
  return api;
}
