// The daemon's networking duties with the real executable in a throwaway VM (provisioning-and-os.md §6, fabric-protocol.md
// §1.4–§1.5, DECISIONS.md D17, D28): a real DHCP server (dnsmasq) behind eth0 answers the raw probe with option 245 (the
// simulated wire server, 127.0.0.1 inside the VM) and a router and static route the agent configures; real iptables or
// nft rules let root reach the wire server and keep an ordinary user out; the LB probe port is answered and follows the
// goal state; a second daemon start changes nothing; a real dhclient lease path and the host-name monitor; a DHCP client
// restart (§6.4) brings back the probe's routes (§6.3) that were deleted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { agentCommand, createVm, defaultWaagentConf, vmUnavailableReason, type Vm } from './vm';
import { defaultScenario } from '../fabric/scenario';

let skip = vmUnavailableReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (!skip) {
  for (const tool of ['dnsmasq', 'iptables', 'nft', 'dhclient', 'setpriv']) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }); } catch { skip = `network VM tests need '${tool}' (see .ci/apt-packages.txt)`; break; }
  }
}
if (skip) console.log(`# skipping VM network tests: ${skip}`);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const agentLog = (vm: Vm): string => vm.readFile('/var/log/waagent.log')?.toString('utf8') ?? '';
const diag = (vm: Vm): string => `\n--- agent log ---\n${agentLog(vm).slice(-4000)}`;

/** Waits until the agent log matches `re` (after `from` characters). */
async function waitLog(vm: Vm, re: RegExp, timeoutMs = 60_000, from = 0): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!re.test(agentLog(vm).slice(from))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${re} in the agent log${diag(vm)}`);
    await sleep(100);
  }
}

/** Tries a TCP connection inside the VM as root or as nobody: 'open', 'refused' or 'blocked' (no answer in 2 s). */
async function connect(vm: Vm, host: string, port: number, as: 'root' | 'nobody'): Promise<'open' | 'refused' | 'blocked'> {
  const probe = ['timeout', '2', 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`];
  const argv = as === 'root' ? probe : ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...probe];
  const r = await vm.exec(argv);
  if (r.code === 0) return 'open';
  return r.code === 124 ? 'blocked' : 'refused';
}

/** Our rules in the security table (`iptables -S`), in order. */
async function securityRules(vm: Vm): Promise<string[]> {
  const r = await vm.exec(['iptables', '-w', '-t', 'security', '-S', 'OUTPUT']);
  return r.stdout.split('\n').filter((l) => l.startsWith('-A OUTPUT'));
}

const EXPECTED_RULES = [
  '-A OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 53 -j ACCEPT',
  '-A OUTPUT -d 127.0.0.1/32 -p tcp -m owner --uid-owner 0 -j ACCEPT',
  '-A OUTPUT -d 127.0.0.1/32 -p tcp -m conntrack --ctstate INVALID,NEW -j DROP',
];

/** What `GET /` on the LB probe port answers inside the VM. */
async function lbProbe(vm: Vm, port: number): Promise<string> {
  const r = await vm.exec(['timeout', '5', 'bash', '-c', `exec 3<>/dev/tcp/192.0.2.4/${port}; printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' >&3; cat <&3`]);
  return r.code === 0 ? r.stdout : `(exit ${r.code}) ${r.stderr}`;
}

const routes = async (vm: Vm): Promise<string> => (await vm.exec(['ip', '-4', 'route', 'show', 'table', 'all'])).stdout;

