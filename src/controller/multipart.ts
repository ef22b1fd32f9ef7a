import busboy from 'busboy';
import type { IncomingMessage } from 'node:http';
import { HttpError } from '../errors.ts';

export interface MultipartForm {
  fields: Record<string, string>;
  file: { fieldName: string; fileName: string; data: Buffer } | null;
}

/** Reads a multipart/form-data body with one file; refuses (413) as soon as it passes maxBytes. */
export function readMultipart(req: IncomingMessage, maxBytes: number): Promise<MultipartForm> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('multipart/form-data')) {
    return Promise.reject(new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the upload as multipart/form-data with the ZIP in a field named "file", e.g. curl -F file=@function.zip -F runtime=python'));
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes + 64 * 1024) {
    return Promise.reject(new HttpError(413, 'PAYLOAD_TOO_LARGE', `the upload is ${declared} bytes; the limit is ${maxBytes} bytes`));
  }
  return new Promise((resolve, reject) => {
    const fields: Record<string, string> = {};
    let file: MultipartForm['file'] = null;
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      req.unpipe(parser);
      req.resume(); // drain the rest so the client gets our answer
      reject(err);
    };
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { fileSize: maxBytes, files: 1, fields: 20, fieldSize: 64 * 1024 } });
    } catch (err) {
      reject(new HttpError(400, 'BAD_MULTIPART', `the multipart body could not be read: ${(err as Error).message}`));
      return;
    }
    parser.on('field', (name, value) => (fields[name] = value));
    parser.on('file', (fieldName, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => fail(new HttpError(413, 'PAYLOAD_TOO_LARGE', `the file is larger than the limit of ${maxBytes} bytes`)));
      stream.on('end', () => {
        if (fieldName === 'file') file = { fieldName, fileName: info.filename ?? 'function.zip', data: Buffer.concat(chunks) };
      });
    });
    parser.on('filesLimit', () => fail(new HttpError(400, 'TOO_MANY_FILES', 'send exactly one file, in the field "file"')));
    parser.on('error', (err: Error) => fail(new HttpError(400, 'BAD_MULTIPART', `the multipart body could not be read: ${err.message}`)));
    parser.on('close', () => {
      if (!failed) resolve({ fields, file });
    });
    req.pipe(parser);
  });
}

/** Reads a JSON body up to maxBytes; malformed JSON is a 400 that says so. */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `the request body is larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) throw new HttpError(400, 'EMPTY_BODY', 'the request body is empty; send JSON like {"functionId":"…","inputData":{}}');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'MALFORMED_JSON', `the request body is not valid JSON (${(err as Error).message}); send JSON like {"functionId":"…","inputData":{}}`);
  }
}
