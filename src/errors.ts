/**
 * The HTTP-facing error: a status, a stable machine code, and a message that says what was wrong
 * and how to fix it. The controller's error middleware turns it into `{ error: { code, message } }`.
 */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function isHttpError(err: unknown): err is HttpError {
  return err instanceof HttpError || (err instanceof Error && err.name === 'HttpError');
}

/**
 * A platform failure that will not go away on retry (code missing, bad package in the bucket,
 * image missing). The worker publishes an ERROR result at once instead of retrying.
 */
export class PermanentRunError extends Error {
  override name = 'PermanentRunError';
}

export function isPermanent(err: unknown): boolean {
  return err instanceof PermanentRunError || (err instanceof Error && ['PermanentRunError', 'PackageError', 'UnrecoverableError'].includes(err.name));
}
