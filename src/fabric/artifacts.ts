/**
 * Artifact downloads — extension manifests, packages, the InVMArtifactsProfile — over two channels (fabric-protocol.md
 * §4.2, §4.4, §4.5; extensions.md §4.1): shuffle the alternative URLs; per URL the process-wide default channel, then
 * the other; *direct* = a plain GET (storage traffic: the configured proxy is allowed), *host plugin* = `GET
 * http://<wire server>:32526/extensionArtifact` with `x-ms-artifact-location` (and `x-ms-artifact-manifest-location`
 * for packages), never proxied, 400 retried; a success on the other channel flips the default; 410 or
 * `InvalidContainerConfiguration` from the host plugin refreshes the goal state and retries once; a 5-minute budget
 * checked before each URL. Per-request retries are core/retry's.
 */
import { log, errorText } from '../core/log';
import { httpRequest, bodyText, type HttpResponse } from '../core/http';
import {
  withRetry, isSuccess, HttpStatusError, ResourceGoneError, InvalidContainerError, DEFAULT_RETRY_CODES, realClock,
  type Clock, type RetryOptions,
} from '../core/retry';
import type { WireClient } from './wire';

export type Channel = 'direct' | 'hostplugin';

/** The process-wide default channel (§4.4 rule 4): starts direct, flips after a success on the other channel. */
let defaultChannel: Channel = 'direct';
export function getDefaultChannel(): Channel { return defaultChannel; }
/** FOR TESTS: reset the process-wide default channel. */
export function setDefaultChannel(c: Channel): void { defaultChannel = c; }

/** The whole download's budget, checked before each URL (§4.4 rule 5, §5.5). */
export const ARTIFACT_BUDGET_MS = 5 * 60_000;
/** `/extensionArtifact` also retries 400 (host plugin cache glitch, §4.4 rule 6). */
export const HGAP_ARTIFACT_RETRY_CODES: ReadonlySet<number> = new Set([...DEFAULT_RETRY_CODES, 400]);

/** One request of one channel for one artifact URL. */
export interface ChannelRequest {
  channel: Channel;
  /** The artifact URL as listed (what `x-ms-artifact-location` carries). */
  uri: string;
  /** What to GET. */
  url: string;
  headers: Record<string, string>;
  useProxy: boolean;
}

/** The request of `channel` for artifact `uri` (§4.5 `/extensionArtifact` headers for the host plugin). */
export function artifactRequest(wire: WireClient, channel: Channel, uri: string, manifestUrl?: string): ChannelRequest {
  if (channel === 'direct') return { channel, uri, url: uri, headers: {}, useProxy: true };
  const extra: Record<string, string> = { 'x-ms-artifact-location': uri };
  if (manifestUrl) extra['x-ms-artifact-manifest-location'] = manifestUrl;
  return { channel, uri, url: `${wire.hostPluginBase}/extensionArtifact`, headers: wire.hostPluginHeaders(extra), useProxy: false };
}

/** Every URL and channel failed, or the budget ran out before a URL (`timedOut`). */
export class ArtifactDownloadError extends Error {
  constructor(message: string, readonly last: unknown, readonly tried: number, readonly total: number,
    readonly timedOut: boolean, readonly elapsedMs: number) {
    super(message);
    this.name = 'ArtifactDownloadError';
  }
}

export interface FallbackOptions {
  /** Names the artifact in messages (e.g. `extension manifest`, `Microsoft.X.Y-1.0.0`). */
  what: string;
  uris: string[];
  /** Manifest URL sent with host-plugin package downloads. */
  manifestUrl?: string;
  /** Default 5 minutes. */
  budgetMs?: number;
  /** Shuffle the URLs (default true, as HEAD). */
  shuffle?: boolean;
  clock?: Clock;
  signal?: AbortSignal;
  /** Overrides of the per-request retry (tests shorten the delays). */
  retry?: Partial<RetryOptions>;
  /** Errors that end the whole download at once (disk full: not specific to a URL). */
  fatal?: (e: unknown) => boolean;
  /** Errors not retried on the same channel (the next channel/URL is tried). */
  giveUp?: (e: unknown) => boolean;
}

