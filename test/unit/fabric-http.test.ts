import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proxyFor, bypassesProxy } from '../../src/core/http';

test('proxy selection: configuration wins, then scheme-specific environment; host, port and credentials', () => {
  const env = { http_proxy: 'http://user:pw@envproxy:3128', HTTPS_PROXY: 'sproxy:8443' };
  assert.deepEqual(proxyFor(new URL('http://store.example/x'), undefined, env), { host: 'envproxy', port: 3128, auth: { user: 'user', password: 'pw' } });
  assert.deepEqual(proxyFor(new URL('https://store.example/x'), undefined, env), { host: 'sproxy', port: 8443 });
  assert.deepEqual(proxyFor(new URL('https://store.example/x'), { host: 'confproxy', port: 8080 }, env), { host: 'confproxy', port: 8080 });
  assert.deepEqual(proxyFor(new URL('https://store.example/x'), { host: 'confproxy', port: null }, {}), { host: 'confproxy', port: 80 });
  assert.equal(proxyFor(new URL('https://store.example/x'), undefined, { http_proxy: 'p:1' }), undefined);
  assert.deepEqual(proxyFor(new URL('http://store.example/x'), undefined, { HTTP_PROXY: 'p:1', http_proxy: 'q:2' }), { host: 'q', port: 2 });
});

test('the wire server and IMDS are never proxied', () => {
  const env = { http_proxy: 'p:1' };
  assert.equal(proxyFor(new URL('http://168.63.129.16/?comp=versions'), { host: 'c', port: 1 }, env), undefined);
  assert.equal(proxyFor(new URL('http://168.63.129.16:32526/status'), undefined, env), undefined);
  assert.equal(proxyFor(new URL('http://169.254.169.254/metadata/instance'), undefined, env), undefined);
});

test('no_proxy: CIDR for IPv4 targets, exact entries, host-name suffixes (case-insensitive)', () => {
  assert.ok(bypassesProxy('10.1.2.3', '10.0.0.0/8'));
  assert.ok(!bypassesProxy('11.1.2.3', '10.0.0.0/8'));
  assert.ok(bypassesProxy('10.1.2.3', ' 192.168.0.1 , 10.1.2.3 '));
  assert.ok(bypassesProxy('acct.blob.core.windows.net', 'example.com,Core.Windows.Net'));
  assert.ok(!bypassesProxy('acct.blob.core.windows.net', 'example.com'));
  assert.ok(!bypassesProxy('10.1.2.3', '10.1.2.0/33'));
  assert.ok(bypassesProxy('1.2.3.4', '1.2.3.4/32'));
  assert.equal(proxyFor(new URL('https://acct.blob.core.windows.net/c'), { host: 'c', port: 1 }, { NO_PROXY: '.windows.net' }), undefined);
});
