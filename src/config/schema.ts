import { z } from 'zod';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const bool = z.preprocess((v) => (typeof v === 'string' ? !['false', '0', 'no', ''].includes(v.toLowerCase()) : v), z.boolean());

/** The whole configuration: file defaults (config/default.yaml) overridden by environment variables. */
export const configSchema = z.object({
  stateDir: z.string().min(1),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  controller: z.object({
    host: z.string().min(1),
    port: int(0, 65535),
    waitBudgetMs: int(0),
    maxUploadBytes: int(1),
    publicUrl: z.string(),
  }),
  redis: z.object({ url: z.string(), keyPrefix: z.string().min(1) }),
  results: z.object({ prefix: z.string().min(1), ttlSeconds: int(1) }),
  aws: z.object({
    region: z.string().min(1),
    endpoint: z.string(),
    sqsEndpoint: z.string(),
    accessKeyId: z.string(),
    secretAccessKey: z.string(),
    forcePathStyle: bool,
  }),
  storage: z.object({
    codeBucket: z.string().min(3),
    userDataBucket: z.string().min(3),
    outputPrefix: z.string().min(1),
    outputUrlExpirySeconds: int(1, 604800),
  }),
  queue: z.object({
    name: z.string().min(1),
    url: z.string(),
    deadLetterName: z.string().min(1),
    deadLetterUrl: z.string(),
    visibilityTimeoutSeconds: int(1, 43200),
  }),
  runs: z.object({
    defaultTimeoutMs: int(100),
    defaultMemoryMb: int(6),
    maxTimeoutMs: int(100),
    minMemoryMb: int(6),
    maxMemoryMb: int(6),
  }),
  worker: z.object({
    id: z.string(),
    concurrency: int(1, 256),
    dockerSocket: z.string().min(1),
    cpus: z.coerce.number().positive(),
    pidsLimit: int(8),
    workspaceSizeMb: int(1),
    tmpSizeMb: int(1),
    maxOutputFiles: int(0),
    maxOutputBytes: int(0),
    stageAttempts: int(1, 50),
    stageBackoffMs: int(1),
    jobLockMs: int(1000),
    codeCacheBytes: int(0),
    callbackAttempts: int(1, 50),
    callbackBackoffMs: int(1),
    stdoutCapBytes: int(1024),
    stderrCapBytes: int(1024),
    shutdownGraceMs: int(0),
  }),
  /** Warm containers: one function version's containers are reused for its next runs. */
  warm: z.object({
    perFunction: int(0),
    maxContainers: int(0),
    idleTtlMs: int(0),
  }),
  /** What an uploaded ZIP may hold; checked at POST /upload and again by fetch-code. */
  packages: z.object({
    maxEntries: int(1),
    maxUncompressedBytes: int(1),
    maxCompressionRatio: z.coerce.number().min(1),
  }),
});

export type Config = z.infer<typeof configSchema>;
