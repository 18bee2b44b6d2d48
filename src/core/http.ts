/**
 * The HTTP client every fabric and storage request goes through (fabric-protocol.md §2.0, §5.4, §5.5): one TCP
 * connection per request (`Connection: close`), `User-Agent: WALinuxAgent/<version>`, a per-attempt **idle** timeout
 * (10 s by default: connect and each read), a body-size cap, and proxies only for storage traffic (`useProxy`) —
 * never for the wire server, the host plugin or IMDS. No redirects are followed. Retries live in core/retry.
 */
import * as http from 'node:http';
import type * as https from 'node:https';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { AGENT_NAME, AGENT_VERSION } from '../version';
import { splitUserInfo, decodeComponent } from './proxy-auth';

export const USER_AGENT = `${AGENT_NAME}/${AGENT_VERSION}`;
export const DEFAULT_IDLE_TIMEOUT_MS = 10_000;

/** A transport-level failure (connect refused, reset, idle timeout, body too large, proxy refusal). Retryable. */
export class HttpIoError extends Error {
  constructor(msg: string, readonly code?: string) { super(msg); this.name = 'HttpIoError'; }
}

export interface HttpRequest {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Storage traffic only: allow the configured/environment proxy (§5.4). Default false. */
  useProxy?: boolean;
  /** Idle timeout per attempt, ms (default 10 s). */
  timeoutMs?: number;
  /** Refuse bodies larger than this (default 64 MiB). */
  maxBodyBytes?: number;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** The response body decoded as UTF-8 text (BOM removed). */
export function bodyText(r: HttpResponse): string {
  return r.body.toString('utf8').replace(/^\uFEFF/, '');
}

/** Proxy configuration from waagent.conf (`HttpProxy.Host`, `HttpProxy.Port`); the host may carry `user:password@`. */
export interface ProxyConfig { host?: string | null; port?: number | null }
export interface ProxyTarget {
  host: string;
  port: number;
  /** Credentials from the proxy URL or `HttpProxy.Host` (D30), percent-decoded; sent as `Proxy-Authorization: Basic`. */
  auth?: { user: string; password: string };
}

/** The `Proxy-Authorization` header value for a proxy with credentials, or undefined. */
export function proxyAuthorization(p: ProxyTarget): string | undefined {
  return p.auth ? `Basic ${Buffer.from(`${p.auth.user}:${p.auth.password}`, 'utf8').toString('base64')}` : undefined;
}

/** A proxy for messages: `host:port`, never the credentials. */
export function describeProxy(p: ProxyTarget): string {
  return `${p.host.includes(':') ? `[${p.host}]` : p.host}:${p.port}`;
}

/** Addresses that are never proxied whatever the caller asks: the wire server (and its host plugin) and IMDS. */
const NEVER_PROXY = /^(168\.63\.129\.16|169\.254\.169\.254)$/;

function ipv4ToInt(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const p = m.slice(1).map(Number);
  if (p.some((x) => x > 255)) return undefined;
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

/** Whether `no_proxy` excludes a host (§5.4): CIDR match for IPv4 targets, else exact or suffix match. */
export function bypassesProxy(host: string, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const entries = noProxy.replace(/\s+/g, '').split(',').filter(Boolean);
  const ip = ipv4ToInt(host);
  for (const e of entries) {
    if (e === '*') return true;
    if (ip !== undefined) {
      const cidr = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(e);
      if (cidr) {
        const net4 = ipv4ToInt(cidr[1]); const bits = Number(cidr[2]);
        if (net4 !== undefined && bits >= 1 && bits <= 32) {
          const mask = bits === 32 ? 0xffffffff : (~((1 << (32 - bits)) - 1)) >>> 0;
          if (((ip & mask) >>> 0) === ((net4 & mask) >>> 0)) return true;
        }
      } else if (e === host) return true;
    } else if (host.toLowerCase().endsWith(e.toLowerCase().replace(/^\*/, ''))) return true;
  }
  return false;
}

/**
 * The proxy for a URL (§5.4): configuration wins (`HttpProxy.Host`, port default 80), then `http_proxy`/`HTTP_PROXY`
 * or `https_proxy`/`HTTPS_PROXY` by scheme, minus `no_proxy`/`NO_PROXY`. Host, port and credentials (D30:
 * `http://user:password@host:port`, or `user:password@host` in `HttpProxy.Host`, percent-decoded) are used.
 */
export function proxyFor(url: URL, conf: ProxyConfig | undefined, env: NodeJS.ProcessEnv = process.env): ProxyTarget | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (NEVER_PROXY.test(host)) return undefined;
  if (bypassesProxy(host, env.no_proxy ?? env.NO_PROXY)) return undefined;
  if (conf?.host) {
    const { host: h, auth } = splitUserInfo(conf.host.trim().replace(/^https?:\/\//i, '').replace(/\/+$/, ''));
    return { host: h.replace(/^\[|\]$/g, ''), port: conf.port && conf.port > 0 ? conf.port : 80, ...(auth ? { auth } : {}) };
  }
  const raw = url.protocol === 'https:' ? env.https_proxy ?? env.HTTPS_PROXY : env.http_proxy ?? env.HTTP_PROXY;
  if (!raw) return undefined;
  try {
    const p = new URL(raw.includes('://') ? raw : `http://${raw}`);
    const target: ProxyTarget = { host: p.hostname.replace(/^\[|\]$/g, ''), port: p.port ? Number(p.port) : 80 };
    if (p.username || p.password) target.auth = { user: decodeComponent(p.username), password: decodeComponent(p.password) };
    return target;
  } catch {
    return undefined;
  }
}

function authHeader(p: ProxyTarget): Record<string, string> {
  const v = proxyAuthorization(p);
  return v ? { 'Proxy-Authorization': v } : {};
}

/** Opens a CONNECT tunnel through the proxy and returns the TLS socket to the target. */
function connectTunnel(proxy: ProxyTarget, target: URL, timeoutMs: number): Promise<tls.TLSSocket> {
  const tls = loadTls();
  return new Promise((resolve, reject) => {
    const port = target.port || '443';
    const req = http.request({
      host: proxy.host, port: proxy.port, method: 'CONNECT', path: `${target.hostname}:${port}`, agent: false,
      headers: { Host: `${target.hostname}:${port}`, 'User-Agent': USER_AGENT, ...authHeader(proxy) },
    });
    req.setTimeout(timeoutMs, () => req.destroy(new HttpIoError(`proxy ${describeProxy(proxy)} CONNECT timed out after ${timeoutMs} ms`, 'ETIMEDOUT')));
    req.on('error', (e) => reject(e instanceof HttpIoError ? e : new HttpIoError(`proxy ${describeProxy(proxy)} CONNECT failed: ${e.message}`, (e as NodeJS.ErrnoException).code)));
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(res.statusCode === 407 ? proxyAuthError(proxy) : new HttpIoError(`proxy ${describeProxy(proxy)} refused CONNECT: HTTP ${res.statusCode}`));
        return;
      }
      // The handshake gets the same idle bound as everything else, and a tunnel the proxy closes before it
      // completes is an error, not a wait without end.
      const t = tls.connect({ socket, servername: net.isIP(target.hostname) ? undefined : target.hostname });
      let up = false;
      t.setTimeout(timeoutMs, () => t.destroy(new HttpIoError(`TLS through proxy ${describeProxy(proxy)}: no data for ${timeoutMs} ms`, 'ETIMEDOUT')));
      t.once('secureConnect', () => { up = true; t.setTimeout(0); resolve(t); });
      t.once('error', (e) => reject(e instanceof HttpIoError ? e : new HttpIoError(`TLS through proxy ${describeProxy(proxy)} failed: ${e.message}`)));
      t.once('close', () => { if (!up) reject(new HttpIoError(`proxy ${describeProxy(proxy)} closed the tunnel before TLS was established`, 'ECONNRESET')); });
      socket.once('end', () => { if (!up) t.destroy(new HttpIoError(`proxy ${describeProxy(proxy)} closed the tunnel before TLS was established`, 'ECONNRESET')); });
    });
    req.end();
  });
}

