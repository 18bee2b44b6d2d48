// The resource disk in the throwaway VM (provisioning-and-os.md §5, DECISIONS.md D18): a disk image with an MBR and
// one NTFS-typed partition as /dev/sdb (+ /dev/sdb1), a fake Hyper-V tree over /sys/bus (Gen1 and Gen2), real parted,
// sfdisk, mkfs.ext4, mount, fallocate and mkswap; swapon/swapoff are the VM's logging stand-ins (never the host's).
// Proves: detection, format + mount with the options, the warning file, the swap file, a second start that changes
// nothing, a disk that is never formatted again (restart after unmount, and a new VM on the same disk image), no
// resource disk → one log line, and Ready not waiting for a slow mkfs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { agentCommand, createVm, defaultWaagentConf, imageWrite, vmUnavailableReason, type Vm } from './vm';
import { defaultScenario } from '../fabric/scenario';

let skip = vmUnavailableReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (!skip) for (const t of ['sfdisk', 'parted', 'mkfs.ext4', 'mkswap', 'fallocate']) {
  try { execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }); } catch { skip = `'${t}' is not installed`; }
}
if (skip) console.log(`# skipping VM resource-disk tests: ${skip}`);

const WARNING = 'WARNING: THIS IS A TEMPORARY DISK.\n\n';
const SWAP_MB = 16;
const conf = (extra: Record<string, string> = {}): string => defaultWaagentConf({
  'ResourceDisk.Format': 'y', 'ResourceDisk.Filesystem': 'ext4', 'ResourceDisk.MountOptions': 'nodev,nosuid',
  'ResourceDisk.EnableSwap': 'y', 'ResourceDisk.SwapSizeMB': String(SWAP_MB), ...extra,
});

const agentLog = (vm: Vm): string => vm.readFile('/var/log/waagent.log')?.toString('utf8') ?? '';
const stamp = (line: string | undefined): number => (line ? Date.parse(line.split(' ')[0]) : NaN);
async function sh(vm: Vm, script: string): Promise<string> {
  const r = await vm.exec(['sh', '-c', script]);
  assert.equal(r.code, 0, `${script}: ${r.stderr}`);
  return r.stdout.trim();
}
/** Runs the daemon until Ready and until the resource-disk duty logged its outcome; returns this run's log. */
async function daemonRun(vm: Vm, done: RegExp): Promise<{ log: string; readyAt?: number; agentStartedAt: number }> {
  const before = agentLog(vm).length;
  const run = await vm.run(['-daemon'], { timeoutMs: 120_000, until: 'ready', graceMs: 3000 });
  let log = agentLog(vm).slice(before);
  assert.equal(run.reason, 'ready', `no Ready (exit ${run.exitCode}): ${run.stderr.slice(-1500)}\n${log.slice(-3000)}`);
  log = agentLog(vm).slice(before);
  assert.match(log, done, log.slice(-3000));
  return { log, readyAt: run.readyAt, agentStartedAt: run.agentStartedAt };
}

test('Gen1: NTFS-typed partition retyped, formatted, mounted with options; warning file; swap; restarts change nothing; never formatted again', { skip, timeout: 600_000 }, async () => {
  const keep = mkdtempSync('/tmp/waagent-rd-');
  const image = join(keep, 'disk.img');
  let vm = await createVm({ scenario: defaultScenario(), waagentConf: conf(), resourceDisk: { image, layout: 'gen1' } });
  try {
    // 1. First boot: the fresh disk.
    const first = await daemonRun(vm, /Enabled \d+KB of swap at \/mnt\/resource\/swapfile/);
    assert.match(first.log, /The partition of \/dev\/sdb is NTFS-typed \(7\): setting type 83/);
    assert.match(first.log, /Formatting \/dev\/sdb1 with ext4/);
    assert.match(first.log, /Resource disk \/dev\/sdb is mounted at \/mnt\/resource with ext4/);
    assert.equal(await sh(vm, 'sfdisk --part-type /dev/sdb 1'), '83');
    const [src, fstype, opts] = (await sh(vm, 'findmnt -n -o SOURCE,FSTYPE,OPTIONS /mnt/resource')).split(/\s+/);
    assert.equal(src, '/dev/sdb1');
    assert.equal(fstype, 'ext4');
    assert.ok(opts.split(',').includes('nodev') && opts.split(',').includes('nosuid'), opts);
    const warning = vm.readFile('/mnt/resource/DATALOSS_WARNING_README.txt')?.toString();
    assert.ok(warning?.startsWith(WARNING), warning);
    assert.match(warning!, /SUBJECT TO LOSS/);
    assert.equal(await sh(vm, 'stat -c "%s %a %u" /mnt/resource/swapfile'), `${SWAP_MB * 1048576} 600 0`);
    assert.equal(await sh(vm, 'stat -c %a /mnt/resource'), '755');
    let swap = vm.swapStandIn();
    assert.deepEqual(swap.active, [{ file: '/mnt/resource/swapfile', kb: SWAP_MB * 1024 - 4 }]);
    assert.ok(swap.calls.includes('swapon /mnt/resource/swapfile'), swap.calls.join('\n'));
    assert.ok(!swap.calls.some((c) => c.startsWith('swapoff')), swap.calls.join('\n'));
    const mounted = first.log.split('\n').find((l) => l.includes('Resource disk /dev/sdb is mounted at'));
    const starting = first.log.split('\n').find((l) => l.includes('starting on'));
    console.log(`# resource disk mounted ${stamp(mounted) - stamp(starting)} ms after the daemon's first log line, ` +
      `${stamp(mounted) - first.agentStartedAt} ms after the agent was spawned (256 MiB disk, mkfs.ext4 included)`);

    // 2. The daemon starts again on the running machine: nothing changes.
    await sh(vm, 'echo precious > /mnt/resource/data.txt');
    const callsBefore = swap.calls.length;
    const second = await daemonRun(vm, /Swap already enabled/);
    assert.match(second.log, /Resource disk \[\/dev\/sdb1\] is already mounted \[\/mnt\/resource\]/);
    assert.doesNotMatch(second.log, /Formatting|setting type 83|mkfs|mkswap/);
    swap = vm.swapStandIn();
    assert.deepEqual(swap.calls.slice(callsBefore), ['swapon -s']);
    assert.equal(await sh(vm, 'findmnt -n -o SOURCE /mnt/resource | wc -l'), '1', 'mounted twice');

    // 3. "Reboot" of the machine: swap gone, disk unmounted; the daemon mounts it again without formatting.
    await sh(vm, 'swapoff /mnt/resource/swapfile && umount /mnt/resource');
    const third = await daemonRun(vm, /Enabled \d+KB of swap/);
    assert.match(third.log, /The partition type is 83/);
    assert.doesNotMatch(third.log, /Formatting/);
    assert.equal(await sh(vm, 'cat /mnt/resource/data.txt'), 'precious');
    assert.equal(vm.swapStandIn().active.length, 1);
    await sh(vm, 'swapoff /mnt/resource/swapfile && umount /mnt/resource');
    await vm.destroy({ removeFiles: true });

    // 4. A new machine on the same disk image (a real reboot): still not formatted, the data is there.
    vm = await createVm({ scenario: defaultScenario(), waagentConf: conf(), resourceDisk: { image, layout: 'gen1' } });
    const fourth = await daemonRun(vm, /Enabled \d+KB of swap/);
    assert.doesNotMatch(fourth.log, /Formatting/);
    assert.equal(await sh(vm, 'cat /mnt/resource/data.txt'), 'precious');
    assert.equal(await sh(vm, 'stat -c "%s %a" /mnt/resource/swapfile'), `${SWAP_MB * 1048576} 600`);
  } finally {
    await vm.destroy({ removeFiles: true });
    rmSync(keep, { recursive: true, force: true });
  }
});