/** `h:mm:ss.ffffff`, as HEAD prints elapsed times. */
export function formatElapsed(ms: number): string {
  const us = Math.max(0, Math.round(ms * 1000));
  const h = Math.floor(us / 3_600_000_000);
  const m = Math.floor(us / 60_000_000) % 60;
  const s = Math.floor(us / 1_000_000) % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(us % 1_000_000).padStart(6, '0')}`;
}

function shuffled<T>(a: T[], random: () => number): T[] {
  const b = [...a];
  for (let i = b.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)));
    [b[i], b[j]] = [b[j], b[i]];
  }
  return b;
}

const isAbort = (e: unknown): boolean => (e as Error)?.name === 'AbortError';

/**
 * Runs `attempt` for each URL and channel until one succeeds (see the file comment). `attempt` performs one request
 * with its retries (use `retryFor`); a non-success must throw. Throws `ArtifactDownloadError`, a `fatal` error as is,
 * or an AbortError.
 */
export async function downloadWithFallback<T>(wire: WireClient, opts: FallbackOptions,
  attempt: (req: ChannelRequest, retry: RetryOptions) => Promise<T>): Promise<{ value: T; uri: string; channel: Channel }> {
  const clock = opts.clock ?? wire.retryClock ?? realClock;
  const budget = opts.budgetMs ?? ARTIFACT_BUDGET_MS;
  const signal = opts.signal ?? wire.signal;
  const start = clock.now();
  const uris = opts.shuffle === false ? [...opts.uris] : shuffled(opts.uris, clock.random);
  let last: unknown = new Error('no URI to download from');
  let tried = 0;
  for (const uri of uris) {
    const elapsed = clock.now() - start;
    if (elapsed > budget) {
      throw new ArtifactDownloadError(`Timeout downloading ${opts.what}. Elapsed: ${formatElapsed(elapsed)} URIs tried: ${tried}/${uris.length}. Last error: ${errorText(last)}`,
        last, tried, uris.length, true, elapsed);
    }
    tried++;
    const first = defaultChannel;
    for (const channel of [first, first === 'direct' ? 'hostplugin' : 'direct'] as Channel[]) {
      if (signal?.aborted) throw Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
      if (channel === 'hostplugin' && !(await wire.hostPluginAvailable().catch(() => false))) {
        if (channel === first) last = new Error('host plugin not available');
        continue;
      }
      const retry: RetryOptions = {
        what: `${opts.what} (${channel === 'direct' ? 'direct' : 'host plugin'})`,
        clock, signal,
        budgetMs: Math.max(1, budget - (clock.now() - start)),
        retryCodes: channel === 'hostplugin' ? HGAP_ARTIFACT_RETRY_CODES : DEFAULT_RETRY_CODES,
        giveUp: (e) => !!opts.giveUp?.(e) || !!opts.fatal?.(e),
        onRetry: (n, ms, why) => log.verbose(`${opts.what}: attempt ${n} via ${channel} failed (${why}); retrying in ${ms} ms`),
        ...opts.retry,
      };
      try {
        let value: T;
        try {
          value = await attempt(artifactRequest(wire, channel, uri, opts.manifestUrl), retry);
        } catch (e) {
          if (channel !== 'hostplugin' || !(e instanceof ResourceGoneError || e instanceof InvalidContainerError)) throw e;
          log.info(`host plugin says the container is stale (${e.message}); refreshing the goal state and retrying once`);
          await wire.updateGoalState();
          value = await attempt(artifactRequest(wire, channel, uri, opts.manifestUrl), retry);
        }
        if (channel !== defaultChannel) {
          log.info(`${opts.what}: downloaded via ${channel} after ${defaultChannel} failed; ${channel} is now the default channel`);
          defaultChannel = channel;
        }
        return { value, uri, channel };
      } catch (e) {
        if (isAbort(e) || opts.fatal?.(e)) throw e;
        last = e;
        log.warn(`${opts.what}: download of ${redactUrl(uri)} via ${channel} failed: ${errorText(e)}`);
      }
    }
  }
  const elapsed = clock.now() - start;
  throw new ArtifactDownloadError(`Failed to download ${opts.what} from all URIs. Last error: ${errorText(last)}`, last, tried, uris.length, false, elapsed);
}

/** A URL with its query (SAS token) replaced, for logs. */
export function redactUrl(u: string): string {
  const q = u.indexOf('?');
  return q < 0 ? u : `${u.slice(0, q)}?***REDACTED***`;
}

/** One buffered GET with retries; a non-success status throws `HttpStatusError`. */
export async function fetchBuffered(req: ChannelRequest, retry: RetryOptions, wire: WireClient, maxBytes: number): Promise<HttpResponse> {
  const res = await withRetry(() => httpRequest({ url: req.url, headers: req.headers, useProxy: req.useProxy, maxBodyBytes: maxBytes, signal: retry.signal }, wire.proxy), retry);
  if (!isSuccess(res.status)) throw new HttpStatusError(retry.what, res.status, bodyText(res));
  return res;
}

/**
 * The InVMArtifactsProfile (§4.2): `{ onHold }` from the blob at `url` (direct, then host plugin). `onHold` may be a
 * boolean or the strings "true"/"false"; any other value, an empty body or any failure means not on hold.
 */
export async function fetchArtifactsProfile(wire: WireClient, url: string, opts: Partial<FallbackOptions> = {}): Promise<{ onHold: boolean }> {
  try {
    const { value } = await downloadWithFallback(wire, { what: 'InVMArtifactsProfile', uris: [url], shuffle: false, budgetMs: 60_000, ...opts },
      (req, retry) => fetchBuffered(req, retry, wire, 1024 * 1024));
    const text = bodyText(value).trim();
    if (!text) return { onHold: false };
    const j = JSON.parse(text) as { onHold?: unknown };
    const h = j && typeof j === 'object' ? j.onHold : undefined;
    return { onHold: h === true || (typeof h === 'string' && h.toLowerCase() === 'true') };
  } catch (e) {
    if (isAbort(e)) throw e;
    log.warn(`InVMArtifactsProfile: ${errorText(e)}; treating as not on hold`);
    return { onHold: false };
  }
}
