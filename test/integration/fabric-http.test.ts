// The HTTP client on loopback: headers, idle timeout, body cap, plain-HTTP proxying and CONNECT refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpRequest, HttpIoError } from '../../src/core/http';
import { AGENT_VERSION } from '../../src/version';

async function server(handler: http.RequestListener): Promise<{ port: number; close: () => Promise<void>; srv: http.Server }> {
  const srv = http.createServer(handler);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { srv, port: (srv.address() as AddressInfo).port, close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }) };
}

test('every request has Connection: close and the agent User-Agent; non-2xx statuses are returned', async () => {
  const seen: http.IncomingHttpHeaders[] = [];
  const s = await server((req, res) => { seen.push(req.headers); res.writeHead(404).end('nope'); });
  try {
    const r = await httpRequest({ url: `http://127.0.0.1:${s.port}/x`, method: 'POST', body: 'abc', headers: { 'x-ms-version': '2012-11-30' } });
    assert.equal(r.status, 404);
    assert.equal(r.body.toString(), 'nope');
    assert.equal(seen[0].connection, 'close');
    assert.equal(seen[0]['user-agent'], `WALinuxAgent/${AGENT_VERSION}`);
    assert.equal(seen[0]['content-length'], '3');
    assert.equal(seen[0]['x-ms-version'], '2012-11-30');
  } finally { await s.close(); }
});

test('idle timeout applies per read, not to the whole transfer; body cap', async () => {
  const s = await server((req, res) => {
    if (req.url === '/slow-trickle') {
      res.writeHead(200);
      let n = 0;
      const t = setInterval(() => { res.write('x'); if (++n === 6) { clearInterval(t); res.end(); } }, 60);
    } else if (req.url === '/stall') {
      res.writeHead(200); res.write('x'); // never ends
    } else res.writeHead(200).end(Buffer.alloc(2000));
  });
  try {
    const ok = await httpRequest({ url: `http://127.0.0.1:${s.port}/slow-trickle`, timeoutMs: 200 });
    assert.equal(ok.body.toString(), 'xxxxxx', 'total 360 ms > 200 ms idle timeout, still fine');
    await assert.rejects(httpRequest({ url: `http://127.0.0.1:${s.port}/stall`, timeoutMs: 150 }), (e: unknown) => e instanceof HttpIoError && e.code === 'ETIMEDOUT');
    await assert.rejects(httpRequest({ url: `http://127.0.0.1:${s.port}/big`, maxBodyBytes: 1000 }), (e: unknown) => e instanceof HttpIoError && e.code === 'EFBIG');
    await assert.rejects(httpRequest({ url: 'http://127.0.0.1:1/' }), HttpIoError);
  } finally { await s.close(); }
});

test('storage requests go through the configured proxy (absolute URL); others never do', async () => {
  const origin = await server((req, res) => res.writeHead(200).end(`origin ${req.url}`));
  const proxied: string[] = [];
  const proxy = await server((req, res) => { proxied.push(req.url ?? ''); res.writeHead(200).end('via proxy'); });
  proxy.srv.on('connect', (_req, socket) => { socket.end('HTTP/1.1 403 Forbidden\r\n\r\n'); });
  try {
    const conf = { host: '127.0.0.1', port: proxy.port };
    const target = `http://127.0.0.1:${origin.port}/blob?sig=1`;
    const r = await httpRequest({ url: target, useProxy: true, method: 'PUT', body: 'x' }, conf);
    assert.equal(r.body.toString(), 'via proxy');
    assert.deepEqual(proxied, [target]);
    const d = await httpRequest({ url: target }, conf);
    assert.equal(d.body.toString(), 'origin /blob?sig=1', 'useProxy false: direct');
    await assert.rejects(httpRequest({ url: `https://127.0.0.1:${origin.port}/x`, useProxy: true }, conf), /proxy 127\.0\.0\.1:\d+ refused CONNECT: HTTP 403/);
  } finally { await origin.close(); await proxy.close(); }
});

// https and tls are loaded on the first https request only (memory: the idle daemon talks plain HTTP).
test('loading the HTTP client loads neither https nor tls', () => {
  const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
  const out = execFileSync(process.execPath, ['-e', `require(${JSON.stringify(require.resolve('../../src/core/http'))});
    console.log(JSON.stringify(process.moduleLoadList.filter((m) => /^NativeModule (https|tls|_tls_wrap|internal\\/tls\\/wrap)$/.test(m))))`], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), []);
});

test('an https request still runs a real TLS handshake (a self-signed server certificate is refused)', async (t) => {
  const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
  const fs = require('node:fs') as typeof import('node:fs');
  const os = require('node:os') as typeof import('node:os');
  const path = require('node:path') as typeof import('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'https-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1',
      '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')], { stdio: 'ignore' });
  } catch { t.skip('openssl not available'); return; }
  const https = require('node:https') as typeof import('node:https');
  const srv = https.createServer({ key: fs.readFileSync(path.join(dir, 'k.pem')), cert: fs.readFileSync(path.join(dir, 'c.pem')) }, (_q, r) => r.end('ok'));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    await assert.rejects(httpRequest({ url: `https://127.0.0.1:${(srv.address() as AddressInfo).port}/x` }), (e: Error) => e instanceof HttpIoError && /self[- ]signed certificate/i.test(e.message));
  } finally { srv.closeAllConnections(); await new Promise<void>((r) => srv.close(() => r())); }
});
