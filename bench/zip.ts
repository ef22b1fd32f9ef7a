import { writeZip } from '../src/cli/zipWriter.ts';
import { DEFAULT_PACKAGE_LIMITS } from '../src/packages/inspect.ts';

/** A function package from file name → source, made by the CLI's own ZIP writer. */
export function storedZip(files: Record<string, string>): Buffer {
  const mtime = new Date();
  return writeZip(
    Object.entries(files).map(([name, source]) => ({ name, data: Buffer.from(source), mode: 0o644, mtime })),
    { maxCompressionRatio: DEFAULT_PACKAGE_LIMITS.maxCompressionRatio },
  );
}
