// RDMA (provisioning-and-os.md §7.5) and SCVMM (§8) with a recording runner on a temp-dir root — neither can be
// proven on real hardware here: the firmware version from the KVP pool, each distro's driver decision and commands
// (SUSE zypper, CentOS yum/rpm, Ubuntu alias or linux-azure), the reboot rule, the device set-up (dat.conf,
// /dev/hvnd_rdma, the interface by MAC), and SCVMM detection (already mounted, one mount attempt, the installer argv,
// the marker that makes a later start idle instead of detecting again).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { firmwareRdmaVersion, rdmaDriverFor, setupRdmaDevice, normalizeMac, updateDatConf } from '../../src/os/rdma';
import { checkRdmaDriver, rdmaDuty } from '../../src/daemon/rdma/duty';
import { detectScvmm, runScvmmStep, SCVMM_MARKER } from '../../src/daemon/scvmm';
import { makeBed, type Handler, type TestBed } from './provision-helpers';
import type { DistroInfo } from '../../src/os/detect';
import type { DutyEnv } from '../../src/daemon/duties';

function put(bed: TestBed, abs: string, data: string | Buffer, mode = 0o644): void {
  fs.mkdirSync(path.dirname(bed.p(abs)), { recursive: true });
  fs.writeFileSync(bed.p(abs), data, { mode });
}
const argvs = (bed: TestBed): string[] => bed.run.calls.map((c) => c.argv.join(' '));
const kvp = (ver: string): Buffer => Buffer.concat([Buffer.from('OtherKey\0\0\0value\0\0'), Buffer.from('NdDriverVersion'), Buffer.alloc(7), Buffer.from(`${ver}\0\0\0`)]);
function bedFor(distro: Partial<DistroInfo>, handler?: Handler, conf: Record<string, string> = {}): TestBed {
  return makeBed(conf, handler, distro);
}

test('firmware version: NdDriverVersion from .kvp_pool_0; missing pool or key → undefined', () => {
  const bed = bedFor({});
  try {
    assert.equal(firmwareRdmaVersion(bed.ctx.os), undefined);
    put(bed, '/var/lib/hyperv/.kvp_pool_0', kvp('142.0'));
    assert.equal(firmwareRdmaVersion(bed.ctx.os), '142.0');
    put(bed, '/var/lib/hyperv/.kvp_pool_0', 'NdDriverVersion 142.0');
    assert.equal(firmwareRdmaVersion(bed.ctx.os), undefined);
  } finally { bed.cleanup(); }
});

test('handlers by distro: SLES > 11, CentOS/RHEL, Ubuntu; others none (logged)', async () => {
  const cases: [Partial<DistroInfo>, string | undefined][] = [
    [{ id: 'sles', version: '15.5' }, 'SUSE'], [{ id: 'sles', version: '11.4' }, undefined], [{ id: 'centos', version: '7.9' }, 'CentOS'],
    [{ id: 'ubuntu', version: '22.04' }, 'Ubuntu'], [{ id: 'debian', version: '12' }, undefined]];
  for (const [d, want] of cases) {
    const bed = bedFor(d);
    try { assert.equal(rdmaDriverFor(bed.ctx.os)?.name, want, JSON.stringify(d)); } finally { bed.cleanup(); }
  }
  const deb = bedFor({});
  try { assert.equal(await checkRdmaDriver(deb.ctx), false); assert.equal(deb.run.calls.length, 0); } finally { deb.cleanup(); }
});

test('Ubuntu: the versioned module already resolves → nothing; modinfo finds it → alias written (replacing an old one)', async () => {
  const ok = bedFor({ id: 'ubuntu', version: '22.04' }, (a) => (a[0] === 'modprobe' ? { stdout: 'hv_network_direct_142_0\n' } : undefined));
  const alias = bedFor({ id: 'ubuntu', version: '22.04' }, (a) => (a[0] === 'modprobe' ? { stdout: 'hv_network_direct_141_0\n' } : a[0] === 'modinfo' ? { code: 0 } : undefined));
  try {
    for (const b of [ok, alias]) put(b, '/var/lib/hyperv/.kvp_pool_0', kvp('142.0'));
    assert.equal(await checkRdmaDriver(ok.ctx), false);
    assert.deepEqual(argvs(ok), ['modprobe -R hv_network_direct']);
    put(alias, '/etc/modprobe.d/vmbus-rdma.conf', '# rdma\nalias hv_network_direct hv_network_direct_141_0\n');
    assert.equal(await checkRdmaDriver(alias.ctx), false);
    assert.equal(alias.read('/etc/modprobe.d/vmbus-rdma.conf'), '# rdma\nalias hv_network_direct hv_network_direct_142_0\n');
    assert.deepEqual(argvs(alias), ['modprobe -R hv_network_direct', 'modinfo hv_network_direct_142_0']);
    await checkRdmaDriver(alias.ctx);
    assert.equal(alias.read('/etc/modprobe.d/vmbus-rdma.conf'), '# rdma\nalias hv_network_direct hv_network_direct_142_0\n');
  } finally { ok.cleanup(); alias.cleanup(); }
});

