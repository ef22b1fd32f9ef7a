import type { Logger } from '../../log.ts';

/** What every stage gets besides its ports: a logger scoped to the run, and a cancel signal. */
export interface StageContext {
  log: Logger;
  signal: AbortSignal;
}
