// Resource disk (provisioning-and-os.md §5, DECISIONS.md D18) against a temp-dir root and a recording runner:
// detection (azure link, Gen1, Gen2, none), the Linux command sequences (fresh NTFS-typed disk, kept type, already
// mounted, GPT, blank disk, failed mounts, ntfs), the swap file (create, keep, resize, fallocate fallback), and the
// FreeBSD (gpart/camcontrol/newfs/mdconfig/geli) and OpenBSD (fdisk/disklabel/newfs/swapctl) sequences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeBed, type Handler, type TestBed } from './provision-helpers';
import { log, memoryAppender } from '../../src/core/log';
import { Config } from '../../src/config/config';
import { LinuxResourceDisk } from '../../src/os/resource-disk/linux';
import { FreeBSDResourceDisk, parseGpartList } from '../../src/os/resource-disk/freebsd';
import { findMount } from '../../src/os/resource-disk/platform';
import { activateResourceDisk, ensureSwapFile, platformFor, WARNING_FILE, WARNING_TEXT } from '../../src/daemon/resource-disk/activate';
import { resourceDiskDuty } from '../../src/daemon/resource-disk/duty';
import { loadDuties } from '../../src/daemon/duty-list';

const GEN1_IDE0 = '00000000-0000-8899-0000-000000000000';
const GEN1_IDE1 = '00000000-0001-8899-0000-000000000000';
const GEN2_SCSI = 'f8b3781a-1e82-4818-a1c3-63d806ec15bb';
const DATA_SCSI = 'f8b3781b-1e82-4818-a1c3-63d806ec15bb';

function mk(bed: TestBed, p: string, data?: string): void {
  if (data === undefined) { fs.mkdirSync(bed.p(p), { recursive: true }); return; }
  fs.mkdirSync(path.dirname(bed.p(p)), { recursive: true });
  fs.writeFileSync(bed.p(p), data);
}
function vmbusDevice(bed: TestBed, id: string, blockDirs: string[]): void {
  const d = `/sys/bus/vmbus/devices/${id}`;
  mk(bed, `${d}/device_id`, `{${id}}\n`);
  for (const b of blockDirs) mk(bed, `${d}/${b}`);
}
function gen1(bed: TestBed): void {
  vmbusDevice(bed, GEN1_IDE0, ['host0/target0:0:0/0:0:0:0/block/sda']);
  vmbusDevice(bed, GEN1_IDE1, ['host1/target1:0:1/1:0:1:0/block/sdb']);
}
function gen2(bed: TestBed): void {
  // A data-disk controller that sorts first and has a LUN 1 of its own: detection must match the device id.
  vmbusDevice(bed, '0a' + DATA_SCSI.slice(2), ['host3/target3:0:0/3:0:0:1/block/sdc']);
  vmbusDevice(bed, GEN2_SCSI, ['host0/target0:0:0/0:0:0:0/block/sda', 'host0/target0:0:0/0:0:0:1/block/sdb', 'host0/target0:0:0/0:0:0:2/block/sr0']);
}
function captureLog(): { lines: string[]; done(): void } {
  const a = memoryAppender();
  log.addAppender(a);
  return { lines: a.lines, done: () => log.removeAppender(a) };
}

