import { pino } from 'pino';
import { Writable } from 'node:stream';

/** A logger that keeps its lines, for tests that check what was logged. */
export function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: "debug", timestamp: pino.stdTimeFunctions.epochTime }, sink), lines };
}

export const silentLogger = pino({ level: 'silent' });
