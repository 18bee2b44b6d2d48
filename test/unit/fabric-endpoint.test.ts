import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SysRoot } from '../../src/core/sysroot';
import { HostFs } from '../../src/os/os';
import {
  parseEndpoint, formatEndpoint, wireBaseUrl, routeHasWireServer, endpointFromDhclientLeases, endpointFromNetworkdLease,
  endpointFromLeases, discoverEndpoint, saveEndpoint, readCachedEndpoint,
} from '../../src/fabric/endpoint';

function root(): { hostFs: HostFs; dir: string; put: (p: string, text: string, mtimeS?: number) => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-ep-'));
  const put = (p: string, text: string, mtimeS?: number): void => {
    const real = path.join(dir, p);
    fs.mkdirSync(path.dirname(real), { recursive: true });
    fs.writeFileSync(real, text);
    if (mtimeS !== undefined) fs.utimesSync(real, mtimeS, mtimeS);
  };
  return { hostFs: new HostFs(new SysRoot(dir)), dir, put };
}

const lease = (opt: string, expire: string): string =>
  `lease {\n  interface "eth0";\n  fixed-address 10.0.1.4;\n  option unknown-245 ${opt};\n  renew 0 2152/07/23 23:27:10;\n  expire ${expire};\n}\n`;

test('endpoint strings: host, host:port, IPv6, garbage', () => {
  assert.deepEqual(parseEndpoint('168.63.129.16'), { host: '168.63.129.16' });
  assert.deepEqual(parseEndpoint(' 127.0.0.1:8080\n'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseEndpoint('[::1]:81'), { host: '::1', port: 81 });
  for (const bad of ['', '  ', 'a b', 'h:0', 'h:70000', 'h:x', 'http://h']) assert.equal(parseEndpoint(bad), undefined, bad);
  assert.equal(formatEndpoint({ host: '127.0.0.1', port: 5 }), '127.0.0.1:5');
  assert.equal(wireBaseUrl({ host: '168.63.129.16' }), 'http://168.63.129.16');
  assert.equal(wireBaseUrl({ host: '::1', port: 9 }), 'http://[::1]:9');
});

test('route check finds 10813FA8 in /proc/net/route', () => {
  const head = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';
  assert.ok(routeHasWireServer(`${head}eth0\t10813FA8\t0100000A\t0007\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n`));
  assert.ok(!routeHasWireServer(`${head}eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n`));
  assert.ok(!routeHasWireServer(undefined));
});

test('dhclient leases: last valid block wins, expired blocks skipped, never, BSD option-245', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  const text = lease('a8:3f:81:01', '0 2152/07/23 23:27:10') + lease('a8:3f:81:02', '4 2027/01/01 00:00:00') + lease('a8:3f:81:03', '4 2015/06/16 16:58:54');
  assert.equal(endpointFromDhclientLeases(text, now), '168.63.129.2');
  assert.equal(endpointFromDhclientLeases(lease('a8:3f:81:10', 'never'), now), '168.63.129.16');
  assert.equal(endpointFromDhclientLeases(lease('a8:3f:81:10', 'garbage'), now), undefined);
  assert.equal(endpointFromDhclientLeases(lease('a:3f:81:10', '0 2152/07/23 23:27:10'), now), '10.63.129.16');
  const bsd = 'lease {\n  option option-245 a8:3f:81:10;\n  expire 4 2152/07/23 23:27:10 UTC;\n}\n';
  assert.equal(endpointFromDhclientLeases(bsd, now), '168.63.129.16');
  assert.equal(endpointFromDhclientLeases('lease {\n  option routers 10.0.0.1;\n  expire never;\n}\n', now), undefined);
});

test('networkd lease: OPTION_245', () => {
  assert.equal(endpointFromNetworkdLease('ADDRESS=10.0.0.4\nOPTION_245=a83f8110\nROUTER=10.0.0.1\n'), '168.63.129.16');
  assert.equal(endpointFromNetworkdLease('ADDRESS=10.0.0.4\n'), undefined);
  assert.equal(endpointFromNetworkdLease('OPTION_245=a83f81\n'), undefined);
});

test('lease files: the newest file that yields an address wins, across clients', () => {
  const r = root();
  r.put('/var/lib/dhcp/dhclient.eth0.leases', lease('a8:3f:81:05', 'never'), 1000);
  r.put('/run/systemd/netif/leases/2', 'OPTION_245=0a000001\n', 2000);
  r.put('/var/lib/NetworkManager/dhclient-abc-eth0.lease', lease('a8:3f:81:07', 'never'), 1500);
  r.put('/var/lib/dhcp/unrelated.txt', lease('01:01:01:01', 'never'), 3000);
  assert.equal(endpointFromLeases(r.hostFs), '10.0.0.1');
  r.put('/var/db/dhclient.leases.vio0', 'lease {\n  option option-245 a8:3f:81:09;\n  expire never;\n}\n', 4000);
  assert.equal(endpointFromLeases(r.hostFs), '168.63.129.9');
  assert.equal(endpointFromLeases(root().hostFs), undefined);
});

test('discovery order: cached file, route, leases, well-known; EndpointDiscovery other than dhcp; skipCache', () => {
  const r = root();
  const lib = '/var/lib/waagent';
  assert.deepEqual(discoverEndpoint(r.hostFs, lib), { endpoint: { host: '168.63.129.16' }, source: 'default' });
  r.put('/var/lib/dhclient/dhclient-eth0.leases', lease('0a:3e:90:8c', 'never'));
  assert.deepEqual(discoverEndpoint(r.hostFs, lib), { endpoint: { host: '10.62.144.140' }, source: 'lease' });
  assert.equal(discoverEndpoint(r.hostFs, lib, { skipCache: true }).source, 'default');
  assert.equal(discoverEndpoint(r.hostFs, lib, { method: 'static' }).source, 'default');
  r.put('/proc/net/route', 'Iface\tDestination\neth0\t10813FA8\t0100000A\n');
  assert.deepEqual(discoverEndpoint(r.hostFs, lib), { endpoint: { host: '168.63.129.16' }, source: 'route' });
  saveEndpoint(r.hostFs, lib, { host: '127.0.0.1', port: 4567 });
  assert.equal(fs.readFileSync(path.join(r.dir, lib, 'WireServerEndpoint'), 'utf8'), '127.0.0.1:4567');
  assert.equal(fs.readFileSync(path.join(r.dir, lib, 'Protocol'), 'utf8'), 'WireProtocol');
  assert.equal(fs.statSync(path.join(r.dir, lib, 'WireServerEndpoint')).mode & 0o777, 0o600);
  assert.deepEqual(readCachedEndpoint(r.hostFs, lib), { host: '127.0.0.1', port: 4567 });
  assert.deepEqual(discoverEndpoint(r.hostFs, lib), { endpoint: { host: '127.0.0.1', port: 4567 }, source: 'cache' });
  assert.equal(discoverEndpoint(r.hostFs, lib, { skipCache: true }).source, 'route');
  r.put(`${lib}/WireServerEndpoint`, '');
  assert.equal(discoverEndpoint(r.hostFs, lib).source, 'route');
});