test('Ubuntu: no module → linux-azure update and reboot only with UpdateRdmaDriver on an -azure kernel, and only when newer', async () => {
  const h = (ver: string): Handler => (a) => {
    if (a[0] === 'modprobe') return { stdout: 'hv_network_direct\n' };
    if (a[0] === 'modinfo') return { code: 1 };
    if (a[0] === 'apt-cache') return { stdout: `Package: linux-azure\nVersion: ${ver}\n` };
    return undefined;
  };
  const off = bedFor({ id: 'ubuntu', version: '22.04' }, h('5.15.0.1050.40'));
  const newer = bedFor({ id: 'ubuntu', version: '22.04' }, h('5.15.0.1050.40'), { 'OS.UpdateRdmaDriver': 'y' });
  const same = bedFor({ id: 'ubuntu', version: '22.04' }, h('5.15.0.1042.38'), { 'OS.UpdateRdmaDriver': 'y' });
  try {
    for (const b of [off, newer, same]) { put(b, '/var/lib/hyperv/.kvp_pool_0', kvp('142.0')); put(b, '/proc/sys/kernel/osrelease', '5.15.0-1042-azure\n'); }
    assert.equal(await checkRdmaDriver(off.ctx), false);
    assert.ok(!argvs(off).some((a) => a.startsWith('apt')));
    assert.equal(await checkRdmaDriver(newer.ctx), true);
    assert.deepEqual(argvs(newer).slice(2), ['apt-get update', 'apt-cache show --no-all-versions linux-azure', 'apt-get -y install linux-azure', 'shutdown -r now']);
    assert.equal(await checkRdmaDriver(same.ctx), false);
    assert.ok(!argvs(same).some((a) => a.includes('install') || a.startsWith('shutdown')));
  } finally { off.cleanup(); newer.cleanup(); same.cleanup(); }
});

test('SUSE: installed matching package → nothing; old one → removed, repo version installed, module loaded, reboot', async () => {
  const table = (rows: string): Handler => (a) => (a[0] === 'zypper' && a[2] === 'se' ? { stdout: `S | Name | Type | Version | Arch | Repository\n--+---\n${rows}` } : undefined);
  const good = bedFor({ id: 'sles', version: '15.5' }, table('i | msft-rdma-kmp-default | package | 20160816.142.0_k4.12-3.1 | x86_64 | SLE\n'));
  const old = bedFor({ id: 'sles', version: '15.5' }, table('i | msft-rdma-kmp-default | package | 20150101.141.0_k4.12-1.1 | x86_64 | SLE\nv | msft-rdma-kmp-default | package | 20160816.142.0_k4.12-3.1 | x86_64 | SLE\n'));
  const none = bedFor({ id: 'sles', version: '15.5' }, table(''));
  try {
    for (const b of [good, old, none]) put(b, '/var/lib/hyperv/.kvp_pool_0', kvp('142.0'));
    assert.equal(await checkRdmaDriver(good.ctx), false);
    assert.equal(good.run.calls.length, 1);
    assert.equal(await checkRdmaDriver(old.ctx), true);
    assert.deepEqual(argvs(old).slice(1), ['zypper -n rm msft-rdma-kmp-default', 'zypper -n in msft-rdma-kmp-default-20160816.142.0_k4.12-3.1',
      'modprobe --first-time hv_network_direct', 'shutdown -r now']);
    put(none, '/opt/microsoft/rdma/msft-rdma-kmp-default-20160816.142.0.x86_64.rpm', 'rpm');
    put(none, '/opt/microsoft/rdma/msft-rdma-kmp-default-20150101.141.0.x86_64.rpm', 'rpm');
    assert.equal(await checkRdmaDriver(none.ctx), false, 'a fresh install that loads needs no reboot');
    assert.deepEqual(argvs(none).slice(1), ['zypper -n --no-refresh in /opt/microsoft/rdma/msft-rdma-kmp-default-20160816.142.0.x86_64.rpm', 'modprobe --first-time hv_network_direct']);
  } finally { good.cleanup(); old.cleanup(); none.cleanup(); }
});

