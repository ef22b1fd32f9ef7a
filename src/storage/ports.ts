import type { Readable } from 'node:stream';

/** Function code objects. `get` returns null when the object does not exist. */
export interface CodeStore {
  put(key: string, body: Buffer, sha256: string): Promise<void>;
  get(key: string, bucket?: string): Promise<Buffer | null>;
  delete(key: string): Promise<void>;
  ping(): Promise<void>;
}

/** Files a run wrote. `put` stores one file and returns the URL a plain HTTP GET downloads. */
export interface OutputStore {
  put(requestId: string, relativePath: string, body: Readable | Buffer, contentType: string, sizeBytes: number): Promise<string>;
  ping(): Promise<void>;
}
