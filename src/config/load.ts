import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { configSchema, type Config } from './schema.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Familiar names that users expect to work, beside the generic NANOGRID_SECTION_KEY form. */
const ALIASES: Record<string, string> = {
  REDIS_URL: 'redis.url',
  AWS_REGION: 'aws.region',
  AWS_ENDPOINT_URL: 'aws.endpoint',
  AWS_ENDPOINT_URL_SQS: 'aws.sqsEndpoint',
  AWS_ACCESS_KEY_ID: 'aws.accessKeyId',
  AWS_SECRET_ACCESS_KEY: 'aws.secretAccessKey',
  SQS_QUEUE_URL: 'queue.url',
  PORT: 'controller.port',
  LOG_LEVEL: 'logLevel',
};

/** `controller.waitBudgetMs` → `NANOGRID_CONTROLLER_WAIT_BUDGET_MS`. */
export function envNameFor(dottedPath: string): string {
  return 'NANOGRID_' + dottedPath.replace(/\./g, '_').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Tree = { [key: string]: unknown };

function leafPaths(tree: Tree, prefix = ''): string[] {
  return Object.entries(tree).flatMap(([key, value]) =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? leafPaths(value as Tree, `${prefix}${key}.`)
      : [`${prefix}${key}`],
  );
}

function setPath(tree: Tree, dottedPath: string, value: unknown): void {
  const keys = dottedPath.split('.');
  let node = tree;
  for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Tree;
  node[keys[keys.length - 1] as string] = value;
}

/**
 * Parses the configuration once: config/default.yaml, then an optional file named by
 * NANOGRID_CONFIG, then environment variables. Throws ConfigError naming the bad option.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Record<string, unknown> = {}): Config {
  const base = parseYaml(readFileSync(path.join(PROJECT_ROOT, 'config/default.yaml'), 'utf8')) as Tree;
  const extraFile = env.NANOGRID_CONFIG;
  if (extraFile) {
    if (!existsSync(extraFile)) throw new ConfigError(`NANOGRID_CONFIG names ${extraFile}, which does not exist`);
    const extra = parseYaml(readFileSync(extraFile, 'utf8')) as Tree;
    for (const p of leafPaths(extra)) setPath(base, p, p.split('.').reduce<unknown>((n, k) => (n as Tree)[k], extra));
  }
  const sources = new Map<string, string>();
  for (const p of leafPaths(base)) {
    const name = envNameFor(p);
    if (env[name] !== undefined) {
      setPath(base, p, env[name]);
      sources.set(p, name);
    }
  }
  for (const [name, p] of Object.entries(ALIASES)) {
    if (env[name] !== undefined && !sources.has(p)) {
      setPath(base, p, env[name]);
      sources.set(p, name);
    }
  }
  for (const [p, value] of Object.entries(overrides)) setPath(base, p, value);

  const parsed = configSchema.safeParse(base);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const p = issue.path.join('.');
      const from = sources.get(p) ?? `config ${p} (env ${envNameFor(p)})`;
      return `${p}: ${issue.message} (set by ${from})`;
    });
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const config = parsed.data;
  config.stateDir = path.resolve(PROJECT_ROOT, config.stateDir);
  return config;
}

/** The config with secrets removed, for the start-up log line. */
export function redactConfig(config: Config): unknown {
  const redactUrl = (url: string) => url.replace(/\/\/([^@/]*)@/, '//***@');
  return {
    ...config,
    redis: { ...config.redis, url: redactUrl(config.redis.url) },
    aws: { ...config.aws, secretAccessKey: config.aws.secretAccessKey ? '***' : '' },
  };
}