test('CentOS: no KVP daemon → hypervkvpd installed and reboot; outdated driver → packages of the firmware build from rhel<MM>', async () => {
  const nokvp = bedFor({ id: 'centos', version: '7.9' });
  const outdated = bedFor({ id: 'centos', version: '7.9' }, (a) => {
    if (a[0] === 'rpm' && a[1] === '-q') return a[2] === 'microsoft-hyper-v-rdma' ? { stdout: 'microsoft-hyper-v-rdma-4.1.0.141-20150101.x86_64\n' } : { code: 1 };
    return undefined;
  });
  try {
    for (const b of [nokvp, outdated]) put(b, '/var/lib/hyperv/.kvp_pool_0', kvp('142.0'));
    assert.equal(await checkRdmaDriver(nokvp.ctx), true);
    assert.deepEqual(argvs(nokvp), ['yum install -y -q hypervkvpd', 'shutdown -r now']);
    put(outdated, '/proc/4242/comm', 'hypervkvpd\n');
    const dir = '/opt/microsoft/rdma/rhel79';
    put(outdated, `${dir}/kmod-microsoft-hyper-v-rdma-4.1.0-142.0-20160816.x86_64.rpm`, 'k');
    put(outdated, `${dir}/microsoft-hyper-v-rdma-4.1.0-142.0-20160816.x86_64.rpm`, 'u');
    assert.equal(await checkRdmaDriver(outdated.ctx), false);
    const calls = argvs(outdated);
    assert.ok(calls.includes('rpm -e --nodeps microsoft-hyper-v-rdma'), calls.join('\n'));
    assert.equal(calls.at(-2), `rpm -i ${dir}/kmod-microsoft-hyper-v-rdma-4.1.0-142.0-20160816.x86_64.rpm ${dir}/microsoft-hyper-v-rdma-4.1.0-142.0-20160816.x86_64.rpm`);
    assert.equal(calls.at(-1), 'modprobe hv_network_direct');
  } finally { nokvp.cleanup(); outdated.cleanup(); }
});

test('device set-up: dat.conf address, module, /dev/hvnd_rdma for a driver < 4.1, the interface by MAC up with ip/16', async () => {
  const bed = bedFor({}, (a) => (a[0] === 'modinfo' ? { stdout: 'filename: x\nversion:        4.0.11\n' } : undefined));
  try {
    const dat = '# DAT\nofa-v2-ib0 u2.0 nonthreadsafe default libdaplofa.so.2 dapl.2.0 "ib0 0" ""\nofa-v2-ib1 u2.0 nonthreadsafe default libdaplofa.so.2 dapl.2.0 "ib1 0" ""\n';
    put(bed, '/etc/rdma/dat.conf', dat);
    put(bed, '/dev/hvnd_rdma', '');
    put(bed, '/sys/class/net/eth0/address', '00:0d:3a:00:00:01\n');
    put(bed, '/sys/class/net/eth1/address', '00:15:5d:33:ff:0a\n');
    put(bed, '/usr/sbin/ip', '#!/bin/sh\n', 0o755);
    const mac = normalizeMac('00155D33FF0A')!;
    assert.equal(mac, '00:15:5d:33:ff:0a');
    const r = await setupRdmaDevice(bed.ctx.os, '172.16.1.4', mac, { sleep: async () => undefined, waitMs: 0 });
    assert.equal(r.iface, 'eth1');
    assert.match(bed.read('/etc/rdma/dat.conf'), /dapl\.2\.0 "172\.16\.1\.4 0" ""\nofa-v2-ib1 .*"ib1 0"/);
    assert.equal(bed.read('/dev/hvnd_rdma'), 'rdmaMacAddress="00:15:5d:33:ff:0a" rdmaIPv4Address="172.16.1.4"');
    assert.deepEqual(argvs(bed), ['modprobe hv_network_direct', 'modinfo hv_network_direct', 'ip link set eth1 up', 'ip addr replace 172.16.1.4/16 dev eth1']);
    assert.equal(await updateDatConf(bed.ctx.os, '172.16.1.4'), undefined, 'unchanged the second time');
    assert.equal(normalizeMac('zz'), undefined);
  } finally { bed.cleanup(); }
});