/** A simulated Linux disk: MBR partition type, mounts, swap list; answers the commands the agent runs. */
interface DiskSim { type: string; label: 'msdos' | 'gpt' | 'none'; gptParts: number; mounts: string[]; swaps: string[]; mountFails: number; fallocateFails: boolean; swaponFails: number; rereadFails: boolean }
function linuxBed(conf: Record<string, string> = {}, sim: Partial<DiskSim> = {}): TestBed & { sim: DiskSim; cmds(): string[] } {
  const s: DiskSim = { type: '7', label: 'msdos', gptParts: 1, mounts: ['/dev/sda1 on / type ext4 (rw)', '/dev/sdba1 on /data type ext4 (rw)'], swaps: [], mountFails: 0, fallocateFails: false, swaponFails: 0, rereadFails: true, ...sim };
  const handler: Handler = (argv, _opts, bed) => {
    const [cmd, ...a] = argv;
    const j = a.join(' ');
    if (cmd === 'mount' && a.length === 0) return { stdout: s.mounts.join('\n') + '\n' };
    if (cmd === 'mount') {
      if (s.mountFails > 0) { s.mountFails--; return { code: 32, stderr: 'mount: wrong fs type, bad option, bad superblock' }; }
      const [dev, mp] = a.slice(-2);
      s.mounts.push(`${dev} on ${mp} type ${a[1]} (rw)`);
      return {};
    }
    if (cmd === 'parted' && j.endsWith('print')) {
      if (s.label === 'none') return { code: 1, stderr: 'Error: /dev/sdb: unrecognised disk label' };
      const parts = s.label === 'gpt' ? Array.from({ length: s.gptParts }, (_, i) => ` ${i + 1}      1049kB  100MB  99MB  primary`) : [' 1      1049kB  268MB  267MB  primary  ntfs'];
      return { stdout: `Model: Msft Virtual Disk\nDisk /dev/sdb: 268MB\nPartition Table: ${s.label}\n\nNumber  Start   End    Size   File system  Name  Flags\n${parts.join('\n')}\n` };
    }
    if (cmd === 'parted') return {};
    if (cmd === 'sfdisk' && a[0] === '--part-type' && a.includes('-n')) return { stdout: `${s.type}\n` };
    if (cmd === 'sfdisk' && a.includes('--part-type') && !a.includes('-n')) { s.type = a[a.length - 1]; return {}; }
    if (cmd === 'sfdisk' && a[0] === '-R') return s.rereadFails ? { code: 1, stderr: 'sfdisk: invalid option -- R' } : {};
    if (cmd === 'blockdev' && a[0] === '--getsize64') return { stdout: '268435456\n' };
    if (cmd === 'blockdev') return s.rereadFails ? { code: 1, stderr: 'BLKRRPART: Invalid argument' } : {};
    if (cmd === 'swapon' && a[0] === '-s') return { stdout: `Filename\tType\tSize\tUsed\tPriority\n${s.swaps.map((f) => `${f}\tfile\t1020\t0\t-2`).join('\n')}\n` };
    if (cmd === 'swapon') {
      if (s.swaponFails > 0) { s.swaponFails--; return { code: 255, stderr: `swapon: ${a[0]}: swapon failed: Invalid argument` }; }
      s.swaps.push(a[0]); return {};
    }
    if (cmd === 'swapoff') { s.swaps = s.swaps.filter((f) => f !== a[0]); return {}; }
    if (cmd === 'fallocate') {
      if (s.fallocateFails) return { code: 1, stderr: 'fallocate: fallocate failed: Operation not supported' };
      fs.truncateSync(bed.p(a[2]), Number(a[1])); return {};
    }
    return {};
  };
  const bed = makeBed({ 'ResourceDisk.Format': 'y', 'ResourceDisk.Filesystem': 'ext4', ...conf }, handler) as TestBed & { sim: DiskSim; cmds(): string[] };
  bed.sim = s;
  bed.cmds = () => bed.run.calls.map((c) => c.argv.join(' '));
  mk(bed, '/dev/sdb', ''); mk(bed, '/dev/sdb1', '');
  gen1(bed);
  return bed;
}
function platform(bed: TestBed): LinuxResourceDisk {
  const p = new LinuxResourceDisk(bed.ctx.os);
  p.partitionWaitMs = 1;
  return p;
}

