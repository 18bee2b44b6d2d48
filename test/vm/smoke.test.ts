// Proves the test bed itself: a throwaway VM running a trivial script instead of the agent reads the DVD through the
// mount helper, writes files, talks to the simulator inside its namespace, cannot reach the real fabric addresses,
// and leaves the host untouched (files, host name, mounts, loop devices).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createVm, defaultWaagentConf, imageWrite, vmUnavailableReason } from './vm';
import { buildOvfEnv, defaultScenario } from '../fabric/scenario';

const skip = vmUnavailableReason();
if (skip) console.log(`# skipping VM smoke tests: ${skip}`);

const REPORT_JS = `
const http = require('node:http');
const net = require('node:net');
const fs = require('node:fs');
function get(path) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: 80, path, headers: { 'x-ms-version': '2012-11-30', 'x-ms-agent-name': 'WALinuxAgent' } }, (res) => {
      let b = ''; res.on('data', (c) => b += c); res.on('end', () => resolve(b));
    }).on('error', reject);
  });
}
function post(path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: 80, path, method: 'POST', headers: { 'x-ms-version': '2012-11-30', 'x-ms-agent-name': 'WALinuxAgent', 'Content-Type': 'text/xml;charset=utf-8' } }, (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', reject); req.end(body);
  });
}
function tryConnect(host, port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 3000 }, () => { s.destroy(); resolve('connected'); });
    s.on('error', (e) => resolve(e.code)); s.on('timeout', () => { s.destroy(); resolve('timeout'); });
  });
}
(async () => {
  const lease = fs.readFileSync('/var/lib/dhcp/dhclient.eth0.leases', 'utf8');
  const gs = await get('/machine/?comp=goalstate');
  const pick = (t) => new RegExp('<' + t + '>([^<]*)</' + t + '>').exec(gs)[1];
  const body = '<?xml version="1.0" encoding="utf-8"?><Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><GoalStateIncarnation>' + pick('Incarnation') + '</GoalStateIncarnation><Container><ContainerId>' + pick('ContainerId') + '</ContainerId><RoleInstanceList><Role><InstanceId>' + pick('InstanceId') + '</InstanceId><Health><State>Ready</State></Health></Role></RoleInstanceList></Container></Health>';
  const status = await post('/machine?comp=health', body);
  const wire = await tryConnect('168.63.129.16', 80);
  const imds = await tryConnect('169.254.169.254', 80);
  fs.writeFileSync('/root/smoke.json', JSON.stringify({ status, wire, imds, lease245: /option unknown-245 7f:0:0:1;/.test(lease) }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

function smokeScript(node: string): string {
  return `#!/bin/sh
set -e
mkdir -p /mnt/dvd
if mount -o ro -t udf,iso9660,vfat /dev/sr0 /mnt/dvd; then
  cp /mnt/dvd/ovf-env.xml /root/ovf-copy.xml
  umount /mnt/dvd
  echo mounted > /root/dvd-mode
else
  echo raw > /root/dvd-mode
