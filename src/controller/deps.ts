import type { Logger } from '../log.ts';
import type { Config } from '../config/schema.ts';
import type { FunctionStore } from '../catalogue/functions.ts';
import type { CodeStore } from '../storage/ports.ts';
import type { RunQueue } from '../queue/sqs.ts';
import type { ResultBus } from '../bus/resultBus.ts';
import type { RunStateStore } from '../bus/runState.ts';
import type { IdempotencyStore } from '../bus/idempotency.ts';
import type { PackageLimits } from '../packages/inspect.ts';

/** Everything the HTTP routes need; built by controller/main.ts from config. */
export interface ControllerDeps {
  log: Logger;
  limits: Pick<Config['controller'], 'waitBudgetMs' | 'maxUploadBytes' | 'publicUrl'> & Config['runs'];
  /** What an uploaded ZIP may hold (config `packages`); the worker re-checks with its own copy. */
  packageLimits: PackageLimits;
  codeBucket: string;
  functions: FunctionStore;
  codeStore: CodeStore;
  queue: RunQueue;
  bus: ResultBus;
  runState: RunStateStore;
  idempotency: IdempotencyStore;
  /** Named readiness checks: each resolves when its dependency answers. */
  checks: Record<string, () => Promise<void>>;
}