// https and tls are loaded on first use: an agent that only talks plain HTTP to the wire server and the host plugin
// (the idle daemon without extensions) never pays for them (+1.8 MiB anonymous RSS, measured with the SEA's V8 flags).
let httpsModule: typeof https | undefined;
let tlsModule: typeof tls | undefined;
// (require, not import(): the bundle is CommonJS and a single executable's main script has no dynamic-import hook.)
function loadHttps(): typeof https { return (httpsModule ??= require('node:https') as typeof https); }
function loadTls(): typeof tls { return (tlsModule ??= require('node:tls') as typeof tls); }

interface Prepared {
  url: URL;
  mod: typeof http | typeof https;
  options: http.RequestOptions;
  body: Buffer | undefined;
  timeoutMs: number;
  /** The proxy this request goes through (plain HTTP through it, or https through its CONNECT tunnel). */
  proxy?: ProxyTarget;
}

/** A proxy that answered 407 (D30): a clear, retryable error that names the proxy and never the credentials. */
function proxyAuthError(proxy: ProxyTarget, status = 407): HttpIoError {
  return new HttpIoError(`proxy ${describeProxy(proxy)} requires authentication (HTTP ${status})${proxy.auth ? ': the credentials were refused' : ': none configured'}`, 'EPROXYAUTH');
}