test('Gen2 (SCSI LUN 1 of the synthetic controller): found and mounted; a slow mkfs does not delay Ready; swap resized', { skip, timeout: 600_000 }, async () => {
  const vm = await createVm({
    scenario: defaultScenario(), waagentConf: conf({ 'ResourceDisk.EnableSwap': 'n' }), resourceDisk: { layout: 'gen2' },
    // mkfs that takes 6 s: Ready must arrive before the disk is mounted.
    extraSetup: (img) => imageWrite(img, '/usr/local/sbin/mkfs.ext4', '#!/bin/sh\nsleep 6\nexec /usr/sbin/mkfs.ext4 "$@"\n', 0o755),
  });
  try {
    const before = agentLog(vm).length;
    const run = await vm.run(['-daemon'], { timeoutMs: 120_000, until: 'ready', graceMs: 9000 });
    const log = agentLog(vm).slice(before);
    assert.equal(run.reason, 'ready', log.slice(-3000));
    const mounted = log.split('\n').find((l) => l.includes('Resource disk /dev/sdb is mounted at /mnt/resource with ext4'));
    assert.ok(mounted, log.slice(-3000));
    assert.ok(run.readyAt! < stamp(mounted), `Ready (${run.readyAt}) waited for the resource disk (${stamp(mounted)})`);
    assert.equal(await sh(vm, 'findmnt -n -o SOURCE /mnt/resource'), '/dev/sdb1');
    assert.deepEqual(vm.swapStandIn().calls, [], 'swap is off');

    // Switch swap on at 8 MiB, then change the size to 12 MiB: this file only is switched off and re-made.
    vm.writeFile('/etc/waagent.conf', conf({ 'ResourceDisk.SwapSizeMB': '8' }));
    await daemonRun(vm, /Enabled 8192KB of swap/);
    vm.writeFile('/etc/waagent.conf', conf({ 'ResourceDisk.SwapSizeMB': '12' }));
    const resized = await daemonRun(vm, /Enabled 12288KB of swap/);
    assert.match(resized.log, /switching it off to resize it/);
    const s = vm.swapStandIn();
    assert.ok(s.calls.includes('swapoff /mnt/resource/swapfile') && !s.calls.includes('swapoff -a'), s.calls.join('\n'));
    assert.deepEqual(s.active, [{ file: '/mnt/resource/swapfile', kb: 12 * 1024 - 4 }]);
    assert.equal(await sh(vm, 'stat -c "%s %a" /mnt/resource/swapfile'), `${12 * 1048576} 600`);
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});

test('no resource disk on this VM size: one INFO line, no error, Ready as usual', { skip, timeout: 300_000 }, async () => {
  const vm = await createVm({ scenario: defaultScenario(), waagentConf: conf(), resourceDisk: { layout: 'none' } });
  try {
    const { log } = await daemonRun(vm, /no resource disk/);
    const lines = log.split('\n').filter((l) => /resource disk/i.test(l));
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0], / INFO /);
    assert.doesNotMatch(log, / (ERROR|WARNING) .*(resource disk|swap)/i);
    assert.equal(await sh(vm, 'findmnt -n /mnt/resource || true'), '');
    assert.deepEqual(vm.swapStandIn().calls, []);
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});
