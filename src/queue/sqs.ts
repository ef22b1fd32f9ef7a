import { SQSClient, SendMessageCommand, GetQueueUrlCommand, CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { RunMessage } from '../contracts/runMessage.ts';
import type { AwsConnection } from '../storage/s3.ts';

/** The controller's side of the run queue. */
export interface RunQueue {
  send(message: RunMessage): Promise<void>;
  ping(): Promise<void>;
}

export function createSqsClient(aws: AwsConnection & { sqsEndpoint: string }): SQSClient {
  const endpoint = aws.sqsEndpoint || aws.endpoint;
  return new SQSClient({
    region: aws.region,
    ...(endpoint ? { endpoint } : {}),
    ...(aws.accessKeyId ? { credentials: { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey } } : {}),
  });
}

/** The queue URL: configured, or looked up by name (and created when `create` is set: local stacks). */
export async function resolveQueueUrl(client: SQSClient, config: { name: string; url: string; visibilityTimeoutSeconds: number }, create = false): Promise<string> {
  if (config.url) return config.url;
  if (create) {
    const res = await client.send(new CreateQueueCommand({ QueueName: config.name, Attributes: { VisibilityTimeout: String(config.visibilityTimeoutSeconds) } }));
    if (res.QueueUrl) return res.QueueUrl;
  }
  const res = await client.send(new GetQueueUrlCommand({ QueueName: config.name }));
  if (!res.QueueUrl) throw new Error(`SQS queue ${config.name} not found`);
  return res.QueueUrl;
}

export function fromSqs(client: SQSClient, queueUrl: string): RunQueue {
  return {
    async send(message) {
      await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(message) }));
    },
    async ping() {
      await client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
    },
  };
}

/** Where messages go that can be neither run nor answered (no request id to answer to). */
export interface DeadLetters {
  send(body: string, reason: string): Promise<void>;
}

export function fromSqsDeadLetters(client: SQSClient, queueUrl: string): DeadLetters {
  return {
    async send(body, reason) {
      await client.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: body || '(empty body)',
          MessageAttributes: { reason: { DataType: 'String', StringValue: reason.slice(0, 1000) } },
        }),
      );
    },
  };
}