/**
 * The proxy's own refusal of a request (D30), or undefined: a 407, or on a plain (not tunnelled) request a 401
 * without a `Via` header when credentials were sent — tinyproxy (1.11) answers a wrong password with `401
 * Unauthorized` instead of 407, while an origin's answer relayed by a proxy carries the proxy's `Via` (RFC 9110 §7.6.3).
 */
function proxyRefusal(proxy: ProxyTarget | undefined, url: URL, status: number, headers: http.IncomingHttpHeaders): HttpIoError | undefined {
  if (!proxy) return undefined;
  if (status === 407) return proxyAuthError(proxy);
  if (status === 401 && url.protocol === 'http:' && proxy.auth && headers.via === undefined) return proxyAuthError(proxy, 401);
  return undefined;
}

/** Builds the request options: headers, proxy (storage traffic only), CONNECT tunnel for https through a proxy. */
async function prepare(req: HttpRequest, proxyConf?: ProxyConfig): Promise<Prepared> {
  const url = new URL(req.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HttpIoError(`unsupported URL scheme ${url.protocol}`);
  const timeoutMs = req.timeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, 'utf8');
  const headers: Record<string, string> = { 'User-Agent': USER_AGENT, Connection: 'close', ...req.headers };
  if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
    headers['Content-Length'] = String(body.length);
  }
  const proxy = req.useProxy ? proxyFor(url, proxyConf) : undefined;
  let options: http.RequestOptions;
  let mod: typeof http | typeof https = url.protocol === 'https:' ? loadHttps() : http;
  if (proxy && url.protocol === 'http:') {
    options = { host: proxy.host, port: proxy.port, path: url.href, headers: { ...headers, Host: url.host, ...authHeader(proxy) } };
  } else if (proxy) {
    const sock = await connectTunnel(proxy, url, timeoutMs);
    mod = http; // the TLS socket is already established; speak HTTP over it
    options = { host: url.hostname, port: url.port || 443, path: url.pathname + url.search, headers, createConnection: () => sock };
  } else {
    options = { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || (url.protocol === 'https:' ? 443 : 80), path: url.pathname + url.search, headers };
  }
  options.method = req.method ?? 'GET';
  options.agent = false;
  if (req.signal) options.signal = req.signal;
  return { url, mod, options, body, timeoutMs, proxy };
}

/**
 * Sends one request (no retry) and resolves with the status, headers and body whatever the status. Rejects with
 * `HttpIoError` on transport failures and idle timeouts, or an `AbortError` when `signal` fires.
 */
