import { Consumer } from 'sqs-consumer';
import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { parseRunMessage, type RunMessage } from '../contracts/runMessage.ts';
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
  /** Runs this worker takes on at once; polling pauses while that many are in flight. */
  concurrency: number;
  visibilityTimeoutSeconds: number;
  workerId: string;
  /** Readies a warm container for a message that asks for it (best effort: failures are only logged). */
  prewarm(message: RunMessage): Promise<boolean>;
}

export interface Ingress {
  start(): void;
  /** Stops polling; resolves when the runs in flight have their results (or the wait is over). */
  stop(timeoutMs: number): Promise<void>;
  readonly inFlight: number;
}

/** Extra wait past the run's own time limit before a message is left to SQS to deliver again. */
const SETTLE_SLACK_MS = 120_000;
/** How often runs in flight are checked on the stream, in case another worker published them. */
const RECHECK_MS = 2000;
const DELETE_BATCH_DELAY_MS = 10;

interface Tracked {
  receipts: Set<string>;
  deadline: number;
  log: Logger;
}

/**
 * SQS → BullMQ. One consumer receives in batches and hands each run to the pipeline
 * (jobId = requestId); the message stays in flight, its visibility extended by a heartbeat, and
 * is deleted only once the run's result is on the stream — so a worker that dies mid-run leaves
 * the message to be delivered again. The poll loop never waits for a run, so a slow run holds up
 * nothing, and polling pauses while `concurrency` runs are in flight.
 */
export function createIngress(deps: IngressDeps): Ingress {
  const tracked = new Map<string, Tracked>();
  const pendingDeletes: string[] = [];
  let deleteTimer: NodeJS.Timeout | null = null;
  let stopping = false;
  let roomWaiters: (() => void)[] = [];

  function flushDeletes(): Promise<unknown> {
    deleteTimer = null;
    const sends: Promise<unknown>[] = [];
    while (pendingDeletes.length > 0) {
      const Entries = pendingDeletes.splice(0, 10).map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle }));
      sends.push(
        deps.sqs
          .send(new DeleteMessageBatchCommand({ QueueUrl: deps.queueUrl, Entries }))
          .catch((err: Error) => deps.log.warn({ err: err.message }, 'could not delete finished messages; SQS will deliver them again and they will be recognised as finished')),
      );
    }
    return Promise.all(sends);
  }

  function deleteLater(receipt: string): void {
    pendingDeletes.push(receipt);
    if (pendingDeletes.length >= 10) void flushDeletes();
    else deleteTimer ??= setTimeout(() => void flushDeletes(), DELETE_BATCH_DELAY_MS);
  }

  function settle(requestId: string, found: boolean): void {
    const t = tracked.get(requestId);
    if (!t) return;
    tracked.delete(requestId);
    // We MUST delete the message only now that the result is on the stream.
    if (found) for (const receipt of t.receipts) deleteLater(receipt);
    else t.log.warn('no result in time; leaving the message to SQS to deliver again');
    const waiters = roomWaiters;
    roomWaiters = [];
    for (const wake of waiters) wake();
  }

  deps.pipeline.onPublished((requestId) => settle(requestId, true));

  const recheck = setInterval(() => {
    const now = Date.now();
    for (const [requestId, t] of tracked) {
      if (now > t.deadline) settle(requestId, false);
      else void deps.bus.peek(requestId).then((r) => r && settle(requestId, true), () => undefined);
    }
  }, RECHECK_MS);

  const heartbeat = setInterval(() => {
    const receipts = [...tracked.values()].flatMap((t) => [...t.receipts]);
    for (let i = 0; i < receipts.length; i += 10) {
      const Entries = receipts.slice(i, i + 10).map((ReceiptHandle, n) => ({ Id: String(n), ReceiptHandle, VisibilityTimeout: deps.visibilityTimeoutSeconds }));
      deps.sqs.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: deps.queueUrl, Entries })).catch((err: Error) => deps.log.warn({ err: err.message }, 'could not extend the visibility of runs in flight'));
    }
  }, Math.max(1000, (deps.visibilityTimeoutSeconds * 1000) / 3));

  async function handleMessage(raw: Message): Promise<Message | undefined> {
    let message: RunMessage;
    try {
      message = parseRunMessage(raw.Body ?? '');
    } catch (err) {
      return poison(raw, err);
    }
    const log = deps.log.child({ requestId: message.requestId, functionId: message.functionId });
    if (message.prewarm) {
      // Best effort and not a run: nothing to wait for, so the message goes at once.
      void deps.prewarm(message).then(
        (added) => log.info({ version: message.version, added }, 'container pre-warmed'),
        (err: Error) => log.warn({ err: err.message }, 'pre-warm failed'),
      );
      return raw;
    }
    const known = tracked.get(message.requestId);
    if (known) {
      // The same run delivered again while it runs: one run, and both messages go when it ends.
      if (raw.ReceiptHandle) known.receipts.add(raw.ReceiptHandle);
      log.info({ messageId: raw.MessageId }, 'duplicate delivery of a run in flight');
      return undefined;
    }
    if (await deps.bus.peek(message.requestId)) {
      log.info({ messageId: raw.MessageId }, 'duplicate delivery of a finished run; deleting the message');
      return raw;
    }
    tracked.set(message.requestId, { receipts: new Set(raw.ReceiptHandle ? [raw.ReceiptHandle] : []), deadline: Date.now() + message.timeoutMs + SETTLE_SLACK_MS, log });
    try {
      await deps.pipeline.enqueue(message);
    } catch (err) {
      tracked.delete(message.requestId);
      throw err;
    }
    log.info({ stage: 'ingress', messageId: raw.MessageId }, 'run accepted');
    return undefined;
  }

  /** A message we cannot run: answer with ERROR when it names a request, else dead-letter it. */
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

  const consumer = Consumer.create({
    queueUrl: deps.queueUrl,
    sqs: deps.sqs,
    batchSize: Math.min(10, deps.concurrency),
    waitTimeSeconds: 2,
    visibilityTimeout: deps.visibilityTimeoutSeconds,
    handleMessage,
    // Backpressure: no new messages while this worker has its fill of runs in flight.
    preReceiveMessageCallback: async () => {
      while (tracked.size >= deps.concurrency && !stopping) await new Promise<void>((resolve) => roomWaiters.push(resolve));
    },
  });
  consumer.on('error', (err) => {
    if (!stopping) deps.log.error({ err }, 'sqs consumer error');
  });
  consumer.on('processing_error', (err) => deps.log.error({ err }, 'sqs message processing error'));

  return {
    start() {
      consumer.start();
    },
    async stop(timeoutMs) {
      stopping = true;
      consumer.stop({ abort: true });
      for (const wake of roomWaiters) wake();
      const deadline = Date.now() + timeoutMs;
      while (tracked.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      clearInterval(recheck);
      clearInterval(heartbeat);
      if (deleteTimer) clearTimeout(deleteTimer);
      await flushDeletes();
    },
    get inFlight() {
      return tracked.size;
    },
  };
}