test('detection: Gen1 IDE port 1, the old block:<name> layout, Gen2 SCSI LUN 1 by device id, the azure link, none', async () => {
  let bed = makeBed();
  try {
    gen1(bed);
    assert.equal(await platform(bed).findDisk(), '/dev/sdb');
  } finally { bed.cleanup(); }
  bed = makeBed();
  try {
    vmbusDevice(bed, GEN1_IDE1, ['host1/target1:0:1/1:0:1:0/block:sdb']);
    assert.equal(await platform(bed).findDisk(), '/dev/sdb');
  } finally { bed.cleanup(); }
  bed = makeBed();
  try {
    gen2(bed);
    assert.equal(await platform(bed).findDisk(), '/dev/sdb');
    mk(bed, '/dev/disk/azure');
    fs.symlinkSync('../../sdd', bed.p('/dev/disk/azure/resource'));
    mk(bed, '/dev/sdd', '');
    assert.equal(await platform(bed).findDisk(), '/dev/sdd', 'the udev link wins when present');
  } finally { bed.cleanup(); }
  bed = makeBed();
  try {
    vmbusDevice(bed, GEN1_IDE0, ['host0/target0:0:0/0:0:0:0/block/sda']);
    vmbusDevice(bed, DATA_SCSI, ['host3/target3:0:0/3:0:0:1/block/sdc']);
    assert.equal(await platform(bed).findDisk(), undefined);
  } finally { bed.cleanup(); }
});

test('mount table: whole device paths only, BSD partition suffixes', () => {
  const t = '/dev/sdba1 on /x type ext4 (rw)\n/dev/sdb1 on /mnt/resource type ext4 (rw,relatime)\n';
  assert.deepEqual(findMount(t, '/dev/sdb'), { device: '/dev/sdb1', mountPoint: '/mnt/resource' });
  assert.equal(findMount('/dev/sdba1 on /x type ext4 (rw)\n', '/dev/sdb'), undefined);
  assert.deepEqual(findMount('/dev/da1s1 on /mnt/resource (ufs, local)\n', '/dev/da1', /^(s\d+[a-h]?|p\d+)?$/), { device: '/dev/da1s1', mountPoint: '/mnt/resource' });
});

test('already mounted, from /proc/self/mounts (escaped mount point, /dev/sdba decoy): no command at all', async () => {
  const bed = linuxBed();
  try {
    mk(bed, '/proc/self/mounts', '/dev/sda1 / ext4 rw 0 0\n/dev/sdba1 /data ext4 rw 0 0\n/dev/sdb1 /mnt/my\\040disk ext4 rw,nodev 0 0\n');
    mk(bed, '/mnt/my disk');
    const r = await activateResourceDisk(bed.ctx, platform(bed));
    assert.deepEqual(r, { kind: 'mounted', disk: '/dev/sdb', mountPoint: '/mnt/my disk', already: true });
    assert.deepEqual(bed.cmds(), []);
    assert.equal(bed.read(`/mnt/my disk/${WARNING_FILE}`), WARNING_TEXT);
  } finally { bed.cleanup(); }
});

test('fresh NTFS-typed disk: retyped 83, formatted, mounted with -t and the options, warning file, in this order', async () => {
  const bed = linuxBed({ 'ResourceDisk.MountOptions': 'nodev,nosuid' });
  const logs = captureLog();
  try {
    const r = await activateResourceDisk(bed.ctx, platform(bed));
    assert.deepEqual(r, { kind: 'mounted', disk: '/dev/sdb', mountPoint: '/mnt/resource', already: false });
    assert.deepEqual(bed.cmds(), [
      'mount',
      'parted -s /dev/sdb print',
      'sfdisk --part-type -f /dev/sdb 1 -n',
      'sfdisk --no-tell-kernel --part-type /dev/sdb 1 83',
      'blockdev --rereadpt /dev/sdb',
      'mkfs.ext4 -F /dev/sdb1',
      'mount -t ext4 -o nodev,nosuid /dev/sdb1 /mnt/resource',
    ]);
    assert.equal(bed.read(`/mnt/resource/${WARNING_FILE}`), WARNING_TEXT);
    assert.ok(WARNING_TEXT.startsWith('WARNING: THIS IS A TEMPORARY DISK.\n\n'));
    assert.match(WARNING_TEXT, /jj672979/);
    assert.equal(bed.mode(`/mnt/resource/${WARNING_FILE}`), 0o644);
    assert.equal(bed.mode('/mnt/resource'), 0o755);
    assert.ok(logs.lines.some((l) => l.includes('Resource disk /dev/sdb is mounted at /mnt/resource with ext4')));
  } finally { logs.done(); bed.cleanup(); }
});

