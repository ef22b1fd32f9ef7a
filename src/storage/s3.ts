import {
  S3Client,
  GetObjectCommand,
  PutObjectCommand,
  DeleteObjectCommand,
  HeadBucketCommand,
  CreateBucketCommand,
  NoSuchKey,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Readable } from 'node:stream';
import type { CodeStore, OutputStore } from './ports.ts';

export interface AwsConnection {
  region: string;
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
}

export function createS3Client(aws: AwsConnection): S3Client {
  const options: S3ClientConfig = {
    region: aws.region,
    forcePathStyle: aws.forcePathStyle,
    // Default flexible checksums trip S3-compatible servers; AWS accepts either.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  if (aws.endpoint) options.endpoint = aws.endpoint;
  if (aws.accessKeyId) options.credentials = { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey };
  return new S3Client(options);
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err instanceof NoSuchKey || e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

export function fromS3Code(client: S3Client, config: { codeBucket: string }): CodeStore {
  const bucket = config.codeBucket;
  return {
    async put(key, body, sha256) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/zip', Metadata: { sha256 } }));
    },
    async get(key, fromBucket = bucket) {
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: fromBucket, Key: key }));
        if (!res.Body) return null;
        return Buffer.from(await res.Body.transformToByteArray());
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    },
    async delete(key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
    async ping() {
      await client.send(new HeadBucketCommand({ Bucket: bucket }));
    },
  };
}

export function fromS3Outputs(client: S3Client, config: { userDataBucket: string; outputPrefix: string; outputUrlExpirySeconds: number }): OutputStore {
  const bucket = config.userDataBucket;
  return {
    async put(requestId, relativePath, body, contentType) {
      const key = `${config.outputPrefix}/${requestId}/${relativePath}`;
      // lib-storage streams large files in parts instead of buffering them whole.
      await new Upload({ client, params: { Bucket: bucket, Key: key, Body: body as Readable | Buffer, ContentType: contentType } }).done();
      return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: config.outputUrlExpirySeconds });
    },
    async ping() {
      await client.send(new HeadBucketCommand({ Bucket: bucket }));
    },
  };
}

/** Creates the buckets when missing (local stacks; in AWS they are provisioned beforehand). */
export async function ensureBuckets(client: S3Client, buckets: string[]): Promise<void> {
  for (const Bucket of buckets) {
    try {
      await client.send(new HeadBucketCommand({ Bucket }));
    } catch {
      await client.send(new CreateBucketCommand({ Bucket }));
    }
  }
}
