/**
 * Request-level retry and backoff (fabric-protocol.md §5.1): status classification, Fibonacci backoff capped at 60 s
 * with jitter, throttling (403/429/503 → at least 25 attempts, Retry-After honoured), 410 → `ResourceGoneError`,
 * 400 + `InvalidContainerConfiguration` → `InvalidContainerError`, and a wall-clock budget per operation. Sleep, clock
 * and randomness are injectable so tests run fast. Also the capped exponential backoff of DECISIONS.md D6.
 */
import type { HttpResponse } from './http';

/** 410 Gone: the request referred to a goal state or container that is no longer current; refresh the goal state. */
export class ResourceGoneError extends Error {
  readonly status = 410;
  constructor(what: string) { super(`${what}: resource gone (HTTP 410)`); this.name = 'ResourceGoneError'; }
}
/** 400 with InvalidContainerConfiguration: the container id / config name are stale; refresh the goal state. */
export class InvalidContainerError extends Error {
  readonly status = 400;
  constructor(what: string) { super(`${what}: invalid container configuration (HTTP 400)`); this.name = 'InvalidContainerError'; }
}
/** The request ended with a non-success status after all attempts (or a status that is not retried). */
export class HttpStatusError extends Error {
  constructor(what: string, readonly status: number, readonly body: string) {
    super(`${what}: HTTP ${status}${body ? ` (${body.slice(0, 200).replace(/\s+/g, ' ')})` : ''}`);
    this.name = 'HttpStatusError';
  }
}
/** The wall-clock budget of the operation ran out before a success. */
export class RetryBudgetError extends Error {
  constructor(what: string, readonly last: unknown) {
    super(`${what}: gave up within its time budget; last error: ${last instanceof Error ? last.message : String(last)}`);
    this.name = 'RetryBudgetError';
  }
}

export const DEFAULT_RETRY_CODES: ReadonlySet<number> = new Set([205, 206, 403, 500, 501, 502, 503, 504, 507, 429]);
export const THROTTLE_CODES: ReadonlySet<number> = new Set([403, 429, 503]);
export const THROTTLE_MIN_ATTEMPTS = 25;
export const MAX_SLEEP_MS = 60_000;

/** 200, 201 and 202 are the fabric's success codes. */
export function isSuccess(status: number): boolean {
  return status === 200 || status === 201 || status === 202;
}

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Uniform in [0, 1). */
  random(): number;
}

function abortError(): Error {
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  return e;
}

/** Sleeps `ms`, or less when the signal aborts; never rejects (loops that check `signal.aborted` afterwards). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void { clearTimeout(t); signal.removeEventListener('abort', done); resolve(); }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Real time; `sleep` rejects with an AbortError when the signal fires. */
export const realClock: Clock = {
  now: () => Date.now(),
  random: () => Math.random(),
  sleep: (ms, signal) => new Promise<void>((resolve, reject) => {
    if (signal?.aborted) { reject(abortError()); return; }
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(t); reject(abortError()); };
    signal?.addEventListener('abort', onAbort, { once: true });
  }),
};

/** The k-th Fibonacci factor of §5.1: F(1)=2, F(2)=3, F(3)=5, ... */
export function fibonacciFactor(k: number): number {
  let a = 1; let b = 2;
  for (let i = 1; i < k; i++) [a, b] = [b, a + b];
  return b;
}

/** Applies jitter: a uniform draw between `lowFraction` and 100 % of `ms`. */
export function jittered(ms: number, random: () => number, lowFraction = 0.5): number {
  return Math.round(ms * (lowFraction + (1 - lowFraction) * random()));
}

/**
 * D6 backoff: the nominal sleep before retry `attempt` (1-based) starts at `baseMs` and doubles up to `capMs`, then
 * drawn uniformly between 50 % and 100 % of it.
 */