test('a partition of another type is kept: no retype, no mkfs (data survives a reboot); xfs gets -f', async () => {
  const bed = linuxBed({}, { type: '83' });
  try {
    await activateResourceDisk(bed.ctx, platform(bed));
    assert.ok(!bed.cmds().some((c) => c.startsWith('mkfs') || c.endsWith('/dev/sdb 1 83')), bed.cmds().join('\n'));
    assert.ok(bed.cmds().includes('mount -t ext4 /dev/sdb1 /mnt/resource'));
    // A second run: already mounted, nothing but the mount list.
    bed.run.calls.length = 0;
    const again = await activateResourceDisk(bed.ctx, platform(bed));
    assert.equal(again.kind === 'mounted' && again.already, true);
    assert.deepEqual(bed.cmds(), ['mount']);
  } finally { bed.cleanup(); }
  const x = linuxBed({ 'ResourceDisk.Filesystem': 'xfs' });
  try {
    await activateResourceDisk(x.ctx, platform(x));
    assert.ok(x.cmds().includes('mkfs.xfs -f /dev/sdb1'));
    assert.ok(x.cmds().includes('mount -t xfs /dev/sdb1 /mnt/resource'));
  } finally { x.cleanup(); }
});

test('already mounted elsewhere: nothing prepared, the warning file goes to that mount point', async () => {
  const bed = linuxBed({}, { mounts: ['/dev/sdba1 on /data type ext4 (rw)', '/dev/sdb1 on /mnt type ext4 (rw)'] });
  const logs = captureLog();
  try {
    mk(bed, '/mnt');
    const r = await activateResourceDisk(bed.ctx, platform(bed));
    assert.deepEqual(r, { kind: 'mounted', disk: '/dev/sdb', mountPoint: '/mnt', already: true });
    assert.deepEqual(bed.cmds(), ['mount']);
    assert.equal(bed.read(`/mnt/${WARNING_FILE}`), WARNING_TEXT);
    assert.ok(logs.lines.some((l) => l.includes('Resource disk [/dev/sdb1] is already mounted [/mnt]')));
  } finally { logs.done(); bed.cleanup(); }
});

test('GPT with several partitions is re-made; a blank disk gets an msdos label; both formatted', async () => {
  const g = linuxBed({}, { label: 'gpt', gptParts: 2 });
  try {
    await activateResourceDisk(g.ctx, platform(g));
    const c = g.cmds();
    for (const want of ['parted -s /dev/sdb rm 1', 'parted -s /dev/sdb rm 2', 'parted -s /dev/sdb mkpart primary 0% 100%', 'mkfs.ext4 -F /dev/sdb1']) assert.ok(c.includes(want), `${want} missing:\n${c.join('\n')}`);
    assert.ok(!c.some((x) => x.startsWith('sfdisk --part-type')));
  } finally { g.cleanup(); }
  const one = linuxBed({}, { label: 'gpt', gptParts: 1 });
  try {
    await activateResourceDisk(one.ctx, platform(one));
    assert.ok(!one.cmds().some((x) => x.startsWith('mkfs') || x.includes(' rm ')), one.cmds().join('\n'));
  } finally { one.cleanup(); }
  const b = linuxBed({}, { label: 'none' });
  try {
    await activateResourceDisk(b.ctx, platform(b));
    assert.ok(b.cmds().includes('parted -s /dev/sdb mklabel msdos mkpart primary 0% 100%'), b.cmds().join('\n'));
    assert.ok(b.cmds().includes('mkfs.ext4 -F /dev/sdb1'));
  } finally { b.cleanup(); }
});

