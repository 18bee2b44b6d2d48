// Networking without root (provisioning-and-os.md §6, fabric-protocol.md §1.4–§1.5): the firewall's commands and states
// with a recording runner, nft JSON parsing, the DHCP packet and reply validation, the route table, the persistence unit,
// and the DHCP probe's exchange against a UDP "server" on loopback; the DHCP client stopped around the probe where
// the distro is flagged for it (provisioning-and-os.md §6.2 step 3, §9.4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { recordingRunner } from '../../src/core/exec';
import { IptablesFirewall, NftFirewall, ensureFirewall, iptablesSupportsWait, nftStateFrom, nftRulesetText, checkFirewallIp } from '../../src/os/firewall';
import { networkSetupUnit, persistFirewall, networkSetupUnitPath } from '../../src/os/firewall-persist';
import { buildDiscover, parseReply, parseStaticRoutes, exchange, probeOnce, resetProbeState } from '../../src/fabric/dhcp';
import { parseRouteTable } from '../../src/os/net';
import { probeResponse } from '../../src/daemon/network/lb-probe';
import { makeBed } from './provision-helpers';

const RULES = [
  'OUTPUT -d 10.0.0.9 -p tcp --destination-port 53 -j ACCEPT',
  'OUTPUT -d 10.0.0.9 -p tcp -m owner --uid-owner 0 -j ACCEPT',
  'OUTPUT -d 10.0.0.9 -p tcp -m conntrack --ctstate INVALID,NEW -j DROP',
];

/** A runner that keeps an iptables security/OUTPUT chain in memory (-C/-A/-D with iptables' exit codes). */
function fakeIptables(initial: string[] = [], version = 'iptables v1.8.9 (nf_tables)') {
  const chain = [...initial];
  const run = recordingRunner((argv) => {
    if (argv[1] === '--version') return { stdout: `${version}\n` };
    const i = argv.findIndex((a) => ['-C', '-A', '-D'].includes(a));
    const rule = argv.slice(i + 1).join(' ');
    if (argv[i] === '-C') return { code: chain.includes(rule) ? 0 : 1 };
    if (argv[i] === '-A') { chain.push(rule); return { code: 0 }; }
    if (argv[i] === '-D') { const k = chain.indexOf(rule); if (k < 0) return { code: 1 }; chain.splice(k, 1); return { code: 0 }; }
    return { code: 2 };
  });
  return { run, chain };
}

test('iptables: rules of §6.8.2 in order with -w; check/setup/reset; a second ensure changes nothing', async () => {
  const { run, chain } = fakeIptables();
  const fw = new IptablesFirewall(run, '10.0.0.9');
  assert.equal(await fw.check(), 'missing');
  assert.equal(await ensureFirewall(fw), 'added');
  assert.deepEqual(chain, RULES);
  assert.ok(run.calls.filter((c) => c.argv[0] === 'iptables' && c.argv[1] !== '--version').every((c) => c.argv.slice(0, 4).join(' ') === 'iptables -w -t security'));
  assert.equal(run.calls.filter((c) => c.argv[1] === '--version').length, 1, 'version asked once');
  const before = run.calls.length;
  assert.equal(await ensureFirewall(fw), 'unchanged');
  assert.equal(run.calls.length - before, 3, 'the periodic check is three -C runs');
  chain.splice(1, 1); // someone deleted the owner rule
  chain.push(RULES[2]); // and a duplicate DROP appeared
  assert.equal(await fw.check(), 'inconsistent');
  assert.equal(await ensureFirewall(fw), 'reset');
  assert.deepEqual(chain, RULES);
});

