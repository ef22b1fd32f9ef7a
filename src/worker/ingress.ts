import { Consumer } from 'sqs-consumer';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { runMessageSchema, type RunMessage } from '../contracts/runMessage.ts';
import { errorResult } from '../contracts/result.ts';
import type { ResultBus } from '../bus/resultBus.ts';
import type { Logger } from '../log.ts';
import type { Pipeline } from './pipeline.ts';
import type { DeadLetters } from '../queue/sqs.ts';

export interface IngressDeps {
  sqs: SQSClient;
  queueUrl: string;
  pipeline: Pipeline;
  bus: ResultBus;
  deadLetters: DeadLetters;
  log: Logger;
  /** Messages handled at once: one consumer each, so one slow run never holds up a batch. */
  concurrency: number;
  visibilityTimeoutSeconds: number;
  workerId: string;
}

export interface Ingress {
  start(): void;
  /** Stops polling; resolves when the messages in flight have been handled. */
  stop(timeoutMs: number): Promise<void>;
  readonly inFlight: number;
}

/** Extra wait past the run's own time limit before the handler gives the message back to SQS. */
const HANDLER_SLACK_MS = 120_000;

/**
 * sqs-consumer → BullMQ. A message is handed to the pipeline (jobId = requestId), then the handler
 * waits for the result to be on the stream: we MUST delete the SQS message only after that, so a
 * worker that dies mid-run leaves the message to be delivered again.
 */
export function createIngress(deps: IngressDeps): Ingress {
  let inFlight = 0;

  async function handleMessage(raw: Message): Promise<Message | undefined> {
    let message: RunMessage;
    try {
      message = runMessageSchema.parse(JSON.parse(raw.Body ?? '')) as RunMessage;
    } catch (err) {
      return poison(raw, err);
    }
    const log = deps.log.child({ requestId: message.requestId, functionId: message.functionId });
    inFlight++;
    try {
      if (await deps.bus.peek(message.requestId)) {
        log.info({ messageId: raw.MessageId }, 'duplicate delivery of a finished run; deleting the message');
        return raw;
      }
      await deps.pipeline.enqueue(message);
      log.info({ stage: 'ingress', messageId: raw.MessageId }, 'run accepted');
      const result = await deps.bus.read(message.requestId, message.timeoutMs + HANDLER_SLACK_MS);
      if (!result) {
        log.warn('no result in time; leaving the message for redelivery');
        return undefined;
      }
      return raw;
    } finally {
      inFlight--;
    }
  }

  /** A message we cannot run: answer with ERROR when it names a request, drop it either way. */
  async function poison(raw: Message, err: unknown): Promise<Message> {
    const reason = err instanceof Error ? err.message : String(err);
    let requestId: unknown;
    let functionId: unknown;
    try {
      ({ requestId, functionId } = JSON.parse(raw.Body ?? '') as { requestId?: unknown; functionId?: unknown });
    } catch {
      // not JSON at all
    }
    if (typeof requestId === 'string' && requestId) {
      const result = errorResult({ requestId, functionId: typeof functionId === 'string' ? functionId : '' }, `the run message is invalid: ${reason.slice(0, 500)}`);
      await deps.bus.publish({ ...result, workerId: deps.workerId });
      deps.log.error({ messageId: raw.MessageId, requestId, reason: reason.slice(0, 500) }, 'invalid run message answered with ERROR');
    } else {
      // Nobody to answer: keep it where an operator can look, instead of retrying it forever.
      await deps.deadLetters.send(raw.Body ?? '', reason);
      deps.log.error({ messageId: raw.MessageId, reason: reason.slice(0, 500) }, 'poison message moved to the dead-letter queue');
    }
    return raw;
  }

  const consumers = Array.from({ length: deps.concurrency }, () =>
    Consumer.create({
      queueUrl: deps.queueUrl,
      sqs: deps.sqs,
      batchSize: 1,
      waitTimeSeconds: 2,
      visibilityTimeout: deps.visibilityTimeoutSeconds,
      heartbeatInterval: Math.max(1, Math.floor(deps.visibilityTimeoutSeconds / 3)),
      handleMessage,
    }),
  );
  for (const consumer of consumers) {
    consumer.on('error', (err) => deps.log.error({ err }, 'sqs consumer error'));
    consumer.on('processing_error', (err) => deps.log.error({ err }, 'sqs message processing error'));
  }

  return {
    start() {
      for (const c of consumers) c.start();
    },
    async stop(timeoutMs) {
      for (const c of consumers) c.stop({ abort: true });
      const deadline = Date.now() + timeoutMs;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    },
    get inFlight() {
      return inFlight;
    },
  };
}