export function exponentialBackoff(attempt: number, random: () => number, baseMs = 2000, capMs = 300_000): number {
  const nominal = Math.min(capMs, baseMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return jittered(nominal, random);
}

/** Seconds of a Retry-After header (delta-seconds or an HTTP date), as ms; undefined when absent or unparsable. */
export function retryAfterMs(headers: HttpResponse['headers'], now: number): number | undefined {
  const v = headers['retry-after'];
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000;
  const t = Date.parse(s);
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
}

export interface RetryOptions {
  /** Names the operation in errors and logs. */
  what: string;
  /** Total attempts (default 6). */
  maxAttempts?: number;
  /** Base of the Fibonacci backoff (default 1 s). */
  retryDelayMs?: number;
  /** Sleep after a throttling answer (default 1 s; Retry-After wins when larger). */
  throttleDelayMs?: number;
  /** Statuses that are retried (default §5.1's list). */
  retryCodes?: ReadonlySet<number>;
  /** Do not raise the attempts on throttling (telemetry). */
  noThrottleRaise?: boolean;
  /** Cap of a single sleep (default 60 s). */
  maxSleepMs?: number;
  /** Wall-clock budget of the whole operation (default: unlimited). No sleep may end past it. */
  budgetMs?: number;
  clock?: Clock;
  signal?: AbortSignal;
  /** Errors thrown by `send` that are not retried but rethrown at once (e.g. disk full, a size limit). */
  giveUp?: (e: unknown) => boolean;
  /** Called before each sleep (for logging). */
  onRetry?: (attempt: number, delayMs: number, reason: string) => void;
}

/**
 * Runs `send` until it yields a response that is not retried, and returns that response: a success (200/201/202) or
 * another status the caller must judge (e.g. 404). Throws `ResourceGoneError` on 410, `InvalidContainerError` on 400
 * with `InvalidContainerConfiguration`, `HttpStatusError` when retryable statuses exhausted the attempts, the last
 * transport error when transport errors did, `RetryBudgetError` when the budget ran out, or an AbortError.
 */
export async function withRetry(send: () => Promise<HttpResponse>, opts: RetryOptions): Promise<HttpResponse> {
  const clock = opts.clock ?? realClock;
  const codes = opts.retryCodes ?? DEFAULT_RETRY_CODES;
  const retryDelay = opts.retryDelayMs ?? 1000;
  const throttleDelay = opts.throttleDelayMs ?? 1000;
  const maxSleep = opts.maxSleepMs ?? MAX_SLEEP_MS;
  const start = clock.now();
  let maxAttempts = opts.maxAttempts ?? 6;
  let throttled = false;
  let last: unknown;
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) throw abortError();
    let retryAfter: number | undefined;
    try {
      const res = await send();
      if (res.status === 410) throw new ResourceGoneError(opts.what);
      if (res.status === 400 && res.body.toString('utf8').includes('InvalidContainerConfiguration')) throw new InvalidContainerError(opts.what);
      if (!codes.has(res.status)) return res;
      last = new HttpStatusError(opts.what, res.status, res.body.toString('utf8'));
      if (THROTTLE_CODES.has(res.status)) {
        throttled = true;
        if (!opts.noThrottleRaise) maxAttempts = Math.max(maxAttempts, THROTTLE_MIN_ATTEMPTS);
        retryAfter = retryAfterMs(res.headers, clock.now());
      }
    } catch (e) {
      if (e instanceof ResourceGoneError || e instanceof InvalidContainerError || (e as Error).name === 'AbortError') throw e;
      if (opts.giveUp?.(e)) throw e;
      last = e;
    }
    if (attempt >= maxAttempts) throw last;
    let delay = throttled ? Math.max(throttleDelay, retryAfter ?? 0) : retryDelay * fibonacciFactor(attempt);
    delay = Math.min(delay, maxSleep);
    if (!throttled || retryAfter === undefined) delay = jittered(delay, clock.random, 0.75);
    if (opts.budgetMs !== undefined && clock.now() + delay - start > opts.budgetMs) throw new RetryBudgetError(opts.what, last);
    opts.onRetry?.(attempt, delay, last instanceof Error ? last.message : String(last));
    await clock.sleep(delay, opts.signal);
  }
}