export async function httpRequest(req: HttpRequest, proxyConf?: ProxyConfig): Promise<HttpResponse> {
  const { url, mod, options, body, timeoutMs, proxy } = await prepare(req, proxyConf);
  const maxBody = req.maxBodyBytes ?? 64 * 1024 * 1024;

  return new Promise<HttpResponse>((resolveP, rejectP) => {
    let settled = false;
    const resolve = (v: HttpResponse): void => { if (!settled) { settled = true; resolveP(v); } };
    const reject = (e: unknown): void => { if (!settled) { settled = true; rejectP(e); } };
    const r = mod.request(options, (res) => {
      const chunks: Buffer[] = []; let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBody) {
          reject(new HttpIoError(`response body from ${url.host} larger than ${maxBody} bytes`, 'EFBIG'));
          r.destroy();
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        const refused = proxyRefusal(proxy, url, res.statusCode ?? 0, res.headers);
        if (refused) { reject(refused); return; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('error', (e) => reject(e instanceof HttpIoError ? e : new HttpIoError(`reading ${url.host}: ${e.message}`, (e as NodeJS.ErrnoException).code)));
      res.on('aborted', () => reject(new HttpIoError(`connection to ${url.host} closed mid-response`, 'ECONNRESET')));
    });
    r.setTimeout(timeoutMs, () => r.destroy(new HttpIoError(`no data from ${url.host} for ${timeoutMs} ms`, 'ETIMEDOUT')));
    r.on('error', (e) => {
      if ((e as Error).name === 'AbortError') reject(e);
      else if (e instanceof HttpIoError) reject(e);
      // Through a proxy, say so: a proxy that refuses the credentials of a request with a body may answer and close
      // before reading it (tinyproxy does), and the client then sees only a reset.
      else if (proxy && url.protocol === 'http:') reject(new HttpIoError(`${options.method} ${url.host} through proxy ${describeProxy(proxy)}: ${e.message} (the proxy closed the connection without an answer it could read; check the proxy and its credentials)`, (e as NodeJS.ErrnoException).code));
      else reject(new HttpIoError(`${options.method} ${url.host}: ${e.message}`, (e as NodeJS.ErrnoException).code));
    });
    if (body !== undefined) r.end(body); else r.end();
  });
}

export interface DownloadSink {
  /** Called with the status and headers of a 2xx answer before any byte is written; a throw aborts the download. */
  onHeaders?(status: number, headers: http.IncomingHttpHeaders): void;
  /** Receives the body of a 2xx answer chunk by chunk (awaited: backpressure). A throw aborts the download. */
  write(chunk: Buffer): Promise<void>;
}

/**
 * Sends one GET and streams a 2xx body into `sink` without holding it in memory; other statuses resolve with their
 * (capped, 64 KiB) body like `httpRequest`. The 2xx response resolves with an empty body once the sink took every byte.
 * Rejects with `HttpIoError` on transport failures, idle timeouts (a stall mid-body), a body larger than
 * `maxBodyBytes` (EFBIG) or shorter than its Content-Length (`truncated download`, EPIPE); a sink error is rethrown as is.
 */
export async function httpDownload(req: HttpRequest, sink: DownloadSink, proxyConf?: ProxyConfig): Promise<HttpResponse & { bytes: number }> {
  const { url, mod, options, timeoutMs, proxy } = await prepare({ ...req, method: req.method ?? 'GET', body: undefined }, proxyConf);
  const maxBody = req.maxBodyBytes ?? 64 * 1024 * 1024;
  return new Promise((resolveP, rejectP) => {
    let settled = false;
    const resolve = (v: HttpResponse & { bytes: number }): void => { if (!settled) { settled = true; resolveP(v); } };
    const reject = (e: unknown): void => { if (!settled) { settled = true; rejectP(e); } };
    const r = mod.request(options, (res) => {
      const status = res.statusCode ?? 0;
      const ok = status >= 200 && status < 300;
      const chunks: Buffer[] = []; let size = 0;
      if (ok) {
        try { sink.onHeaders?.(status, res.headers); } catch (e) { reject(e); r.destroy(); return; }
      }
      let chain = Promise.resolve();
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (!ok) { if (size <= 65536) chunks.push(c); return; }
        if (size > maxBody) {
          reject(new HttpIoError(`download from ${url.host} larger than ${maxBody} bytes`, 'EFBIG'));
          r.destroy();
          return;
        }
        res.pause();
        chain = chain.then(() => sink.write(c)).then(() => { res.resume(); }, (e) => { reject(e); r.destroy(); });
      });
      res.on('end', () => {
        void chain.then(() => {
          const refused = ok ? undefined : proxyRefusal(proxy, url, status, res.headers);
          if (refused) { reject(refused); return; }
          if (!ok) { resolve({ status, headers: res.headers, body: Buffer.concat(chunks), bytes: size }); return; }
          const cl = res.headers['content-length'];
          if (cl !== undefined && /^\d+$/.test(cl) && Number(cl) !== size) {
            reject(new HttpIoError(`truncated download from ${url.host}: ${size} of ${cl} bytes`, 'EPIPE'));
            return;
          }
          resolve({ status, headers: res.headers, body: Buffer.alloc(0), bytes: size });
        });
      });
      res.on('error', (e) => reject(e instanceof HttpIoError ? e : new HttpIoError(`reading ${url.host}: ${e.message}`, (e as NodeJS.ErrnoException).code)));
      res.on('aborted', () => reject(new HttpIoError(`truncated download from ${url.host}: connection closed after ${size} bytes`, 'ECONNRESET')));
    });
    r.setTimeout(timeoutMs, () => r.destroy(new HttpIoError(`no data from ${url.host} for ${timeoutMs} ms`, 'ETIMEDOUT')));
    r.on('error', (e) => {
      if ((e as Error).name === 'AbortError') reject(e);
      else reject(e instanceof HttpIoError ? e : new HttpIoError(`${options.method} ${url.host}: ${e.message}`, (e as NodeJS.ErrnoException).code));
    });
    r.end();
  });
}
