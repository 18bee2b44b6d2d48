// Authenticated HTTP proxies (DECISIONS.md D30; fabric-protocol.md §5.4): credentials from the proxy URL or
// HttpProxy.Host sent as Proxy-Authorization: Basic on plain requests and on CONNECT, a refusal (407) is a clear,
// retryable error, and the password never shows in messages or -show-configuration. Real proxies on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { httpRequest, httpDownload, proxyFor, HttpIoError } from '../../src/core/http';
import { proxySecrets, redactProxyCredentials } from '../../src/core/proxy-auth';

/** A forward proxy on 127.0.0.1 that wants `Basic base64(user:pass)`; it records what it saw. */
async function authProxy(user: string, pass: string) {
  const want = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  const seen: { method: string; url: string; auth?: string }[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, auth: req.headers['proxy-authorization'] });
    if (req.headers['proxy-authorization'] !== want) { res.writeHead(407, { 'Proxy-Authenticate': 'Basic realm="t"' }); res.end(); return; }
    const u = new URL(req.url!);
    const up = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: req.method, headers: { ...req.headers, host: u.host } }, (r) => {
      res.writeHead(r.statusCode!, r.headers); r.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (c: net.Socket) => { sockets.add(c); c.on('close', () => sockets.delete(c)); });
  server.on('connect', (req, sock: net.Socket) => {
    seen.push({ method: 'CONNECT', url: req.url!, auth: req.headers['proxy-authorization'] });
    if (req.headers['proxy-authorization'] !== want) { sock.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n'); return; }
    const [h, p] = req.url!.split(':');
    const up = net.connect(Number(p), h, () => { sock.write('HTTP/1.1 200 Connection Established\r\n\r\n'); up.pipe(sock); sock.pipe(up); });
    up.on('error', () => sock.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = (): Promise<void> => new Promise<void>((r) => { for (const c of sockets) c.destroy(); server.close(() => r()); });
  return { server, port: (server.address() as AddressInfo).port, seen, close };
}

async function origin() {
  const server = http.createServer((req, res) => { res.end(`hello ${req.url}`); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('proxy credentials: from the URL (percent-decoded) and from HttpProxy.Host; never without them', () => {
  const url = new URL('http://store.example/x');
  assert.deepEqual(proxyFor(url, undefined, { http_proxy: 'http://al%40ice:p%3Ass@proxy:3128' }), { host: 'proxy', port: 3128, auth: { user: 'al@ice', password: 'p:ss' } });
  assert.deepEqual(proxyFor(url, { host: 'bob:s3cret@confproxy', port: 8080 }, {}), { host: 'confproxy', port: 8080, auth: { user: 'bob', password: 's3cret' } });
  assert.deepEqual(proxyFor(url, { host: 'confproxy', port: 8080 }, {}), { host: 'confproxy', port: 8080 });
  assert.deepEqual(proxySecrets({ host: 'bob:s3cret@confproxy' }, { https_proxy: 'http://u:envpass@p:1' }).sort(), ['envpass', 's3cret']);
});

test('redaction: passwords in proxy URLs and user:password@host never show', () => {
  assert.equal(redactProxyCredentials('http://user:pw123@proxy:3128'), 'http://user:***@proxy:3128');
  assert.equal(redactProxyCredentials('bob:s3cret@confproxy'), 'bob:***@confproxy');
  assert.equal(redactProxyCredentials('plainhost'), 'plainhost');
});

test('plain request through an authenticated proxy: Basic credentials sent, the body comes back', async () => {
  const proxy = await authProxy('agent', 'pa ss:w@rd');
  const o = await origin();
  try {
    const env = process.env.http_proxy;
    const res = await httpRequest({ url: `http://store.invalid:${o.port}/blob?x=1`, useProxy: true }, { host: `agent:${encodeURIComponent('pa ss:w@rd')}@127.0.0.1`, port: proxy.port });
    assert.equal(env, process.env.http_proxy);
    assert.equal(res.status, 502, 'store.invalid does not resolve: the proxy answered (after accepting the credentials)');
    const res2 = await httpRequest({ url: `http://127.0.0.2:${o.port}/b`, useProxy: true }, { host: `agent:${encodeURIComponent('pa ss:w@rd')}@127.0.0.1`, port: proxy.port });
    assert.equal(proxy.seen.at(-1)?.auth, `Basic ${Buffer.from('agent:pa ss:w@rd').toString('base64')}`);
    assert.ok(res2.status === 200 || res2.status === 502);
  } finally { await proxy.close(); await o.close(); }
});

test('a wrong password: a clear, retryable error naming the proxy without the credentials', async () => {
  const proxy = await authProxy('agent', 'right');
  try {
    await assert.rejects(httpRequest({ url: 'http://store.invalid/blob', useProxy: true }, { host: 'agent:wrong-pass@127.0.0.1', port: proxy.port }), (e: Error) => {
      assert.ok(e instanceof HttpIoError, 'retryable transport-level error');
      assert.match(e.message, /requires authentication \(HTTP 407\): the credentials were refused/);
      assert.doesNotMatch(e.message, /wrong-pass/);
      return true;
    });
    await assert.rejects(httpRequest({ url: 'https://store.invalid/blob', useProxy: true }, { host: 'agent:wrong-pass@127.0.0.1', port: proxy.port }), /CONNECT|407/);
    assert.equal(proxy.seen.at(-1)?.method, 'CONNECT');
    assert.equal(proxy.seen.at(-1)?.auth, `Basic ${Buffer.from('agent:wrong-pass').toString('base64')}`, 'CONNECT carries the credentials');
  } finally { await proxy.close(); }
});

test('CONNECT through an authenticated proxy for https: credentials on the CONNECT', async () => {
  const proxy = await authProxy('agent', 'right');
  // a plain TCP "TLS" endpoint that closes: the tunnel is established, then TLS fails — what matters is the CONNECT
  const sink = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  try {
    const port = (sink.address() as AddressInfo).port;
    await assert.rejects(httpRequest({ url: `https://127.0.0.1:${port}/blob`, useProxy: true, timeoutMs: 3000 }, { host: 'agent:right@127.0.0.1', port: proxy.port }), /TLS|socket|closed|ECONNRESET/i);
    const c = proxy.seen.find((s) => s.method === 'CONNECT');
    assert.equal(c?.url, `127.0.0.1:${port}`);
    assert.equal(c?.auth, `Basic ${Buffer.from('agent:right').toString('base64')}`);
  } finally { await proxy.close(); await new Promise<void>((r) => sink.close(() => r())); }
});

test('a proxy that resets a request with a body (tinyproxy refusing credentials): the error names the proxy, not only the target', async () => {
  // Reads the request head, then closes with the body unread: the client sees a reset (RST), never an answer.
  const sink = net.createServer((s) => { s.once('data', () => { s.resetAndDestroy(); }); });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  try {
    const port = (sink.address() as AddressInfo).port;
    await assert.rejects(httpRequest({ method: 'PUT', url: 'http://store.invalid/blob', body: Buffer.alloc(64 * 1024), useProxy: true, timeoutMs: 3000 },
      { host: 'agent:s3cret-pw@127.0.0.1', port }), (e: Error) => {
      assert.ok(e instanceof HttpIoError, 'retryable transport-level error');
      assert.match(e.message, new RegExp(`^PUT store\\.invalid through proxy 127\\.0\\.0\\.1:${port}: .*check the proxy and its credentials`));
      assert.doesNotMatch(e.message, /s3cret-pw/);
      return true;
    });
  } finally { await new Promise((r) => sink.close(r)); }
});

/** A proxy that behaves as tinyproxy 1.11 does: a wrong password gets its own `401 Unauthorized` (WWW-Authenticate,
 *  no Via); with the right one it relays the origin's answer and adds `Via`. */
async function tinyproxyLike(user: string, pass: string) {
  const want = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  const server = http.createServer((req, res) => {
    if (!req.headers['proxy-authorization']) { res.writeHead(407, { 'Proxy-Authenticate': 'Basic realm="Tinyproxy"' }).end('<html>407</html>'); return; }
    if (req.headers['proxy-authorization'] !== want) { res.writeHead(401, 'Unauthorized', { 'WWW-Authenticate': 'Basic realm="Tinyproxy"', 'Content-Type': 'text/html' }).end('<html><title>401 Unauthorized</title></html>'); return; }
    const u = new URL(req.url!);
    const up = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: req.method }, (r) => {
      res.writeHead(r.statusCode!, { ...r.headers, via: '1.1 tinyproxy-like (tinyproxy/1.11.1)' }); r.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('a wrong password answered 401 by the proxy itself (tinyproxy): the same clear, retryable proxy error for requests and downloads; an origin\'s 401 relayed with Via stays a 401', async () => {
  const proxy = await tinyproxyLike('agent', 'right');
  const o = http.createServer((req, res) => { if (req.url === '/denied') res.writeHead(401, { 'WWW-Authenticate': 'Bearer' }).end('origin says no'); else res.end('package-bytes'); });
  await new Promise<void>((r) => o.listen(0, '127.0.0.1', r));
  const oport = (o.address() as AddressInfo).port;
  const wrong = { host: 'agent:wr0ng-pass@127.0.0.1', port: proxy.port };
  const right = { host: 'agent:right@127.0.0.1', port: proxy.port };
  const sink = { write: async (): Promise<void> => {} };
  const clear = (e: Error): boolean => {
    assert.ok(e instanceof HttpIoError, 'retryable transport-level error');
    assert.equal((e as HttpIoError).code, 'EPROXYAUTH');
    assert.equal(e.message, `proxy 127.0.0.1:${proxy.port} requires authentication (HTTP 401): the credentials were refused`);
    return true;
  };
  try {
    await assert.rejects(httpRequest({ url: `http://127.0.0.1:${oport}/m.xml`, useProxy: true }, wrong), clear);
    await assert.rejects(httpDownload({ url: `http://127.0.0.1:${oport}/p.zip`, useProxy: true }, sink, wrong), clear);
    // The right password: the origin's own 401 comes back as a response (it carries the proxy's Via).
    const r = await httpRequest({ url: `http://127.0.0.1:${oport}/denied`, useProxy: true }, right);
    assert.equal(r.status, 401);
    assert.equal(r.body.toString(), 'origin says no');
    const d = await httpDownload({ url: `http://127.0.0.1:${oport}/denied`, useProxy: true }, sink, right);
    assert.equal(d.status, 401);
    const ok = await httpDownload({ url: `http://127.0.0.1:${oport}/p.zip`, useProxy: true }, sink, right);
    assert.equal(ok.status, 200);
    assert.equal(ok.bytes, 'package-bytes'.length);
    // No credentials configured: the 401 is not the proxy's business (only a 407 is).
    const noAuth = await httpRequest({ url: `http://127.0.0.1:${oport}/denied`, useProxy: true }, { host: '127.0.0.1', port: proxy.port }).catch((e: Error) => e);
    assert.match(String((noAuth as Error).message), /requires authentication \(HTTP 407\): none configured/);
  } finally { await proxy.close(); await new Promise<void>((r) => o.close(() => r())); }
});
