import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { RunResult } from '../../src/contracts/result.ts';
import { startTestStack, upload, run, type TestStack } from './helpers.ts';

interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

/** Reads a whole server-sent event stream into its events. */
async function readEvents(url: string): Promise<SseEvent[]> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('event:'))
    .map((block) => {
      const [eventLine, dataLine] = block.split('\n');
      return { event: (eventLine ?? '').slice('event: '.length), data: JSON.parse((dataLine ?? '').slice('data: '.length)) as Record<string, unknown> };
    });
}

describe('async runs, look-up, events and idempotency', () => {
  let stack: TestStack;
  let slow: string;
  before(async () => {
    stack = await startTestStack({ NANOGRID_RESULTS_TTL_SECONDS: '4' });
    slow = (await upload(stack.url, { 'main.py': 'import time\ntime.sleep(1)\nprint("slow done")\n' })).body.functionId;
  });
  after(async () => stack.dispose());

  it('streams stage changes, then the result, as server-sent events', async () => {
    const res = await run(stack.url, { functionId: slow, async: true });
    const events = await readEvents(`${stack.url}/runs/${res.body.requestId}/events`);
    const last = events[events.length - 1];
    assert.equal(last?.event, 'result');
    assert.equal(last?.data.stdout, 'slow done\n');
    const states = events.filter((e) => e.event === 'state');
    assert.ok(states.length >= 1);
    assert.ok(states.some((e) => e.data.status === 'RUNNING' && e.data.stage === 'execute'), JSON.stringify(states));
  });

  it('shows RUNNING with the stage on GET /runs/{id} while the code runs, then the result', async () => {
    const res = await run(stack.url, { functionId: slow, async: true });
    const seen: string[] = [];
    const deadline = Date.now() + 20_000;
    let body: { status: string; stage?: string; stdout?: string } = { status: 'QUEUED' };
    while (!['SUCCESS', 'FAILED', 'ERROR'].includes(body.status) && Date.now() < deadline) {
      body = (await (await fetch(`${stack.url}/runs/${res.body.requestId}`)).json()) as typeof body;
      seen.push(body.stage ? `${body.status}:${body.stage}` : body.status);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(seen.includes('RUNNING:execute'), seen.join(' '));
    assert.equal(body.status, 'SUCCESS');
    assert.equal(body.stdout, 'slow done\n');
  });

  it('answers a repeated Idempotency-Key with the earlier run instead of running again', async () => {
    const key = `order-${Date.now()}`;
    const post = () =>
      fetch(`${stack.url}/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ functionId: slow, async: true }),
      });
    const first = await post();
    const firstBody = (await first.json()) as { requestId: string };
    const second = await post();
    const secondBody = (await second.json()) as { requestId: string };
    assert.equal(second.status, 202);
    assert.equal(second.headers.get('idempotent-replayed'), 'true');
    assert.equal(secondBody.requestId, firstBody.requestId);
    const events = await readEvents(`${stack.url}/runs/${firstBody.requestId}/events`);
    assert.equal(events.at(-1)?.data.status, 'SUCCESS');
    const third = await post();
    assert.equal(third.status, 200, 'once finished, the replay answers with the result');
    assert.equal(((await third.json()) as RunResult).requestId, firstBody.requestId);
    const queued = stack.lines.filter((l) => l.msg === 'run queued' && l.functionId === slow && l.requestId === firstBody.requestId);
    assert.equal(queued.length, 1, 'queued once');
  });

  it('refuses a malformed async flag and an oversized Idempotency-Key, queueing nothing', async () => {
    const before = stack.lines.filter((l) => l.msg === 'run queued').length;
    const badAsync = await run(stack.url, { functionId: slow, async: 'yes' });
    assert.equal(badAsync.status, 400);
    assert.equal(badAsync.body.error?.code, 'INVALID_ASYNC');
    const longKey = await fetch(`${stack.url}/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'k'.repeat(300) },
      body: JSON.stringify({ functionId: slow }),
    });
    assert.equal(longKey.status, 400);
    assert.equal(((await longKey.json()) as { error: { code: string } }).error.code, 'INVALID_IDEMPOTENCY_KEY');
    assert.equal(stack.lines.filter((l) => l.msg === 'run queued').length, before);
  });

  it('answers 202 with a Location when a sync run outlives the wait budget', async () => {
    const budgetStack = await startTestStack({ NANOGRID_CONTROLLER_WAIT_BUDGET_MS: '300' });
    try {
      const { body: fn } = await upload(budgetStack.url, { 'main.py': 'import time\ntime.sleep(1.5)\nprint("late")\n' });
      const res = await run(budgetStack.url, { functionId: fn.functionId });
      assert.equal(res.status, 202);
      assert.equal(res.body.status, 'PENDING');
      assert.equal(res.location, `/runs/${res.body.requestId}`);
      const events = await readEvents(`${budgetStack.url}${res.location}/events`);
      assert.equal(events.at(-1)?.data.stdout, 'late\n');
    } finally {
      await budgetStack.dispose();
    }
  });

  it('forgets a result after its TTL: 404 that says it may have expired', async () => {
    const res = await run(stack.url, { functionId: slow });
    assert.equal(res.body.status, 'SUCCESS');
    const deadline = Date.now() + 15_000;
    let status = 200;
    let body: { error?: { message: string } } = {};
    while (status === 200 && Date.now() < deadline) {
      const got = await fetch(`${stack.url}/runs/${res.body.requestId}`);
      status = got.status;
      body = (await got.json()) as typeof body;
      if (status === 200) await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(status, 404);
    assert.match(body.error?.message ?? '', /expired/);
  });
});
