import { pino, type Logger } from 'pino';

export type { Logger };

/** Root logger: JSON lines on stdout. Child loggers carry requestId/functionId. */
export function createLogger(level: string, name: string): Logger {
  return pino({ level, name, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