test('device set-up: /dev/hvnd_rdma never appears → error after the wait; the duty skips without SharedConfig addresses', async () => {
  const bed = bedFor({}, (a) => (a[0] === 'modinfo' ? { stdout: 'version: 4.0\n' } : undefined), { 'OS.EnableRDMA': 'y' });
  try {
    let slept = 0;
    await assert.rejects(setupRdmaDevice(bed.ctx.os, '10.0.0.5', '00:15:5d:33:ff:0a', { sleep: async () => { slept++; }, waitMs: 3000 }), /did not appear within 3 s/);
    assert.equal(slept, 3);
    const link = { wire: { endpoint: { host: '127.0.0.1' } }, goalState: { sharedConfig: { instanceName: 'x' } }, connected: async () => undefined } as unknown as DutyEnv['link'];
    bed.run.calls.length = 0;
    await rdmaDuty().start!({ ctx: bed.ctx, link, signal: new AbortController().signal, provisioned: Promise.resolve() });
    assert.deepEqual(argvs(bed), [], 'Debian: no driver handler; no addresses: no device set-up');
  } finally { bed.cleanup(); }
});

test('SCVMM: the medium already mounted → installer launched detached with "-p <mp>" as one argument; marker written', async () => {
  const bed = bedFor({}, undefined, { DetectScvmmEnv: 'y' });
  try {
    put(bed, '/proc/modules', 'ata_piix 1 0 - Live 0\n');
    for (const d of ['sda', 'sr0', 'sr1', 'cdrom', 'tty0']) put(bed, `/dev/${d}`, '');
    put(bed, '/proc/mounts', '/dev/sda1 / ext4 rw 0 0\n/dev/sr1 /media/scvmm\\040disk iso9660 ro 0 0\n');
    put(bed, '/media/scvmm disk/linuxosconfiguration.xml', '<x/>');
    const launched: string[][] = [];
    assert.equal(await detectScvmm(bed.ctx, { launch: async (a) => { launched.push(a); }, atapiPauseMs: 0 }), 'started');
    assert.deepEqual(launched, [['/bin/bash', '/media/scvmm disk/install', '-p /media/scvmm disk']]);
    assert.deepEqual(argvs(bed), ['mount -o ro -t udf,iso9660 /dev/sr0 /mnt/cdrom/secure', 'umount /mnt/cdrom/secure'], 'sr0 tried first and unmounted; sr1 was mounted already');
    assert.equal(bed.mode(`/var/lib/waagent/${SCVMM_MARKER}`), 0o600);
    // a later start: no detection, the daemon idles until stopped
    bed.run.calls.length = 0;
    const stop = new AbortController();
    const step = runScvmmStep(bed.ctx, stop.signal, { launch: async (a) => { launched.push(a); } });
    await new Promise((r) => setTimeout(r, 50));
    stop.abort();
    assert.equal(await step, 'exit');
    assert.equal(launched.length, 1);
    assert.equal(bed.run.calls.length, 0);
  } finally { bed.cleanup(); }
});

test('SCVMM: no medium with linuxosconfiguration.xml → continue; a found one → exit after the wait', async () => {
  const none = bedFor({});
  const found = bedFor({});
  try {
    put(none, '/proc/modules', 'ata_piix 1 0 - Live 0\n');
    put(none, '/dev/sr0', '');
    const outcome = await runScvmmStep(none.ctx, new AbortController().signal, { launch: async () => assert.fail('no launch'), atapiPauseMs: 0 });
    assert.equal(outcome, 'continue');
    assert.equal(fs.existsSync(none.p(`/var/lib/waagent/${SCVMM_MARKER}`)), false);

    put(found, '/proc/modules', 'ata_piix 1 0 - Live 0\n');
    put(found, '/dev/sr0', '');
    // mount "succeeds" (recording runner) and the medium's files are at the mount point
    put(found, '/mnt/cdrom/secure/linuxosconfiguration.xml', '<x/>');
    const t0 = Date.now();
    assert.equal(await runScvmmStep(found.ctx, new AbortController().signal, { launch: async () => undefined, atapiPauseMs: 0, waitMs: 100 }), 'exit');
    assert.ok(Date.now() - t0 >= 90);
    assert.ok(!argvs(found).includes('umount /mnt/cdrom/secure'), 'the installer medium stays mounted');
  } finally { none.cleanup(); found.cleanup(); }
});