test('a failing mount: re-read, retry, format as a last resort; never for ntfs; a clear error when all fails', async () => {
  const bed = linuxBed({}, { type: '83', mountFails: 2 });
  try {
    await activateResourceDisk(bed.ctx, platform(bed));
    const c = bed.cmds();
    const i = c.indexOf('mkfs.ext4 -F /dev/sdb1');
    assert.ok(i > 0 && c.filter((x) => x.startsWith('mount -t')).length === 3 && c.lastIndexOf('mount -t ext4 /dev/sdb1 /mnt/resource') > i, c.join('\n'));
  } finally { bed.cleanup(); }
  const ntfs = linuxBed({ 'ResourceDisk.Filesystem': 'ntfs' }, { mountFails: 5 });
  try {
    await assert.rejects(activateResourceDisk(ntfs.ctx, platform(ntfs)), /Could not mount \/dev\/sdb1 after syncing partition table: \[32\]/);
    assert.ok(!ntfs.cmds().some((x) => x.startsWith('mkfs') || x.includes('83')), ntfs.cmds().join('\n'));
  } finally { ntfs.cleanup(); }
  const missing = linuxBed();
  try {
    fs.rmSync(missing.p('/dev/sdb1'));
    const p = platform(missing);
    await assert.rejects(activateResourceDisk(missing.ctx, p), /Partition was not created \[\/dev\/sdb1\]/);
  } finally { missing.cleanup(); }
});

test('no resource disk: one INFO line, no command, no error', async () => {
  const bed = makeBed({ 'ResourceDisk.Format': 'y' });
  const logs = captureLog();
  try {
    vmbusDevice(bed, GEN1_IDE0, ['host0/target0:0:0/0:0:0:0/block/sda']);
    const r = await activateResourceDisk(bed.ctx, platform(bed));
    assert.deepEqual(r, { kind: 'none' });
    assert.equal(bed.run.calls.length, 0);
    const mine = logs.lines.filter((l) => /resource disk/i.test(l));
    assert.equal(mine.length, 1, mine.join(''));
    assert.match(mine[0], / INFO .*no resource disk/);
  } finally { logs.done(); bed.cleanup(); }
});

test('swap file: created 0600 with the exact size (fallocate), mkswap, swapon; kept when right; resized when not', async () => {
  const bed = linuxBed({ 'ResourceDisk.EnableSwap': 'y', 'ResourceDisk.SwapSizeMB': '3' }, { type: '83' });
  const logs = captureLog();
  try {
    const r = await activateResourceDisk(bed.ctx, platform(bed));
    assert.equal(r.kind === 'mounted' && r.swap, 'enabled');
    const f = '/mnt/resource/swapfile';
    assert.equal(fs.statSync(bed.p(f)).size, 3 * 1048576);
    assert.equal(bed.mode(f), 0o600);
    assert.ok(!fs.existsSync(bed.p(`${f}.tmp`)));
    const c = bed.cmds();
    const tail = c.slice(c.indexOf('mount -t ext4 /dev/sdb1 /mnt/resource') + 1);
    assert.deepEqual(tail, [`fallocate -l ${3 * 1048576} ${f}.tmp`, `mkswap ${f}`, `swapon ${f}`]);
    assert.ok(logs.lines.some((l) => l.includes(`Enabled 3072KB of swap at ${f}`)));

    // Second run: mounted, swap listed with the right size → nothing done but a mode fix if someone widened it.
    fs.chmodSync(bed.p(f), 0o644);
    bed.run.calls.length = 0;
    const again = await activateResourceDisk(bed.ctx, platform(bed));
    assert.equal(again.kind === 'mounted' && again.swap, 'unchanged');
    assert.deepEqual(bed.cmds(), ['mount', 'swapon -s']);
    assert.equal(bed.mode(f), 0o600);

    // New size: this file only is switched off (never swapoff -a), re-made with the new size, switched on.
    const conf = new Config('(test)', { 'ResourceDisk.Format': 'y', 'ResourceDisk.Filesystem': 'ext4', 'ResourceDisk.EnableSwap': 'y', 'ResourceDisk.SwapSizeMB': '5' });
    const ctx = { ...bed.ctx, conf };
    bed.run.calls.length = 0;
    const resized = await activateResourceDisk(ctx, platform(bed));
    assert.equal(resized.kind === 'mounted' && resized.swap, 'enabled');
    assert.deepEqual(bed.cmds(), ['mount', 'swapon -s', `swapoff ${f}`, `fallocate -l ${5 * 1048576} ${f}.tmp`, `mkswap ${f}`, `swapon ${f}`]);
    assert.equal(fs.statSync(bed.p(f)).size, 5 * 1048576);
    assert.equal(bed.mode(f), 0o600);
  } finally { logs.done(); bed.cleanup(); }
});

