import type { Readable } from 'node:stream';
import type { CodeStore, OutputStore } from '../../src/storage/ports.ts';

/** In-memory CodeStore; passes the same contract suite as the S3 adapter. */
export function memoryCodeStore(): CodeStore & { objects: Map<string, Buffer> } {
  const objects = new Map<string, Buffer>();
  return {
    objects,
    async put(key, body) {
      objects.set(key, Buffer.from(body));
    },
    async get(key, bucket) {
      return objects.get(bucket ? `${bucket}/${key}` : key) ?? objects.get(key) ?? null;
    },
    async delete(key) {
      objects.delete(key);
    },
    async ping() {},
  };
}

/** In-memory OutputStore: keeps bytes and Content-Type; URLs are memory://outputs/{id}/{path}. */
export function memoryOutputStore(): OutputStore & { files: Map<string, { body: Buffer; contentType: string }> } {
  const files = new Map<string, { body: Buffer; contentType: string }>();
  return {
    files,
    async put(requestId, relativePath, body, contentType) {
      let bytes: Buffer;
      if (Buffer.isBuffer(body)) bytes = body;
      else {
        const chunks: Buffer[] = [];
        for await (const c of body as Readable) chunks.push(c as Buffer);
        bytes = Buffer.concat(chunks);
      }
      const url = `memory://outputs/${requestId}/${relativePath}`;
      files.set(url, { body: bytes, contentType });
      return url;
    },
    async ping() {},
  };
}