test('DHCP probe, route repair, firewall, LB probe; a second start changes nothing; -setup-firewall with iptables and nft', { skip, timeout: 300_000 }, async () => {
  const sc = { ...defaultScenario(), lbProbePorts: [16001] };
  const vm = await createVm({
    scenario: sc, dhcpLease: false,
    waagentConf: defaultWaagentConf({ 'OS.EnableFirewall': 'y', 'OS.EnableFirewallPeriod': '1', 'LBProbeResponder': 'y' }),
  });
  try {
    // Before the agent: the wire server is open to everyone, there is no default route.
    assert.equal(await connect(vm, '127.0.0.1', 80, 'nobody'), 'open');
    assert.doesNotMatch(await routes(vm), /^default/m);
    const dhcp = await vm.startDhcpServer({ option245: '127.0.0.1', router: '192.0.2.1', option249: [16, 10, 9, 192, 0, 2, 1] });

    const running = vm.run(['-daemon'], { timeoutMs: 180_000 });
    await waitLog(vm, /Firewall: created the wire-server rules for 127\.0\.0\.1 \(iptables\)/);
    await waitLog(vm, /LB probe responder listening on 192\.0\.2\.4:16001/);
    const log1 = agentLog(vm);
    assert.match(log1, /DHCP probe: wire server 127\.0\.0\.1, router 192\.0\.2\.1, 1 static route/);
    assert.match(log1, /Wire server 127\.0\.0\.1 \(dhcp\) ready/);
    assert.match(dhcp.log(), /DHCPOFFER\(vm-peer0\) 192\.0\.2\.4/, 'dnsmasq did not answer the probe');
    // §6.2: the broadcast route was added for the probe and removed again; §6.3: router and option 249 configured.
    const rt = await routes(vm);
    assert.doesNotMatch(rt, /255\.255\.255\.255 dev eth0 (?!.*proto kernel)/m, `broadcast route left behind:\n${rt}`);
    assert.match(rt, /^default via 192\.0\.2\.1 dev eth0/m);
    assert.match(rt, /^10\.9\.0\.0\/16 via 192\.0\.2\.1 dev eth0/m);
    // §6.9: udp/68 open in the filter table.
    assert.match((await vm.exec(['iptables', '-S', 'INPUT'])).stdout, /-A INPUT -p udp -m udp --dport 68 -j ACCEPT/);

    // §6.8: root reaches the wire server and the host plugin, nobody does not; tcp/53 stays open for all (refused:
    // nothing listens there, but the packet was not dropped).
    assert.deepEqual(await securityRules(vm), EXPECTED_RULES);
    assert.equal(await connect(vm, '127.0.0.1', 80, 'root'), 'open');
    assert.equal(await connect(vm, '127.0.0.1', 32526, 'root'), 'open');
    assert.equal(await connect(vm, '127.0.0.1', 80, 'nobody'), 'blocked');
    assert.equal(await connect(vm, '127.0.0.1', 32526, 'nobody'), 'blocked');
    assert.equal(await connect(vm, '127.0.0.1', 53, 'nobody'), 'refused');

    // The periodic check repairs a damaged rule set (inconsistent → reset) within the period.
    await vm.exec(['iptables', '-w', '-t', 'security', '-D', 'OUTPUT', '-d', '127.0.0.1', '-p', 'tcp', '-m', 'owner', '--uid-owner', '0', '-j', 'ACCEPT']);
    await waitLog(vm, /rules for 127\.0\.0\.1 were inconsistent: reset them/, 15_000);
    assert.deepEqual(await securityRules(vm), EXPECTED_RULES);

    // D28: the LB probe is answered, and the listener follows the goal state.
    const answer = await lbProbe(vm, 16001);
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(answer, /Content-Length: 2\r\n/);
    assert.match(answer, /\r\n\r\nOK$/);
    vm.simulator.setScenario({ ...sc, lbProbePorts: [16002] });
    vm.simulator.bumpIncarnation();
    await waitLog(vm, /LB probe responder listening on 192\.0\.2\.4:16002/, 30_000);
    assert.match(await lbProbe(vm, 16002), /\r\n\r\nOK$/);
    assert.match(await lbProbe(vm, 16001), /^\(exit/, 'the old port still answers');

    vm.kill('SIGTERM');
    const r1 = await running;
    assert.equal(r1.exitCode, 0, `daemon exit ${r1.exitCode}${diag(vm)}`);
    assert.match(await lbProbe(vm, 16002), /^\(exit/, 'the listener outlived the daemon');

    // A second start: the same rules (no duplicates), no new routes.
    const routesBefore = await routes(vm);
    const logLen = agentLog(vm).length;
    const second = vm.run(['-daemon'], { timeoutMs: 120_000 });
    await waitLog(vm, /Firewall: the wire-server rules for 127\.0\.0\.1 are in place \(iptables\)/, 60_000, logLen);
    await sleep(2500); // a few periodic checks
    vm.kill('SIGTERM');
    assert.equal((await second).exitCode, 0);
    assert.deepEqual(await securityRules(vm), EXPECTED_RULES);
    assert.equal(await routes(vm), routesBefore);
    assert.doesNotMatch(agentLog(vm).slice(logLen), /were (missing|inconsistent)|Routes added/);

    // -setup-firewall=<ip>: nothing to do when in place; re-creates flushed rules.
    const once = await vm.run(['-setup-firewall=127.0.0.1'], { timeoutMs: 60_000 });
    assert.equal(once.exitCode, 0, once.stderr);
    assert.match(once.stdout, /already in place \(iptables\)/);
    await vm.exec(['iptables', '-w', '-t', 'security', '-F', 'OUTPUT']);
    assert.equal(await connect(vm, '127.0.0.1', 80, 'nobody'), 'open');
    const again = await vm.run(['-setup-firewall=127.0.0.1'], { timeoutMs: 60_000 });
    assert.equal(again.exitCode, 0, again.stderr);
    assert.match(again.stdout, /Firewall rules for 127\.0\.0\.1 created \(iptables\)/);
    assert.deepEqual(await securityRules(vm), EXPECTED_RULES);
    assert.equal(await connect(vm, '127.0.0.1', 80, 'nobody'), 'blocked');
    const bad = await vm.run(['-setup-firewall=1.2.3.4.5'], { timeoutMs: 60_000 });
    assert.equal(bad.exitCode, 1);

    // An image without iptables: nft (§6.8.3).
    await vm.exec(['iptables', '-w', '-t', 'security', '-F', 'OUTPUT']);
    const hostIptables = realpathSync('/usr/sbin/iptables');
    vm.writeFile('/usr/sbin/iptables', 'not installed\n', 0o644); // through the VM's own symlinks
    assert.equal(readFileSync(hostIptables).subarray(0, 4).toString('latin1'), '\x7fELF', 'the host\'s iptables was overwritten');
    const nft = await vm.run(['-setup-firewall=127.0.0.1'], { timeoutMs: 60_000 });
    assert.equal(nft.exitCode, 0, nft.stderr);
    assert.match(nft.stdout, /created \(nft\)/);
    const table = (await vm.exec(['nft', 'list', 'table', 'ip', 'walinuxagent'])).stdout;
    assert.match(table, /ip daddr 127\.0\.0\.1 tcp dport != 53 meta skuid != 0 ct state invalid,new counter packets \d+ bytes \d+ drop/);
    assert.equal(await connect(vm, '127.0.0.1', 80, 'root'), 'open');
    assert.equal(await connect(vm, '127.0.0.1', 80, 'nobody'), 'blocked');
    const nft2 = await vm.run(['-setup-firewall=127.0.0.1'], { timeoutMs: 60_000 });
    assert.match(nft2.stdout, /already in place \(nft\)/);
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});

test('real dhclient lease with option 245; the host-name monitor publishes a new name through a DHCP renewal', { skip, timeout: 240_000 }, async () => {
  const sc = defaultScenario();
  const vm = await createVm({
    scenario: sc, dhcpLease: false,
    waagentConf: defaultWaagentConf({ 'Provisioning.MonitorHostName': 'y', 'Provisioning.MonitorHostNamePeriod': '1' }),
  });
  try {
    const dhcp = await vm.startDhcpServer({ option245: '127.0.0.1', router: '192.0.2.1' });
    const lf = '/var/lib/dhcp/dhclient.eth0.leases';
    const dc = await vm.exec(['dhclient', '-1', '-v', '-lf', lf, '-pf', '/run/dhclient.eth0.pid', 'eth0']);
    assert.equal(dc.code, 0, `dhclient: ${dc.stderr}`);
    assert.match(vm.readFile(lf)?.toString() ?? '', /option unknown-245 7f:0:0:1;/);

    const running = vm.run(['-daemon'], { timeoutMs: 180_000 });
    await waitLog(vm, /Wire server 127\.0\.0\.1 \(lease\) ready/);
    await waitLog(vm, /Provisioning succeeded/);
    await sleep(1500);
    assert.equal(vm.readFile('/var/lib/waagent/published_hostname')?.toString(), sc.hostName);
    const from = agentLog(vm).length;
    await vm.exec(['hostname', 'renamed-vm']);
    await waitLog(vm, /Detected hostname change: .* -> renamed-vm/, 15_000, from);
    await waitLog(vm, /Published host name renamed-vm via dhclient renewal/, 30_000, from);
    assert.equal(vm.readFile('/etc/hostname')?.toString(), 'renamed-vm\n');
    assert.equal(vm.readFile('/var/lib/waagent/published_hostname')?.toString(), 'renamed-vm');
    // Debian's dhclient.conf already sends the live name (`send host-name = gethostname();`): left alone (§6.6).
    assert.equal(vm.changedPaths().some((c) => c.path === '/etc/dhcp/dhclient.conf'), false, 'dhclient.conf was rewritten');
    // The DHCP server saw the new name (the renewal sent it, the interface was never bounced).
    const end = Date.now() + 20_000;
    while (!/DHCP(REQUEST|DISCOVER|ACK)\(vm-peer0\).* renamed-vm/.test(dhcp.log()) && Date.now() < end) await sleep(200);
    assert.match(dhcp.log(), /\(vm-peer0\).* renamed-vm/, `dnsmasq never saw the new name:\n${dhcp.log().slice(-2000)}`);
    assert.doesNotMatch(agentLog(vm), /restarting interface/);
    vm.kill('SIGTERM');
    assert.equal((await running).exitCode, 0);
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});

test('DHCP client restart monitor (§6.4): deleted routes stay deleted while the client runs, come back when it restarts (§6.3)', { skip, timeout: 240_000 }, async () => {
  const vm = await createVm({
    scenario: defaultScenario(), dhcpLease: false,
    waagentConf: defaultWaagentConf({ 'OS.MonitorDhcpClientRestartPeriod': '1' }),
  });
  try {
    await vm.startDhcpServer({ option245: '127.0.0.1', router: '192.0.2.1', option249: [16, 10, 9, 192, 0, 2, 1] });
    // The distro's DHCP client, as the monitor sees it: a process named `dhclient` (a copy of sleep, so it touches no
    // lease or route), kept running by a supervisor that restarts it when it dies (as systemd or ifupdown would).
    assert.equal((await vm.exec(['sh', '-c', 'mkdir -p /run/standin && cp /bin/sleep /run/standin/dhclient'])).code, 0);
    const sup = await vm.exec(['setsid', '-f', 'sh', '-c', 'while [ ! -e /run/standin/stop ]; do /run/standin/dhclient 3600; done']);
    assert.equal(sup.code, 0, sup.stderr);
    const clientPid = async (): Promise<string> => (await vm.exec(['pgrep', '-x', 'dhclient'])).stdout.trim();
    let end = Date.now() + 10_000;
    while (!/^\d+$/.test(await clientPid()) && Date.now() < end) await sleep(100);
    const pid1 = await clientPid();
    assert.match(pid1, /^\d+$/, 'the stand-in DHCP client did not start');

    const running = vm.run(['-daemon'], { timeoutMs: 180_000 });
    await waitLog(vm, /DHCP probe: wire server 127\.0\.0\.1, router 192\.0\.2\.1, 1 static route/);
    await waitLog(vm, /Provisioning succeeded/);
    let rt = await routes(vm);
    assert.match(rt, /^default via 192\.0\.2\.1 dev eth0/m);
    assert.match(rt, /^10\.9\.0\.0\/16 via 192\.0\.2\.1 dev eth0/m);
    await sleep(2500); // a few monitor periods: the client's PID is recorded

    // Routes lost while the client keeps running: the monitor leaves the table alone (no restart, no repair).
    const from = agentLog(vm).length;
    assert.equal((await vm.exec(['ip', 'route', 'del', '10.9.0.0/16'])).code, 0);
    assert.equal((await vm.exec(['ip', 'route', 'del', 'default'])).code, 0);
    await sleep(3000);
    rt = await routes(vm);
    assert.doesNotMatch(rt, /^default|^10\.9\.0\.0\/16/m, `routes came back without a client restart:\n${rt}`);
    assert.doesNotMatch(agentLog(vm).slice(from), /Detected dhcp client restart|Dhcp client is not running/);

    // The client restarts (new PID): the monitor notices and restores the router and the option-249 route.
    assert.equal((await vm.exec(['kill', pid1])).code, 0);
    end = Date.now() + 10_000;
    let pid2 = '';
    while (!/^\d+$/.test(pid2 = await clientPid()) && Date.now() < end) await sleep(100);
    assert.match(pid2, /^\d+$/);
    assert.notEqual(pid2, pid1);
    await waitLog(vm, /EnvMonitor: Detected dhcp client restart\. Restoring routing table\./, 15_000, from);
    await waitLog(vm, /Routes restored: default via 192\.0\.2\.1; 10\.9\.0\.0\/16 via 192\.0\.2\.1/, 15_000, from);
    rt = await routes(vm);
    assert.match(rt, /^default via 192\.0\.2\.1 dev eth0/m);
    assert.match(rt, /^10\.9\.0\.0\/16 via 192\.0\.2\.1 dev eth0/m);
    // Once: the new PID is recorded, later periods change nothing.
    await sleep(2500);
    assert.equal(agentLog(vm).slice(from).match(/Detected dhcp client restart/g)?.length, 1);

    vm.kill('SIGTERM');
    assert.equal((await running).exitCode, 0, diag(vm));
  } finally {
    await vm.exec(['touch', '/run/standin/stop']).catch(() => undefined); // the supervisor ends with the VM
    await vm.destroy({ removeFiles: true });
  }
});
