import mime from 'mime-types';

/** Content-Type from a file name; compound endings first, unknown → application/octet-stream. */
export function contentTypeFor(fileName: string): string {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.tar.gz') || lower.endsWith('.tgz')) return 'application/gzip';
  const type = mime.lookup(lower);
  if (!type) return 'application/octet-stream';
  return type.startsWith('text/') || type === 'application/json' ? `${type}; charset=utf-8` : type;
}