test('swap file: zeros when fallocate fails (size not a multiple of the chunk), zeros again when swapon refuses a fallocated file', async () => {
  const bed = linuxBed({}, { type: '83', fallocateFails: true });
  try {
    await activateResourceDisk(bed.ctx, platform(bed));
    const f = '/mnt/resource/swapfile';
    const bytes = 9 * 1048576; // 8 MiB chunk + 1 MiB remainder at its offset (§5.8 FIX)
    assert.equal(await ensureSwapFile(bed.ctx, platform(bed), f, bytes), 'enabled');
    const buf = fs.readFileSync(bed.p(f));
    assert.equal(buf.length, bytes);
    assert.ok(buf.every((b) => b === 0));
    assert.equal(bed.mode(f), 0o600);
    await assert.rejects(ensureSwapFile(bed.ctx, platform(bed), '/mnt/resource/other', 0), /Invalid swap size \[0\]/);
  } finally { bed.cleanup(); }
  const b2 = linuxBed({}, { type: '83', swaponFails: 1 });
  try {
    await activateResourceDisk(b2.ctx, platform(b2));
    const f = '/mnt/resource/swapfile';
    assert.equal(await ensureSwapFile(b2.ctx, platform(b2), f, 1048576), 'enabled');
    const c = b2.cmds();
    assert.deepEqual(c.slice(c.indexOf('mount -t ext4 /dev/sdb1 /mnt/resource') + 1), [`fallocate -l 1048576 ${f}.tmp`, `mkswap ${f}`, `swapon ${f}`, `mkswap ${f}`, `swapon ${f}`]);
    assert.equal(fs.statSync(b2.p(f)).size, 1048576);
    assert.ok(b2.sim.swaps.includes(f));
  } finally { b2.cleanup(); }
});

test('the duty: switched by ResourceDisk.Format, loaded lazily, a failure logged as "Failed to mount resource disk" and never thrown', async () => {
  const off = makeBed({ 'ResourceDisk.Format': 'n' });
  try {
    assert.equal(resourceDiskDuty.enabled(off.ctx), false);
    assert.deepEqual((await loadDuties(off.ctx)).map((d) => d.name).filter((n) => n === 'resource disk'), []);
  } finally { off.cleanup(); }
  const bed = linuxBed({}, { type: '83', mountFails: 9 });
  const logs = captureLog();
  try {
    assert.ok((await loadDuties(bed.ctx)).some((d) => d.name === 'resource disk'));
    assert.equal(resourceDiskDuty.enabled(bed.ctx), true);
    const ac = new AbortController();
    await resourceDiskDuty.start!({ ctx: bed.ctx, link: undefined as never, signal: ac.signal, provisioned: Promise.resolve() });
    assert.ok(logs.lines.some((l) => / ERROR .*Failed to mount resource disk Could not mount \/dev\/sdb1/.test(l)), logs.lines.join(''));
    assert.ok((await platformFor(bed.ctx)) instanceof LinuxResourceDisk);
  } finally { logs.done(); bed.cleanup(); }
});

// ---- FreeBSD ------------------------------------------------------------------------------------------------------

