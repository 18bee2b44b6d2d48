// Kernel and boot configuration without root (provisioning-and-os.md §7.1–§7.4, §7.8): the kernel-option edit of
// /etc/default/grub, menu.lst and loader.conf, the regeneration command chosen per image (and the rollback when it
// fails), the NUMA version test, the Hyper-V entropy copy, the SCSI timeouts in a fake /sys/block, the FreeBSD sysctl,
// and loading ata_piix — all on a temp-dir root with a recording runner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addKernelOptions, editBootText, findBootConfig } from '../../src/os/boot-config';
import { loadAtapiDriver, needsNumaOff, seedEntropy, setScsiTimeouts } from '../../src/os/kernel';
import { kernelDuty, scsiTimeoutSetting } from '../../src/daemon/kernel/duty';
import { SERIAL_CONSOLE_OPTIONS } from '../../src/cli/serialconsole';
import { makeBed, type Handler, type TestBed } from './provision-helpers';
import type { DistroInfo } from '../../src/os/detect';
import type { DutyEnv } from '../../src/daemon/duties';

const OPTS = SERIAL_CONSOLE_OPTIONS;
const DEBIAN_GRUB = '# If you change this file, run update-grub\nGRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT="quiet splash"\nGRUB_CMDLINE_LINUX=""\n';

function put(bed: TestBed, abs: string, data: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(bed.p(abs)), { recursive: true });
  fs.writeFileSync(bed.p(abs), data, { mode });
}
/** An executable stand-in under the root, so that `os.which` finds it. */
function tool(bed: TestBed, name: string): void { put(bed, `/usr/sbin/${name}`, '#!/bin/sh\n', 0o755); }
function bedFor(distro: Partial<DistroInfo>, handler?: Handler, conf: Record<string, string> = {}): TestBed {
  return makeBed(conf, handler, distro);
}
const argvs = (bed: TestBed): string[] => bed.run.calls.map((c) => c.argv.join(' '));

