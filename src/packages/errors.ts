/** Why the platform refuses an uploaded function package. Stable: clients and tests match on these. */
export type PackageErrorCode =
  | 'NOT_A_ZIP'
  | 'EMPTY_ARCHIVE'
  | 'UNSAFE_PATH'
  | 'LINK_ENTRY'
  | 'SPECIAL_ENTRY'
  | 'TOO_MANY_ENTRIES'
  | 'TOO_LARGE'
  | 'ZIP_BOMB'
  | 'ENCRYPTED'
  | 'UNSUPPORTED_COMPRESSION'
  | 'MISSING_ENTRYPOINT'
  | 'DUPLICATE_ENTRY'
  | 'CORRUPT_ENTRY';

/** Error for a package the platform refuses; `code` is stable and machine-readable, `message` names the problem AND the fix. */
export class PackageError extends Error {
  override name = 'PackageError';

  constructor(
    readonly code: PackageErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The fix we suggest most often: build the archive from inside the function folder. */
export const ZIP_COMMAND = '`zip -r function.zip .`';

/** Quotes an entry name for a message; JSON escaping makes NUL, newlines and other controls visible. */
export function showName(name: string): string {
  return JSON.stringify(name);
}