const GPART_LIST = 'Geom name: da0\nmodified: false\nstate: OK\nscheme: GPT\nProviders:\n1. Name: da0p1\n\nGeom name: da1\nmodified: false\nstate: OK\nscheme: MBR\nProviders:\n1. Name: da1s1\n';
function freebsdBed(conf: Record<string, string>, opts: { ufsPresent?: boolean; swaps?: string[]; md?: string } = {}): TestBed & { cmds(): string[] } {
  let formatted = opts.ufsPresent ?? false;
  const handler: Handler = (argv) => {
    const j = argv.join(' ');
    if (j === 'gpart list') return { stdout: GPART_LIST };
    if (j === 'sysctl dev.storvsc') return { stdout: 'dev.storvsc.0.%pnpinfo: classid=32412632-86cb-44a2-9b5c-50d1417354f5 deviceid=00000000-0000-8899-0000-000000000000\ndev.storvsc.1.%pnpinfo: classid=32412632-86cb-44a2-9b5c-50d1417354f5 deviceid=00000000-0001-8899-0000-000000000000\n' };
    if (j === 'camcontrol devlist -b') return { stdout: 'scbus0 on ata0 bus 0\nscbus1 on blkvsc0 bus 0\nscbus2 on blkvsc1 bus 0\nscbus3 on storvsc1 bus 0\n' };
    if (j === 'camcontrol devlist') return { stdout: '<Msft Virtual Disk 1.0>   at scbus1 target 0 lun 0 (da0,pass0)\n<Msft Virtual Disk 1.0>   at scbus2 target 1 lun 0 (pass1,da1)\n' };
    if (j === 'gpart show -p da1') return { stdout: '=>      63  2097089  da1  MBR  (1.0G)\n        63  2097089    da1s1  ntfs  (1.0G)\n' };
    if (j === 'mount') return { stdout: '/dev/da0p2 on / (ufs, local)\n' };
    if (argv[0] === 'mount') return formatted ? {} : { code: 1, stderr: 'mount: /dev/da1s1: Invalid argument' };
    if (argv[0] === 'newfs') { formatted = true; return {}; }
    if (j === 'mdconfig -l -v') return { stdout: opts.md ?? '' };
    if (j === 'swapctl -l') return { stdout: `Device:       1024-blocks     Used:\n${(opts.swaps ?? []).map((s) => `${s}  65536  0`).join('\n')}\n` };
    if (argv[0] === 'mdconfig' && argv[1] === '-a') return { stdout: 'md0\n' };
    return {};
  };
  const bed = makeBed({ 'ResourceDisk.Format': 'y', 'ResourceDisk.Filesystem': 'ufs', ...conf }, handler, { id: 'freebsd', name: 'freebsd', fullName: 'FreeBSD 14', version: '14.1' }) as TestBed & { cmds(): string[] };
  bed.cmds = () => bed.run.calls.map((c) => c.argv.join(' '));
  return bed;
}

test('FreeBSD: disk from storvsc/camcontrol, newfs only when mounting fails, swap through mdconfig and geli onetime', async () => {
  assert.deepEqual([...parseGpartList(GPART_LIST)], [['da0', 'GPT'], ['da1', 'MBR']]);
  const bed = freebsdBed({ 'ResourceDisk.EnableSwap': 'y', 'ResourceDisk.SwapSizeMB': '2', 'ResourceDisk.EnableSwapEncryption': 'y' });
  try {
    const p = await platformFor(bed.ctx);
    assert.ok(p instanceof FreeBSDResourceDisk);
    const r = await activateResourceDisk(bed.ctx, p);
    assert.equal(r.kind === 'mounted' && r.swap, 'enabled');
    const f = '/mnt/resource/swapfile';
    assert.deepEqual(bed.cmds(), [
      'gpart list', 'sysctl dev.storvsc', 'camcontrol devlist -b', 'camcontrol devlist', 'mount', 'gpart show -p da1',
      'mount -t ufs /dev/da1s1 /mnt/resource', 'newfs -U /dev/da1s1', 'mount -t ufs /dev/da1s1 /mnt/resource',
      `mdconfig -a -t vnode -f ${f}`, 'chmod 0600 /dev/md0', 'kldload aesni', 'kldload cryptodev', 'kldload geom_eli',
      'geli onetime -e AES-XTS -l 256 -d /dev/md0', 'chmod 0600 /dev/md0.eli', 'swapon /dev/md0.eli',
    ]);
    assert.equal(fs.statSync(bed.p(f)).size, 2 * 1048576, 'zeros written (no fallocate on FreeBSD)');
    assert.equal(bed.mode(f), 0o600);
    assert.equal(bed.read(`/mnt/resource/${WARNING_FILE}`), WARNING_TEXT);
  } finally { bed.cleanup(); }
  // After a reboot the ufs mounts at once (no newfs); an active swap of the right size is kept; no encryption → plain md.
  const again = freebsdBed({ 'ResourceDisk.EnableSwap': 'y', 'ResourceDisk.SwapSizeMB': '1' }, { ufsPresent: true, md: 'md0\tvnode\t  1M\t/mnt/resource/swapfile\n', swaps: ['/dev/md0'] });
  try {
    fs.mkdirSync(again.p('/mnt/resource'), { recursive: true });
    fs.writeFileSync(again.p('/mnt/resource/swapfile'), Buffer.alloc(1048576), { mode: 0o600 });
    const r = await activateResourceDisk(again.ctx, await platformFor(again.ctx));
    assert.equal(r.kind === 'mounted' && r.swap, 'unchanged');
    assert.ok(!again.cmds().some((c) => c.startsWith('newfs') || c.startsWith('swapon') || c.startsWith('geli')), again.cmds().join('\n'));
  } finally { again.cleanup(); }
  const ext4 = freebsdBed({ 'ResourceDisk.Filesystem': 'ext4' });
  try {
    await assert.rejects(activateResourceDisk(ext4.ctx, await platformFor(ext4.ctx)), /Unsupported filesystem type:ext4, only ufs is supported\./);
    assert.equal(ext4.run.calls.length, 0);
  } finally { ext4.cleanup(); }
});