test('grub2 edit: the value gets the options before its closing quote; a second edit finds nothing to do', () => {
  const cfg = { kind: 'grub2', file: '/etc/default/grub', key: 'GRUB_CMDLINE_LINUX_DEFAULT' } as const;
  const out = editBootText(cfg, DEBIAN_GRUB, OPTS)!;
  assert.match(out, /^GRUB_CMDLINE_LINUX_DEFAULT="quiet splash console=ttyS0 earlyprintk=ttyS0"$/m);
  assert.match(out, /^GRUB_CMDLINE_LINUX=""$/m, 'the other key is left alone');
  assert.equal(editBootText(cfg, out, OPTS), undefined);
  // an empty value, an unquoted value, and a missing key
  assert.match(editBootText(cfg, 'GRUB_CMDLINE_LINUX_DEFAULT=""\n', OPTS)!, /^GRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0 earlyprintk=ttyS0"$/m);
  assert.match(editBootText(cfg, 'GRUB_CMDLINE_LINUX_DEFAULT=quiet\n', OPTS)!, /^GRUB_CMDLINE_LINUX_DEFAULT=quiet console=ttyS0 earlyprintk=ttyS0$/m);
  assert.equal(editBootText(cfg, 'GRUB_TIMEOUT=1\n', OPTS), 'GRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0 earlyprintk=ttyS0"\n');
});

test('GRUB legacy edit: only lines whose first token is kernel (W20 matched any line containing "kernel")', () => {
  const cfg = { kind: 'grub-legacy', file: '/boot/grub/menu.lst' } as const;
  const menu = 'default 0\n# kernel options go below\ntitle CentOS (2.6.32)\n\troot (hd0,0)\n\tkernel /vmlinuz-2.6.32 ro root=/dev/sda1\n\tinitrd /initramfs.img\ntitle old\n\tkernel /vmlinuz-old ro\n';
  const out = editBootText(cfg, menu, OPTS)!;
  assert.match(out, /^\tkernel \/vmlinuz-2\.6\.32 ro root=\/dev\/sda1 console=ttyS0 earlyprintk=ttyS0$/m);
  assert.match(out, /^\tkernel \/vmlinuz-old ro console=ttyS0 earlyprintk=ttyS0$/m);
  assert.match(out, /^# kernel options go below$/m);
  assert.equal(editBootText(cfg, out, OPTS), undefined);
  assert.throws(() => editBootText(cfg, 'default 0\n', OPTS), /no kernel line/);
});

test('FreeBSD loader.conf: the comconsole variables replace existing keys; a second run changes nothing', () => {
  const cfg = { kind: 'freebsd-loader', file: '/boot/loader.conf' } as const;
  const out = editBootText(cfg, 'autoboot_delay="1"\nconsole="vidconsole"\n', OPTS)!;
  assert.equal(out, 'autoboot_delay="1"\nconsole="comconsole,vidconsole"\ncomconsole_speed="115200"\n');
  assert.equal(editBootText(cfg, out, OPTS), undefined);
});

test('which file and key: Debian GRUB_CMDLINE_LINUX_DEFAULT, RHEL/SUSE GRUB_CMDLINE_LINUX, menu.lst, loader.conf, none', () => {
  const deb = bedFor({});
  const rh = bedFor({ id: 'rhel', like: ['fedora'], version: '9.4', fullName: 'Red Hat Enterprise Linux 9.4' });
  const old = bedFor({ id: 'centos', version: '6.10' });
  const bsd = bedFor({ id: 'freebsd', version: '14.1' });
  try {
    assert.equal(findBootConfig(deb.ctx.os), undefined);
    put(deb, '/etc/default/grub', DEBIAN_GRUB);
    assert.deepEqual(findBootConfig(deb.ctx.os), { kind: 'grub2', file: '/etc/default/grub', key: 'GRUB_CMDLINE_LINUX_DEFAULT' });
    put(rh, '/etc/default/grub', 'GRUB_CMDLINE_LINUX="crashkernel=auto"\n');
    assert.deepEqual(findBootConfig(rh.ctx.os), { kind: 'grub2', file: '/etc/default/grub', key: 'GRUB_CMDLINE_LINUX' });
    put(old, '/boot/grub/menu.lst', 'kernel /vmlinuz\n');
    assert.deepEqual(findBootConfig(old.ctx.os), { kind: 'grub-legacy', file: '/boot/grub/menu.lst' });
    assert.deepEqual(findBootConfig(bsd.ctx.os), { kind: 'freebsd-loader', file: '/boot/loader.conf' });
  } finally { for (const b of [deb, rh, old, bsd]) b.cleanup(); }
});

test('-serialconsole on Debian: /etc/default/grub edited (mode kept), update-grub run once; a rerun runs nothing', async () => {
  const bed = bedFor({});
  try {
    put(bed, '/etc/default/grub', DEBIAN_GRUB, 0o640);
    tool(bed, 'update-grub'); tool(bed, 'grub-mkconfig');
    const r = await addKernelOptions(bed.ctx.os, OPTS);
    assert.deepEqual([r.changed, r.regenerated], [true, 'update-grub']);
    assert.match(bed.read('/etc/default/grub'), /GRUB_CMDLINE_LINUX_DEFAULT="quiet splash console=ttyS0 earlyprintk=ttyS0"/);
    assert.equal(bed.mode('/etc/default/grub'), 0o640);
    assert.deepEqual(argvs(bed).filter((a) => /grub/.test(a)), ['update-grub']);
    const again = await addKernelOptions(bed.ctx.os, OPTS);
    assert.equal(again.changed, false);
    assert.deepEqual(argvs(bed).filter((a) => /grub/.test(a)), ['update-grub']);
  } finally { bed.cleanup(); }
});

test('regeneration: grub2-mkconfig into the existing grub.cfg; grubby on BLS images; grub-mkconfig last', async () => {
  const rh = bedFor({ id: 'rhel', like: ['fedora'], version: '7.9' });
  const bls = bedFor({ id: 'fedora', version: '40' });
  const arch = bedFor({ id: 'arch' });
  try {
    put(rh, '/etc/default/grub', 'GRUB_CMDLINE_LINUX="crashkernel=auto rhgb quiet"\n');
    put(rh, '/boot/efi/EFI/rhel/grub.cfg', '# cfg\n');
    tool(rh, 'grub2-mkconfig');
    assert.equal((await addKernelOptions(rh.ctx.os, OPTS)).regenerated, 'grub2-mkconfig -o /boot/efi/EFI/rhel/grub.cfg');
    assert.match(rh.read('/etc/default/grub'), /^GRUB_CMDLINE_LINUX="crashkernel=auto rhgb quiet console=ttyS0 earlyprintk=ttyS0"$/m);

    put(bls, '/etc/default/grub', 'GRUB_CMDLINE_LINUX="rhgb"\nGRUB_ENABLE_BLSCFG=true\n');
    put(bls, '/boot/loader/entries/abc-6.8.conf', 'title Fedora\n');
    tool(bls, 'grubby'); tool(bls, 'grub2-mkconfig');
    await addKernelOptions(bls.ctx.os, OPTS);
    assert.deepEqual(argvs(bls), [`grubby --update-kernel=ALL --args=${OPTS}`]);

    put(arch, '/etc/default/grub', 'GRUB_CMDLINE_LINUX_DEFAULT="loglevel=3"\n');
    tool(arch, 'grub-mkconfig');
    await addKernelOptions(arch.ctx.os, OPTS);
    assert.deepEqual(argvs(arch).filter((a) => /grub/.test(a)), ['grub-mkconfig -o /boot/grub/grub.cfg']);
  } finally { for (const b of [rh, bls, arch]) b.cleanup(); }
});

test('a failing regeneration puts the file back (never half-changed); no grub tool at all is an error too', async () => {
  const bed = bedFor({}, (argv) => (argv[0] === 'update-grub' ? { code: 1, stderr: 'grub-probe: error: cannot find a device for /' } : undefined));
  const none = bedFor({});
  try {
    put(bed, '/etc/default/grub', DEBIAN_GRUB);
    tool(bed, 'update-grub');
    await assert.rejects(addKernelOptions(bed.ctx.os, OPTS), /not regenerated.*left unchanged.*cannot find a device/);
    assert.equal(bed.read('/etc/default/grub'), DEBIAN_GRUB);
    put(none, '/etc/default/grub', DEBIAN_GRUB);
    await assert.rejects(addKernelOptions(none.ctx.os, OPTS), /none of grubby, update-grub/);
    assert.equal(none.read('/etc/default/grub'), DEBIAN_GRUB);
    await assert.rejects(addKernelOptions(makeBed().ctx.os, OPTS), /no boot configuration found/);
  } finally { bed.cleanup(); none.cleanup(); }
});

test('GRUB legacy needs no regeneration; FreeBSD loader.conf is written', async () => {
  const old = bedFor({ id: 'centos', version: '6.10' });
  const bsd = bedFor({ id: 'freebsd', version: '14.1' });
  try {
    put(old, '/boot/grub/menu.lst', 'title x\n kernel /vmlinuz ro\n');
    assert.equal((await addKernelOptions(old.ctx.os, OPTS)).regenerated, 'nothing to regenerate');
    assert.equal(old.run.calls.length, 0);
    await addKernelOptions(bsd.ctx.os, OPTS);
    assert.equal(bsd.read('/boot/loader.conf'), 'console="comconsole,vidconsole"\ncomconsole_speed="115200"\n');
  } finally { old.cleanup(); bsd.cleanup(); }
});

test('NUMA: W20 disables it for kernels ≤ 2.6.37 only', () => {
  for (const r of ['2.6.37', '2.6.32-504.el6.x86_64', '2.6.18-398.el5', '2.4.20']) assert.equal(needsNumaOff(r), true, r);
  for (const r of ['2.6.38', '3.10.0-1160.el7.x86_64', '6.8.0-1015-azure', '4.1.0', 'garbage', '5']) assert.equal(needsNumaOff(r), false, r);
});

function dutyEnv(bed: TestBed): DutyEnv {
  return { ctx: bed.ctx, link: {} as DutyEnv['link'], signal: new AbortController().signal, provisioned: Promise.resolve() };
}

test('kernel duty start: numa=off on an old kernel, nothing on a new one; entropy copied into /dev/random', async () => {
  const old = bedFor({ id: 'centos', version: '6.2' });
  const cur = bedFor({});
  try {
    put(old, '/proc/sys/kernel/osrelease', '2.6.32-220.el6.x86_64\n');
    put(old, '/boot/grub/menu.lst', 'title x\n\tkernel /vmlinuz-2.6.32 ro\n');
    const oem = Buffer.from([1, 2, 3, 0, 255, 7]);
    put(old, '/sys/firmware/acpi/tables/OEM0', oem.toString('latin1'));
    fs.writeFileSync(old.p('/sys/firmware/acpi/tables/OEM0'), oem);
    put(old, '/dev/random', '');
    await kernelDuty().start!(dutyEnv(old));
    assert.match(old.read('/boot/grub/menu.lst'), /^\tkernel \/vmlinuz-2\.6\.32 ro numa=off$/m);
    assert.deepEqual(fs.readFileSync(old.p('/dev/random')), oem);
    await kernelDuty().start!(dutyEnv(old));
    assert.equal((old.read('/boot/grub/menu.lst').match(/numa=off/g) ?? []).length, 1, 'idempotent');

    put(cur, '/proc/sys/kernel/osrelease', '6.8.0-1015-azure\n');
    put(cur, '/etc/default/grub', DEBIAN_GRUB);
    await kernelDuty().start!(dutyEnv(cur));
    assert.equal(cur.read('/etc/default/grub'), DEBIAN_GRUB);
    assert.equal(cur.run.calls.length, 0);
    // no /dev/random under the root: nothing is created, nothing throws
    assert.equal(seedEntropy(cur.ctx.os), 0);
    assert.equal(fs.existsSync(cur.p('/dev/random')), false);
  } finally { old.cleanup(); cur.cleanup(); }
});

function sysBlock(bed: TestBed, devs: Record<string, string | null>): void {
  for (const [d, t] of Object.entries(devs)) {
    fs.mkdirSync(bed.p(`/sys/block/${d}/device`), { recursive: true });
    if (t !== null) fs.writeFileSync(bed.p(`/sys/block/${d}/device/timeout`), t);
  }
}

test('SCSI timeouts: every sd* disk set where it differs, others untouched; a second pass changes nothing', () => {
  const bed = bedFor({});
  try {
    sysBlock(bed, { sda: '30\n', sdb: '300\n', sdc: '60', loop0: '30\n', nvme0n1: '30\n', sdd: null });
    const changed = setScsiTimeouts(bed.ctx.os, '300');
    assert.deepEqual(changed, [{ dev: 'sda', from: '30', to: '300' }, { dev: 'sdc', from: '60', to: '300' }]);
    assert.equal(bed.read('/sys/block/sda/device/timeout'), '300');
    assert.equal(bed.read('/sys/block/sdb/device/timeout'), '300\n');
    assert.equal(bed.read('/sys/block/loop0/device/timeout'), '30\n');
    assert.equal(bed.read('/sys/block/nvme0n1/device/timeout'), '30\n');
    assert.equal(fs.existsSync(bed.p('/sys/block/sdd/device/timeout')), false, 'a disk without the attribute gets none');
    assert.deepEqual(setScsiTimeouts(bed.ctx.os, '300'), []);
  } finally { bed.cleanup(); }
});

test('SCSI timeouts: the setting (None, junk) and the duty period; tick picks up a hot-added disk', async () => {
  const none = bedFor({}, undefined, { 'OS.RootDeviceScsiTimeout': 'None' });
  const junk = bedFor({}, undefined, { 'OS.RootDeviceScsiTimeout': '30; rm -rf /' });
  const on = bedFor({}, undefined, { 'OS.RootDeviceScsiTimeout': '300', 'OS.RootDeviceScsiTimeoutPeriod': '5' });
  try {
    assert.equal(scsiTimeoutSetting(none.ctx), undefined);
    assert.equal(scsiTimeoutSetting(junk.ctx), undefined);
    const d = kernelDuty();
    assert.equal(d.periodMs!(none.ctx), undefined);
    assert.equal(d.periodMs!(on.ctx), 5000);
    sysBlock(on, { sda: '30\n' });
    await d.start!(dutyEnv(on));
    assert.equal(on.read('/sys/block/sda/device/timeout'), '300');
    sysBlock(on, { sdb: '30\n' });
    await d.tick!(dutyEnv(on));
    assert.equal(on.read('/sys/block/sdb/device/timeout'), '300');
  } finally { none.cleanup(); junk.cleanup(); on.cleanup(); }
});

test('FreeBSD: the CAM sysctl once, no tick; a failing sysctl is an error; OpenBSD: duty off', async () => {
  const bsd = bedFor({ id: 'freebsd', version: '14.1' }, undefined, { 'OS.RootDeviceScsiTimeout': '300' });
  const bad = bedFor({ id: 'freebsd', version: '14.1' }, (argv) => (argv[0] === 'sysctl' ? { code: 1, stderr: 'unknown oid' } : undefined), { 'OS.RootDeviceScsiTimeout': '300' });
  const obsd = bedFor({ id: 'openbsd', version: '7.5' });
  try {
    const d = kernelDuty();
    assert.equal(d.periodMs!(bsd.ctx), undefined);
    await d.start!(dutyEnv(bsd));
    assert.deepEqual(argvs(bsd), ['sysctl kern.cam.da.default_timeout=300']);
    await assert.rejects(kernelDuty().start!(dutyEnv(bad)), /unknown oid/);
    assert.equal(kernelDuty().enabled(obsd.ctx), false);
  } finally { bsd.cleanup(); bad.cleanup(); obsd.cleanup(); }
});

test('ata_piix: already loaded → nothing; else modprobe, then insmod of the .ko when modprobe fails', async () => {
  const loaded = bedFor({});
  let modules = 'ext4 1 0 - Live 0x0\n';
  const later = bedFor({}, (argv, _o, bed) => {
    if (argv[0] === 'modprobe') return { code: 1, stderr: 'modprobe: FATAL: Module ata_piix not found' };
    if (argv[0] === 'insmod') { modules += 'ata_piix 36864 0 - Live 0x0\n'; fs.writeFileSync(bed.p('/proc/modules'), modules); return { code: 0 }; }
    return undefined;
  });
  try {
    put(loaded, '/proc/modules', 'ata_piix 36864 0 - Live 0x0\n');
    assert.equal(await loadAtapiDriver(loaded.ctx.os, 0), true);
    assert.equal(loaded.run.calls.length, 0);
    put(later, '/proc/modules', modules);
    put(later, '/proc/sys/kernel/osrelease', '3.10.0\n');
    put(later, '/lib/modules/3.10.0/kernel/drivers/ata/ata_piix.ko', 'ko');
    assert.equal(await loadAtapiDriver(later.ctx.os, 0), true);
    assert.deepEqual(argvs(later), ['modprobe ata_piix', 'insmod /lib/modules/3.10.0/kernel/drivers/ata/ata_piix.ko']);
  } finally { loaded.cleanup(); later.cleanup(); }
});