fi
# An ISO 9660 volume descriptor starts at byte 32768 with "CD001" after one type byte.
dd if=/dev/sr0 bs=1 skip=32769 count=5 2>/dev/null > /root/dvd-magic
hostname > /root/hostname-seen
cat /proc/net/route > /root/route-seen
if mknod /root/evil-node b 252 0 2>/dev/null; then echo yes; else echo no; fi > /root/mknod-allowed
echo smoke > /etc/smoke-marker
rm /etc/smoke-delete-me
${node} /usr/local/lib/smoke-report.js
`;
}

/** path, size and mtime of everything under the host's /etc: any write there changes it. */
function etcFingerprint(): string {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: string[];
    try { entries = readdirSync(d); } catch { return; }
    for (const e of entries.sort()) {
      const p = `${d}/${e}`;
      try {
        const st = lstatSync(p);
        out.push(`${p} ${st.size} ${st.mtimeMs}`);
        if (st.isDirectory()) walk(p);
      } catch { /* raced */ }
    }
  };
  walk('/etc');
  return out.join('\n');
}

function hostMounts(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}

test('VM bed: DVD through the mount helper, simulator inside, fabric addresses blocked, host untouched', { skip, timeout: 120_000 }, async (t) => {
  const scenario = defaultScenario();
  const hostName = hostname();
  const etcBefore = etcFingerprint();
  const vm = await createVm({
    scenario,
    waagentConf: defaultWaagentConf(),
    agentBin: '/bin/true',
    extraSetup(image) {
      imageWrite(image, '/usr/local/bin/smoke.sh', smokeScript(process.execPath), 0o755);
      imageWrite(image, '/usr/local/lib/smoke-report.js', REPORT_JS);
      imageWrite(image, '/etc/smoke-delete-me', 'x');
    },
  });
  t.after(async () => { if (!process.env.WAAGENT_KEEP_VM) await vm.destroy({ removeFiles: true }); });
  let loops: string[] = [];
  let dir = '';
  try {
    loops = vm.loopDevices;
    dir = vm.dir;
    assert.equal(loops.length, 1);
    const r = await vm.run(['/usr/local/bin/smoke.sh'], { timeoutMs: 60_000 });
    assert.equal(r.exitCode, 0, `smoke script failed: ${r.stderr}`);
    assert.equal(vm.readFile('/root/dvd-mode')?.toString().trim(), 'mounted');
    assert.equal(vm.readFile('/root/ovf-copy.xml')?.toString(), buildOvfEnv(scenario));
    assert.equal(vm.readFile('/root/dvd-magic')?.toString(), 'CD001');
    assert.equal(vm.readFile('/root/mknod-allowed')?.toString().trim(), 'no', 'processes in the VM can create device nodes');
    assert.equal(vm.readFile('/root/hostname-seen')?.toString().trim(), 'vm-before-provisioning');
    assert.doesNotMatch(vm.readFile('/root/route-seen')!.toString(), /10813FA8/i);
    const smoke = JSON.parse(vm.readFile('/root/smoke.json')!.toString());
    assert.equal(smoke.status, 200);
    assert.equal(smoke.lease245, true);
    assert.notEqual(smoke.wire, 'connected');
    assert.notEqual(smoke.imds, 'connected');
    const s = vm.simulator.summary()!;
    assert.equal(s.readyCount, 1);
    assert.deepEqual(s.failures, []);
    const inc = s.incarnation;
    vm.simulator.bumpIncarnation();
    // a condition with a generous bound, not a fixed count of short sleeps (a loaded CI machine is slow to deliver signals)
    for (const end = Date.now() + 15_000; Date.now() < end && vm.simulator.summary()?.incarnation !== inc + 1;) await new Promise((r) => setTimeout(r, 50));
    assert.equal(vm.simulator.summary()?.incarnation, inc + 1, 'the simulator did not take the incarnation signal');
    const changed = vm.changedPaths();
    const find = (p: string) => changed.find((c) => c.path === p);
    assert.deepEqual(find('/etc/smoke-marker'), { path: '/etc/smoke-marker', kind: 'created', type: 'file' });
    assert.equal(find('/etc/smoke-delete-me')?.kind, 'deleted');
    assert.ok(!changed.some((c) => c.path.startsWith('/usr/local/bin')), 'image-layer files are not changes');
    // The host saw none of it.
    assert.equal(existsSync('/etc/smoke-marker'), false);
    assert.equal(existsSync('/root/smoke.json'), false);
    assert.equal(hostname(), hostName);
  } finally {
    await vm.destroy();
  }
  // Readable after destroy from the snapshot; no leftovers on the host.
  assert.equal(vm.readFile('/etc/smoke-marker')?.toString(), 'smoke\n');
  assert.equal(vm.readFile('/etc/smoke-delete-me'), undefined);
  const after = execFileSync('losetup', ['-a']).toString();
  // A loop device freed by us may already serve another test: look for our backing file, not the device name.
  assert.ok(!after.includes(dir), `a loop device of this VM is still attached: ${after}`);
  assert.equal(etcFingerprint(), etcBefore, "the host's /etc changed");
  assert.ok(!hostMounts().includes(dir), 'a VM mount leaked into the host');
  assert.equal(existsSync(`/proc/${vm.pid}`), false, 'PID 1 of the VM still runs');
});

test('VM bed without mount helpers: the DVD does not mount, the block device is still readable', { skip, timeout: 120_000 }, async () => {
  const vm = await createVm({
    scenario: defaultScenario(),
    waagentConf: defaultWaagentConf(),
    dvdHelpers: false,
    withSimulator: false,
    agentBin: '/bin/true',
    extraSetup(image) {
      imageWrite(image, '/usr/local/bin/smoke.sh', `#!/bin/sh
mkdir -p /mnt/dvd
if mount -o ro -t udf,iso9660,vfat /dev/sr0 /mnt/dvd 2>/root/mount-err; then echo mounted; else echo raw; fi > /root/dvd-mode
dd if=/dev/sr0 bs=1 skip=32769 count=5 2>/dev/null > /root/dvd-magic
`, 0o755);
    },
  });
  try {
    const r = await vm.run(['/usr/local/bin/smoke.sh'], { timeoutMs: 30_000 });
    assert.equal(r.exitCode, 0);
    assert.equal(vm.readFile('/root/dvd-mode')?.toString().trim(), 'raw');
    assert.equal(vm.readFile('/root/dvd-magic')?.toString(), 'CD001');
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});