test('iptables: legacy rule removed (every copy); no -w before 1.4.21; exit codes other than 0/1 are errors; foreign rules stay', async () => {
  const legacy = 'OUTPUT -d 10.0.0.9 -p tcp -m conntrack --ctstate INVALID,NEW -j ACCEPT';
  const other = 'OUTPUT -d 10.9.9.9 -j DROP';
  const { run, chain } = fakeIptables([legacy, other, legacy], 'iptables v1.4.7');
  const fw = new IptablesFirewall(run, '10.0.0.9');
  await fw.removeLegacy();
  assert.deepEqual(chain, [other]);
  assert.ok(run.calls.some((c) => c.argv.join(' ').startsWith('iptables -t security -D')));
  await fw.setup(); await fw.remove();
  assert.deepEqual(chain, [other]);
  assert.equal(iptablesSupportsWait('iptables v1.4.21'), true);
  assert.equal(iptablesSupportsWait('iptables v1.4.20'), false);
  assert.equal(iptablesSupportsWait('garbage'), false);
  const broken = new IptablesFirewall(recordingRunner((a) => (a[1] === '--version' ? { stdout: 'iptables v1.8.9' } : { code: 3, stderr: "can't initialize iptables table `security'" })), '10.0.0.9');
  await assert.rejects(broken.check(), /can't initialize/);
  assert.throws(() => new IptablesFirewall(run, '10.0.0.9; rm -rf /'), /Invalid wire server address/);
  assert.throws(() => checkFirewallIp('1.2.3.4.5'), /Invalid/);
});

const nftTables = (withOurs: boolean): string => JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6' } }, ...(withOurs ? [{ table: { family: 'ip', name: 'walinuxagent', handle: 1 } }] : []), { table: { family: 'inet', name: 'filter', handle: 2 } }] });
const ourRule = (ip: string) => ({ rule: { family: 'ip', table: 'walinuxagent', chain: 'output', handle: 2, expr: [
  { match: { op: '==', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: ip } },
  { match: { op: '!=', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 53 } },
  { match: { op: '!=', left: { meta: { key: 'skuid' } }, right: 0 } },
  { match: { op: 'in', left: { ct: { key: 'state' } }, right: ['invalid', 'new'] } },
  { counter: { packets: 0, bytes: 0 } }, { drop: null },
] } });
const nftTable = (...rules: object[]): string => JSON.stringify({ nftables: [{ metainfo: {} }, { table: { family: 'ip', name: 'walinuxagent' } }, ...rules] });

test('nft: ruleset text of §6.8.3, states from JSON (missing, configured, other address, two rules), setup through stdin', async () => {
  assert.match(nftRulesetText('10.0.0.9'), /add rule ip walinuxagent output ip daddr 10\.0\.0\.9 tcp dport != 53 skuid != 0 ct state invalid,new counter drop\n$/);
  assert.equal(nftStateFrom(nftTables(false), undefined, '10.0.0.9'), 'missing');
  assert.equal(nftStateFrom(nftTables(true), nftTable(ourRule('10.0.0.9')), '10.0.0.9'), 'configured');
  assert.equal(nftStateFrom(nftTables(true), nftTable(ourRule('10.0.0.8')), '10.0.0.9'), 'inconsistent');
  assert.equal(nftStateFrom(nftTables(true), nftTable(ourRule('10.0.0.9'), ourRule('10.0.0.9')), '10.0.0.9'), 'inconsistent');
  assert.equal(nftStateFrom(nftTables(true), nftTable(), '10.0.0.9'), 'inconsistent');
  let present = false;
  const run = recordingRunner((a) => {
    if (a.join(' ') === 'nft --json list tables') return { stdout: nftTables(present) };
    if (a.join(' ') === 'nft --json list table ip walinuxagent') return present ? { stdout: nftTable(ourRule('10.0.0.9')) } : { code: 1 };
    if (a.join(' ') === 'nft -f -') { present = true; return { code: 0 }; }
    if (a.join(' ') === 'nft delete table ip walinuxagent') { present = false; return { code: 0 }; }
    return { code: 1 };
  });
  const fw = new NftFirewall(run, '10.0.0.9');
  assert.equal(await ensureFirewall(fw), 'added');
  assert.equal(run.calls.find((c) => c.argv[1] === '-f')?.opts.input, nftRulesetText('10.0.0.9'));
  assert.equal(await ensureFirewall(fw), 'unchanged');
  await fw.remove();
  assert.equal(present, false);
  const bad = new NftFirewall(recordingRunner(() => ({ stdout: '{not json' })), '10.0.0.9');
  await assert.rejects(bad.check(), /cannot be read/);
});

test('persistence: the boot unit in /etc/systemd/system, written once, removed when enable fails; none without systemd', async () => {
  const fw = new IptablesFirewall(recordingRunner((a) => (a[1] === '--version' ? { stdout: 'iptables v1.8.9' } : {})), '10.0.0.9');
  const unitText = networkSetupUnit(['/usr/sbin/waagent'], '10.0.0.9');
  assert.match(unitText, /^ExecStart=\/usr\/sbin\/waagent -setup-firewall=10\.0\.0\.9$/m);
  assert.match(unitText, /^ConditionPathExists=\/usr\/sbin\/waagent$/m);
  assert.match(networkSetupUnit(['/usr/bin/node', '/opt/my agent/waagent.js'], '10.0.0.9'), /^ExecStart=\/usr\/bin\/node "\/opt\/my agent\/waagent.js" -setup-firewall=10.0.0.9$/m);
  const bed = makeBed({}, (argv) => (argv[0] === 'systemctl' ? { code: 0 } : undefined));
  try {
    const unit = networkSetupUnitPath(bed.ctx.os);
    assert.equal(unit, '/etc/systemd/system/walinuxagent-network-setup.service');
    assert.equal(await persistFirewall(bed.ctx.os, fw, ['/usr/sbin/waagent']), 'none', 'no systemd → no unit');
    fs.mkdirSync(bed.p('/run/systemd/system'), { recursive: true });
    assert.equal(await persistFirewall(bed.ctx.os, fw, ['/usr/sbin/waagent']), 'unit');
    assert.equal(bed.read(unit), unitText);
    assert.equal(bed.mode(unit), 0o644);
    const n = bed.run.calls.length;
    assert.equal(await persistFirewall(bed.ctx.os, fw, ['/usr/sbin/waagent']), 'unit');
    assert.equal(bed.run.calls.length, n, 'an unchanged unit: no command');
  } finally { bed.cleanup(); }
  const failing = makeBed({}, (argv) => (argv[0] === 'systemctl' && argv[1] === 'enable' ? { code: 1, stderr: 'nope' } : undefined));
  try {
    fs.mkdirSync(failing.p('/run/systemd/system'), { recursive: true });
    assert.equal(await persistFirewall(failing.ctx.os, fw, ['/usr/sbin/waagent']), 'none');
    assert.equal(fs.existsSync(failing.p(networkSetupUnitPath(failing.ctx.os))), false);
  } finally { failing.cleanup(); }
});

test('DHCP: the DISCOVER of §1.4 byte by byte; replies validated (length, xid, MAC, cookie); options 245, 3, 249', () => {
  const xid = Buffer.from([1, 2, 3, 4]);
  const mac = Buffer.from([0, 0x15, 0x5d, 1, 2, 3]);
  const p = buildDiscover(xid, mac, false);
  assert.equal(p.length, 244);
  assert.deepEqual([...p.subarray(0, 3)], [1, 1, 6]);
  assert.deepEqual([...p.subarray(4, 8)], [1, 2, 3, 4]);
  assert.equal(p[10], 0);
  assert.equal(buildDiscover(xid, mac, true)[10], 0x80);
  assert.deepEqual([...p.subarray(28, 34)], [...mac]);
  assert.deepEqual([...p.subarray(236, 244)], [0x63, 0x82, 0x53, 0x63, 53, 1, 1, 255]);
  assert.equal(p.filter((b, i) => ![0, 1, 2, 4, 5, 6, 7, 28, 29, 30, 31, 32, 33, 236, 237, 238, 239, 240, 241, 242, 243].includes(i) && b !== 0).length, 0);

  const reply = Buffer.alloc(300);
  p.copy(reply, 0, 0, 240);
  reply[0] = 2;
  const opts = [53, 1, 2, 3, 4, 192, 0, 2, 1, 245, 4, 0x0a, 0x3e, 0x90, 0x8c, 249, 7, 16, 10, 9, 192, 0, 2, 1, 255];
  Buffer.from(opts).copy(reply, 240);
  assert.deepEqual(parseReply(reply, p), { endpoint: '10.62.144.140', gateway: '192.0.2.1', routes: [{ network: '10.9.0.0', prefix: 16, gateway: '192.0.2.1' }] });
  assert.equal(parseReply(reply.subarray(0, 245), p), undefined, 'short reply rejected');
  const otherXid = Buffer.from(reply); otherXid[4] = 9;
  assert.equal(parseReply(otherXid, p), undefined);
  const otherMac = Buffer.from(reply); otherMac[33] = 9;
  assert.equal(parseReply(otherMac, p), undefined);
  const badCookie = Buffer.from(reply); badCookie[236] = 0;
  assert.equal(parseReply(badCookie, p), undefined);
  // hostile option lengths never throw
  const trunc = Buffer.from(reply); trunc[241] = 200;
  assert.deepEqual(parseReply(trunc, p), { routes: [] });
  assert.deepEqual(parseStaticRoutes(Buffer.from([0, 192, 0, 2, 1, 24, 10, 1, 2, 192, 0, 2, 1, 33, 1])), [
    { network: '0.0.0.0', prefix: 0, gateway: '192.0.2.1' }, { network: '10.1.2.0', prefix: 24, gateway: '192.0.2.1' }]);
});

test('DHCP exchange on loopback: the first valid reply wins over a stray one; silence gives undefined', async () => {
  const server = dgram.createSocket('udp4');
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', () => r()));
  const serverPort = server.address().port;
  const client = dgram.createSocket('udp4');
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  const clientPort = client.address().port;
  client.close();
  server.on('message', (msg, from) => {
    const stray = Buffer.alloc(300); // another client's reply
    server.send(stray, from.port, from.address);
    const ok = Buffer.alloc(300);
    msg.copy(ok, 0, 0, 240);
    Buffer.from([245, 4, 127, 0, 0, 1, 255]).copy(ok, 240);
    setTimeout(() => server.send(ok, from.port, from.address), 20);
  });
  try {
    const req = buildDiscover(Buffer.from([9, 9, 9, 9]), Buffer.from([1, 2, 3, 4, 5, 6]), true);
    const r = await exchange(req, 3000, { client: clientPort, server: serverPort, to: '127.0.0.1' });
    assert.equal(r?.endpoint, '127.0.0.1');
    server.removeAllListeners('message');
    const t0 = Date.now();
    assert.equal(await exchange(req, 300, { client: clientPort, server: serverPort, to: '127.0.0.1' }), undefined);
    assert.ok(Date.now() - t0 >= 250);
  } finally { server.close(); }
});

test('route table: header-driven columns, default route, lowest-metric gateway route', () => {
  const t = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' +
    'eth1\t00000000\t0100000A\t0003\t0\t0\t200\t00000000\t0\t0\t0\n' +
    'eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n' +
    'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n';
  const r = parseRouteTable(t);
  assert.equal(r.length, 3);
  assert.deepEqual(r[1], { iface: 'eth0', destination: '0.0.0.0', gateway: '192.0.2.1', flags: 3, metric: 100, mask: '0.0.0.0' });
  assert.equal(r[2].destination, '192.0.2.0');
  assert.equal(r[2].mask, '255.255.255.0');
  assert.deepEqual(parseRouteTable(''), []);
});

test('LB probe answer of D28', () => {
  const a = probeResponse(new Date(Date.UTC(2026, 0, 2, 3, 4, 5)));
  assert.equal(a, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/html\r\nDate: Fri, 02 Jan 2026 03:04:05 GMT\r\nConnection: close\r\n\r\nOK');
});

test('persistent-net rules: moved into Lib.Dir on generic Linux (a second run moves nothing), kept on Debian', () => {
  const bed = makeBed({}, undefined, { id: 'centos', name: 'centos', version: '7' });
  try {
    const f = bed.p('/etc/udev/rules.d/70-persistent-net.rules');
    fs.mkdirSync(bed.p('/etc/udev/rules.d'), { recursive: true });
    fs.writeFileSync(f, 'SUBSYSTEM=="net", NAME="eth0"\n');
    assert.deepEqual(bed.ctx.os.net.removePersistentNetRules('/var/lib/waagent'), ['/etc/udev/rules.d/70-persistent-net.rules']);
    assert.equal(fs.existsSync(f), false);
    assert.equal(bed.read('/var/lib/waagent/70-persistent-net.rules'), 'SUBSYSTEM=="net", NAME="eth0"\n');
    assert.deepEqual(bed.ctx.os.net.removePersistentNetRules('/var/lib/waagent'), []);
    // The saved copy survives passes with no rule file (restore needs it); a newer rule file replaces it.
    assert.equal(bed.read('/var/lib/waagent/70-persistent-net.rules'), 'SUBSYSTEM=="net", NAME="eth0"\n');
    fs.writeFileSync(f, 'SUBSYSTEM=="net", NAME="eth1"\n', { mode: 0o640 });
    assert.deepEqual(bed.ctx.os.net.removePersistentNetRules('/var/lib/waagent'), ['/etc/udev/rules.d/70-persistent-net.rules']);
    assert.equal(bed.read('/var/lib/waagent/70-persistent-net.rules'), 'SUBSYSTEM=="net", NAME="eth1"\n');
    // A generator masked by a link to /dev/null (not a regular file) stays masked.
    fs.mkdirSync(bed.p('/lib/udev/rules.d'), { recursive: true });
    fs.symlinkSync('/dev/null', bed.p('/lib/udev/rules.d/75-persistent-net-generator.rules'));
    assert.deepEqual(bed.ctx.os.net.removePersistentNetRules('/var/lib/waagent'), []);
    assert.equal(fs.readlinkSync(bed.p('/lib/udev/rules.d/75-persistent-net-generator.rules')), '/dev/null');
    // restore (uninstall path): back where it came from, with its mode; never over an existing file.
    assert.deepEqual(bed.ctx.os.net.restorePersistentNetRules('/var/lib/waagent'), ['/etc/udev/rules.d/70-persistent-net.rules']);
    assert.equal(bed.read('/etc/udev/rules.d/70-persistent-net.rules'), 'SUBSYSTEM=="net", NAME="eth1"\n');
    assert.equal(fs.statSync(f).mode & 0o777, 0o640);
    assert.equal(fs.existsSync(bed.p('/var/lib/waagent/70-persistent-net.rules')), false);
    assert.deepEqual(bed.ctx.os.net.restorePersistentNetRules('/var/lib/waagent'), []);
  } finally { bed.cleanup(); }
  const deb = makeBed();
  try {
    fs.mkdirSync(deb.p('/etc/udev/rules.d'), { recursive: true });
    fs.writeFileSync(deb.p('/etc/udev/rules.d/70-persistent-net.rules'), 'x\n');
    assert.deepEqual(deb.ctx.os.net.removePersistentNetRules('/var/lib/waagent'), []);
    assert.equal(fs.existsSync(deb.p('/etc/udev/rules.d/70-persistent-net.rules')), true);
  } finally { deb.cleanup(); }
});

test('persistent-net rules: moved across file systems (Lib.Dir on another mount: EXDEV) with mode kept', (t) => {
  const shm = fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/waagent-libdir-') : undefined;
  const bed = makeBed({}, undefined, { id: 'centos', name: 'centos', version: '7' });
  try {
    if (!shm || fs.statSync(shm).dev === fs.statSync(bed.p('/')).dev) { t.skip('no second file system (/dev/shm) beside the temp dir'); return; }
    fs.rmSync(bed.p('/var/lib/waagent'), { recursive: true, force: true });
    fs.mkdirSync(bed.p('/var/lib'), { recursive: true });
    fs.symlinkSync(shm, bed.p('/var/lib/waagent')); // Lib.Dir on another file system
    const f = bed.p('/etc/udev/rules.d/70-persistent-net.rules');
    fs.mkdirSync(bed.p('/etc/udev/rules.d'), { recursive: true });
    fs.writeFileSync(f, 'SUBSYSTEM=="net", NAME="eth0"\n', { mode: 0o600 });
    assert.throws(() => fs.renameSync(f, `${shm}/probe`), /EXDEV/);
    assert.deepEqual(bed.ctx.os.net.removePersistentNetRules('/var/lib/waagent'), ['/etc/udev/rules.d/70-persistent-net.rules']);
    assert.equal(fs.existsSync(f), false);
    assert.equal(fs.readFileSync(`${shm}/70-persistent-net.rules`, 'utf8'), 'SUBSYSTEM=="net", NAME="eth0"\n');
    assert.equal(fs.statSync(`${shm}/70-persistent-net.rules`).mode & 0o777, 0o600);
    assert.deepEqual(bed.ctx.os.net.restorePersistentNetRules('/var/lib/waagent'), ['/etc/udev/rules.d/70-persistent-net.rules']);
    assert.equal(fs.readFileSync(f, 'utf8'), 'SUBSYSTEM=="net", NAME="eth0"\n');
  } finally { bed.cleanup(); if (shm) fs.rmSync(shm, { recursive: true, force: true }); }
});

/** One probe attempt on a bed of `distro` against a DHCP "server" on loopback; the runner's commands and the packet's
 *  arrival in the order they happened. */
async function probeOn(distro: Record<string, string>, answer: boolean): Promise<{ events: string[]; endpoint?: string }> {
  const events: string[] = [];
  const bed = makeBed({}, (argv) => { events.push(argv.join(' ')); return { code: 0 }; }, distro);
  const server = dgram.createSocket('udp4');
  try {
    fs.mkdirSync(bed.p('/proc/net'), { recursive: true });
    fs.writeFileSync(bed.p('/proc/net/route'), 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n' +
      'eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n');
    fs.mkdirSync(bed.p('/sys/class/net/eth0'), { recursive: true });
    fs.writeFileSync(bed.p('/sys/class/net/eth0/address'), '00:0d:3a:01:02:03\n');
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', () => r()));
    server.on('message', (msg, from) => {
      events.push('probe packet');
      if (!answer) return;
      const ok = Buffer.alloc(300);
      msg.copy(ok, 0, 0, 240);
      Buffer.from([245, 4, 10, 0, 0, 9, 255]).copy(ok, 240);
      server.send(ok, from.port, from.address);
    });
    const probe = dgram.createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
    const clientPort = probe.address().port;
    probe.close();
    resetProbeState();
    const r = await probeOnce(bed.ctx.os, { timeoutMs: answer ? 5000 : 300, port: { client: clientPort, server: server.address().port, to: '127.0.0.1' } });
    return { events: events.filter((e) => !e.startsWith('iptables')), endpoint: r?.endpoint };
  } finally { server.close(); resetProbeState(); bed.cleanup(); }
}

test('DHCP probe: the DHCP client is stopped before and started after the probe on the flagged distros only (§6.2 step 3, §9.4)', async () => {
  const networkd = ['systemctl stop systemd-networkd', 'probe packet', 'systemctl start systemd-networkd'];
  const cases: [Record<string, string>, string[]][] = [
    [{ id: 'sles', name: 'sles', version: '15.5', fullName: 'SUSE Linux Enterprise Server 15 SP5' }, ['systemctl stop wickedd-dhcp4', 'probe packet', 'systemctl start wickedd-dhcp4']],
    [{ id: 'sles', name: 'sles', version: '11.4', fullName: 'SUSE Linux Enterprise Server 11 SP4' }, ['/sbin/service dhcpcd stop', 'probe packet', '/sbin/service dhcpcd start']],
    [{ id: 'flatcar', name: 'flatcar', version: '3815.2.0', fullName: 'Flatcar Container Linux' }, networkd],
    [{ id: 'arch', name: 'arch', version: '', fullName: 'Arch Linux' }, networkd],
    [{ id: 'clear-linux-os', name: 'clear-linux-os', version: '40000', fullName: 'Clear Linux OS' }, networkd],
    [{ id: 'mariner', name: 'mariner', version: '2.0', fullName: 'CBL-Mariner 2.0' }, networkd],
    // Flagged with no-op commands, and not flagged: the client keeps running, nothing is run around the probe.
    [{ id: 'alpine', name: 'alpine', version: '3.19', fullName: 'Alpine Linux' }, ['probe packet']],
    [{ id: 'fedora', name: 'fedora', version: '40', fullName: 'Fedora Linux 40' }, ['probe packet']],
    [{ id: 'debian', name: 'debian', version: '12', fullName: 'Debian GNU/Linux 12' }, ['probe packet']],
    [{ id: 'ubuntu', name: 'ubuntu', version: '22.04', fullName: 'Ubuntu 22.04' }, ['probe packet']],
    [{ id: 'rhel', name: 'rhel', version: '9.4', fullName: 'Red Hat Enterprise Linux 9.4' }, ['probe packet']],
  ];
  for (const [distro, want] of cases) {
    const r = await probeOn(distro, true);
    assert.equal(r.endpoint, '10.0.0.9', distro.fullName);
    assert.deepEqual(r.events, want, distro.fullName);
  }
  // No answer: the client is started again all the same.
  const silent = await probeOn({ id: 'sles', name: 'sles', version: '15.5', fullName: 'SUSE Linux Enterprise Server 15 SP5' }, false);
  assert.equal(silent.endpoint, undefined);
  assert.deepEqual(silent.events, ['systemctl stop wickedd-dhcp4', 'probe packet', 'systemctl start wickedd-dhcp4']);
});

test('DHCP client PIDs (§6.4, §9.4): a /proc scan by process name, SUSE\'s wickedd-dhcp4 and systemd-networkd included', () => {
  const bed = makeBed({}, undefined, { id: 'sles', name: 'sles', version: '15.5', fullName: 'SUSE Linux Enterprise Server 15 SP5' });
  try {
    const proc = (pid: number, comm: string): void => { fs.mkdirSync(bed.p(`/proc/${pid}`), { recursive: true }); fs.writeFileSync(bed.p(`/proc/${pid}/comm`), `${comm}\n`); };
    proc(812, 'wickedd-dhcp4');
    proc(90, 'systemd-network'); // systemd-networkd, cut to 15 characters by the kernel
    proc(77, 'sshd');
    proc(1200, 'dhclient-helper');
    fs.mkdirSync(bed.p('/proc/self'), { recursive: true });
    assert.deepEqual(bed.ctx.os.net.dhcpClientPids(), [90, 812]);
    assert.equal(bed.ctx.os.net.pidAlive(812), true);
    fs.rmSync(bed.p('/proc/812'), { recursive: true });
    assert.equal(bed.ctx.os.net.pidAlive(812), false);
    assert.deepEqual(bed.ctx.os.net.dhcpClientPids(), [90]);
  } finally { bed.cleanup(); }
});
