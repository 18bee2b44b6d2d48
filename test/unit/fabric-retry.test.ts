import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  withRetry, fibonacciFactor, exponentialBackoff, ResourceGoneError, InvalidContainerError, HttpStatusError,
  RetryBudgetError, isSuccess, type Clock,
} from '../../src/core/retry';
import { HttpIoError, type HttpResponse } from '../../src/core/http';

/** A fake clock: sleeps advance time instantly and are recorded. */
function fakeClock(random = 1): Clock & { sleeps: number[]; t: number } {
  const c = {
    t: 0, sleeps: [] as number[],
    now: () => c.t,
    random: () => random,
    sleep: async (ms: number) => { c.sleeps.push(ms); c.t += ms; },
  };
  return c;
}
const res = (status: number, body = '', headers: Record<string, string> = {}): HttpResponse => ({ status, headers, body: Buffer.from(body) });
function script(...answers: (HttpResponse | Error)[]): { send: () => Promise<HttpResponse>; calls: () => number } {
  let i = 0;
  return {
    send: async () => { const a = answers[Math.min(i++, answers.length - 1)]; if (a instanceof Error) throw a; return a; },
    calls: () => i,
  };
}

test('Fibonacci factors and D6 exponential backoff', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(fibonacciFactor), [2, 3, 5, 8, 13, 21]);
  assert.deepEqual([1, 2, 3, 8, 9, 20].map((a) => exponentialBackoff(a, () => 0.9999999)), [2000, 4000, 8000, 256000, 300000, 300000]);
  assert.equal(exponentialBackoff(1, () => 0), 1000, 'jitter floor is 50 %');
  assert.ok(isSuccess(200) && isSuccess(201) && isSuccess(202) && !isSuccess(204) && !isSuccess(404));
});

test('retryable statuses and I/O errors are retried with Fibonacci sleeps (capped at 60 s)', async () => {
  const clock = fakeClock();
  const s = script(res(500), new HttpIoError('reset', 'ECONNRESET'), res(502), res(504), res(200, 'ok'));
  const r = await withRetry(s.send, { what: 't', clock, retryDelayMs: 1000 });
  assert.equal(r.status, 200);
  assert.equal(s.calls(), 5);
  assert.deepEqual(clock.sleeps, [2000, 3000, 5000, 8000]);
  const c2 = fakeClock();
  await assert.rejects(withRetry(script(res(500)).send, { what: 't', clock: c2, retryDelayMs: 10_000, maxAttempts: 4 }), HttpStatusError);
  assert.deepEqual(c2.sleeps, [20_000, 30_000, 50_000]);
  const c3 = fakeClock();
  await withRetry(script(res(500), res(500), res(500), res(500), res(500), res(200)).send, { what: 't', clock: c3, retryDelayMs: 10_000 });
  assert.equal(Math.max(...c3.sleeps), 60_000, 'capped');
});

test('jitter takes the sleep down to at most 75 %', async () => {
  const clock = fakeClock(0);
  await withRetry(script(res(500), res(200)).send, { what: 't', clock });
  assert.deepEqual(clock.sleeps, [1500]);
});

test('throttling raises the attempts to 25 and honours Retry-After', async () => {
  const clock = fakeClock();
  const s = script(...Array.from({ length: 10 }, () => res(429)), res(503, '', { 'retry-after': '7' }), res(200));
  const r = await withRetry(s.send, { what: 't', clock });
  assert.equal(r.status, 200);
  assert.equal(s.calls(), 12, 'beyond the default 6 attempts');
  assert.equal(clock.sleeps[0], 1000);
  assert.equal(clock.sleeps[10], 7000);
  const c2 = fakeClock();
  const s2 = script(res(403));
  await assert.rejects(withRetry(s2.send, { what: 't', clock: c2 }), HttpStatusError);
  assert.equal(s2.calls(), 25);
  const s3 = script(res(503));
  await assert.rejects(withRetry(s3.send, { what: 'telemetry', clock: fakeClock(), maxAttempts: 3, noThrottleRaise: true }), HttpStatusError);
  assert.equal(s3.calls(), 3);
});

test('410 → ResourceGoneError and 400 InvalidContainerConfiguration → InvalidContainerError, at once', async () => {
  const s = script(res(410));
  await assert.rejects(withRetry(s.send, { what: 'gs', clock: fakeClock() }), ResourceGoneError);
  assert.equal(s.calls(), 1);
  const s2 = script(res(400, '<Error><Code>InvalidContainerConfiguration</Code></Error>'));
  await assert.rejects(withRetry(s2.send, { what: 'gs', clock: fakeClock() }), InvalidContainerError);
  assert.equal(s2.calls(), 1);
  const r = await withRetry(script(res(400, 'other'), res(200)).send, { what: 'gs', clock: fakeClock() });
  assert.equal(r.status, 400, 'a plain 400 goes back to the caller');
  const r404 = await withRetry(script(res(404), res(200)).send, { what: 'gs', clock: fakeClock() });
  assert.equal(r404.status, 404);
});

test('exhausted I/O errors rethrow the last error; the wall-clock budget stops early', async () => {
  await assert.rejects(withRetry(script(new HttpIoError('refused', 'ECONNREFUSED')).send, { what: 't', clock: fakeClock() }), HttpIoError);
  const clock = fakeClock();
  const s = script(res(500));
  await assert.rejects(withRetry(s.send, { what: 't', clock, budgetMs: 6000 }), RetryBudgetError);
  assert.deepEqual(clock.sleeps, [2000, 3000]);
  assert.equal(s.calls(), 3);
});

test('an aborted signal stops the retry loop', async () => {
  const ac = new AbortController();
  const clock = fakeClock();
  clock.sleep = async () => { ac.abort(); };
  await assert.rejects(withRetry(script(res(500)).send, { what: 't', clock, signal: ac.signal }), { name: 'AbortError' });
});