test('OpenBSD: wd1a as ffs; fdisk, disklabel template on stdin, newfs -O2 when mounting fails; swap partition', async () => {
  let mounts = 0;
  const bed = makeBed({ 'ResourceDisk.Format': 'y', 'ResourceDisk.Filesystem': 'ufs2', 'ResourceDisk.EnableSwap': 'y', 'ResourceDisk.SwapSizeMB': '2048' }, (argv) => {
    if (argv.join(' ') === 'mount') return { stdout: '/dev/sd0a on / type ffs (local)\n' };
    if (argv[0] === 'mount') return mounts++ === 0 ? { code: 1, stderr: 'mount_ffs: /dev/wd1a: Invalid argument' } : {};
    if (argv.join(' ') === 'swapctl -l') return { stdout: 'Device      512-blocks     Used    Avail Capacity  Priority\n' };
    return {};
  }, { id: 'openbsd', name: 'openbsd', fullName: 'OpenBSD 7.5', version: '7.5' });
  try {
    const r = await activateResourceDisk(bed.ctx, await platformFor(bed.ctx));
    assert.equal(r.kind === 'mounted' && r.swap, 'enabled');
    assert.deepEqual(bed.run.calls.map((c) => c.argv.join(' ')), [
      'mount', 'mount -t ffs /dev/wd1a /mnt/resource', '/sbin/fdisk -yi wd1', 'disklabel -w -A -T /dev/stdin wd1',
      'newfs -O2 wd1a', 'mount -t ffs /dev/wd1a /mnt/resource', 'swapctl -l', 'swapctl -a /dev/wd1b',
    ]);
    assert.equal(bed.run.calls[3].opts.input, '/mnt/resource 1G-* 50%\nswap 1-2048M 50%\n');
  } finally { bed.cleanup(); }
});

test('partition-table re-read: blockdev --rereadpt; sfdisk -R only where blockdev is not installed', async () => {
  const bed = makeBed({}, (argv) => (argv[0] === 'blockdev' ? { code: -1, spawnError: 'blockdev: spawn blockdev ENOENT' } : {}));
  try {
    await platform(bed).rereadPartitionTable('/dev/sdb');
    assert.deepEqual(bed.run.calls.map((c) => c.argv.join(' ')), ['blockdev --rereadpt /dev/sdb', 'sfdisk -R /dev/sdb']);
  } finally { bed.cleanup(); }
  const ok = makeBed();
  try {
    await platform(ok).rereadPartitionTable('/dev/sdb');
    assert.deepEqual(ok.run.calls.map((c) => c.argv.join(' ')), ['blockdev --rereadpt /dev/sdb']);
  } finally { ok.cleanup(); }
});
