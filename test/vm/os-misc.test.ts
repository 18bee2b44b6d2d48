// Kernel, serial console and JIT users with the real executable in a throwaway VM (provisioning-and-os.md §7.3, §7.4,
// fabric-protocol.md §2.6): `-serialconsole` edits /etc/default/grub (and GRUB legacy's menu.lst) inside the VM and runs
// the grub update command — a logging stand-in at /usr/local/sbin/update-grub, since the real one cannot probe a boot
// disk here — a rerun changes nothing, a failing update leaves the file as it was; the SCSI timeouts are written to a
// fake /sys/block (a tmpfs inside the VM's mount namespace, never the host's sysfs) at start and to a disk hot-added
// while the daemon runs; a JIT user from the simulator's RemoteAccessInfo is created by the real useradd/chpasswd with
// its expiry, password and sudo line, and removed by userdel when the simulator drops it from the goal state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { agentCommand, createVm, defaultWaagentConf, vmUnavailableReason, type Vm } from './vm';
import { defaultScenario } from '../fabric/scenario';
import { cryptPassword } from '../../src/crypto/password-crypt';

let skip = vmUnavailableReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (skip) console.log(`# skipping VM kernel/serial-console/JIT tests: ${skip}`);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const agentLog = (vm: Vm): string => vm.readFile('/var/log/waagent.log')?.toString('utf8') ?? '';
const diag = (vm: Vm): string => `\n--- agent log ---\n${agentLog(vm).slice(-4000)}`;
async function sh(vm: Vm, script: string): Promise<string> {
  const r = await vm.exec(['sh', '-c', script]);
  assert.equal(r.code, 0, `${script}: ${r.stderr}`);
  return r.stdout.trim();
}
async function until(vm: Vm, what: string, pred: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${diag(vm)}`);
    await sleep(100);
  }
}

const GRUB = 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT="quiet splash"\nGRUB_CMDLINE_LINUX=""\n';
const STAND_IN = '#!/bin/sh\n# logging stand-in for update-grub (the real one probes the boot disk)\necho "update-grub $*" >> /run/update-grub.log\n' +
  '[ -f /run/update-grub.fail ] && { echo "grub-probe: error: cannot find a device for /" >&2; exit 1; }\nexit 0\n';

test('-serialconsole: grub2 and GRUB legacy edited in the VM, update-grub run once, rerun changes nothing, failure rolls back', { skip, timeout: 300_000 }, async () => {
  const vm = await createVm({ scenario: defaultScenario(), waagentConf: defaultWaagentConf(), withSimulator: false });
  try {
    vm.writeFile('/etc/default/grub', GRUB, 0o644);
    vm.writeFile('/usr/local/sbin/update-grub', STAND_IN, 0o755);
    const calls = (): string[] => vm.readFile('/run/update-grub.log')?.toString().split('\n').map((l) => l.trimEnd()).filter(Boolean) ?? [];

    // 1. a failing update: exit 1, the file as it was
    await sh(vm, 'touch /run/update-grub.fail');
    let r = await vm.run(['-serialconsole'], { timeoutMs: 60_000 });
    assert.equal(r.exitCode, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /not regenerated.*cannot find a device/);
    assert.equal(vm.readFile('/etc/default/grub')?.toString(), GRUB);
    await sh(vm, 'rm /run/update-grub.fail');

    // 2. the real run
    r = await vm.run(['-serialconsole'], { timeoutMs: 60_000 });
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Configured kernel to use ttyS0 as the boot console\./);
    const edited = vm.readFile('/etc/default/grub')!.toString();
    assert.equal(edited, GRUB.replace('"quiet splash"', '"quiet splash console=ttyS0 earlyprintk=ttyS0"'));
    assert.equal(await sh(vm, 'stat -c %a /etc/default/grub'), '644');
    assert.deepEqual(calls(), ['update-grub', 'update-grub']);

    // 3. again: nothing changes, no update
    r = await vm.run(['-serialconsole'], { timeoutMs: 60_000 });
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /already uses ttyS0/);
    assert.equal(vm.readFile('/etc/default/grub')!.toString(), edited);
    assert.equal(calls().length, 2);

    // 4. GRUB legacy: only `kernel` lines, nothing to regenerate
    await sh(vm, 'rm /etc/default/grub');
    vm.writeFile('/boot/grub/menu.lst', 'default 0\n# kernel lines below\ntitle CentOS 6\n\troot (hd0,0)\n\tkernel /vmlinuz-2.6.32 ro root=/dev/sda1\n\tinitrd /initramfs.img\n');
    r = await vm.run(['-serialconsole'], { timeoutMs: 60_000 });
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.equal(vm.readFile('/boot/grub/menu.lst')!.toString(),
      'default 0\n# kernel lines below\ntitle CentOS 6\n\troot (hd0,0)\n\tkernel /vmlinuz-2.6.32 ro root=/dev/sda1 console=ttyS0 earlyprintk=ttyS0\n\tinitrd /initramfs.img\n');
    assert.equal(calls().length, 2);
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});

test('SCSI timeouts: sd* disks of a fake /sys/block set at daemon start and a hot-added one within the period', { skip, timeout: 300_000 }, async () => {
  const vm = await createVm({
    scenario: defaultScenario(),
    waagentConf: defaultWaagentConf({ 'OS.RootDeviceScsiTimeout': '300', 'OS.RootDeviceScsiTimeoutPeriod': '1' }),
  });
  try {
    // A tmpfs over /sys/block in the VM's own mount namespace: the agent never reaches the host's disks.
    await sh(vm, 'mount -t tmpfs -o size=1m,mode=0755 fakeblock /sys/block && ' +
      'for d in sda sdb loop0; do mkdir -p /sys/block/$d/device; echo 30 > /sys/block/$d/device/timeout; done && echo 300 > /sys/block/sdb/device/timeout');
    const timeout = (d: string): Promise<string> => sh(vm, `cat /sys/block/${d}/device/timeout`);
    const run = vm.run(['-daemon'], { timeoutMs: 90_000 });
    await until(vm, 'sda timeout 300', async () => (await timeout('sda')) === '300');
    assert.equal(await timeout('sdb'), '300');
    assert.equal(await timeout('loop0'), '30', 'not a SCSI disk');
    await sh(vm, 'mkdir -p /sys/block/sdc/device && echo 30 > /sys/block/sdc/device/timeout');
    const added = Date.now();
    await until(vm, 'hot-added sdc timeout 300', async () => (await timeout('sdc')) === '300', 10_000);
    console.log(`# hot-added disk set ${Date.now() - added} ms after it appeared (period 1 s)`);
    vm.kill('SIGTERM');
    const res = await run;
    assert.equal(res.exitCode, 0, res.stderr);
    const log = agentLog(vm);
    assert.match(log, /Set block dev timeout: sda with timeout: 300/);
    assert.match(log, /Set block dev timeout: sdc with timeout: 300/);
    assert.doesNotMatch(log, /Set block dev timeout: sdb/);
    assert.equal((log.match(/Set block dev timeout: sda/g) ?? []).length, 1, 'set once, then left alone');
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});

test('JIT users end to end: created with expiry, password and sudo from the simulator; removed when it leaves the goal state', { skip, timeout: 300_000 }, async () => {
  const sc = defaultScenario();
  const password = 'J1t P@ss wörd & <xml>';
  sc.remoteAccess = { users: [{ name: 'jituser', password, expiration: 'Fri, 01 Jan 2100 00:00:00 GMT' }] };
  const vm = await createVm({ scenario: sc, waagentConf: defaultWaagentConf() });
  try {
    const line = (file: string, user: string): string[] | undefined =>
      vm.readFile(file)?.toString().split('\n').find((l) => l.startsWith(`${user}:`))?.split(':');
    const run = vm.run(['-daemon'], { timeoutMs: 120_000 });
    await until(vm, 'the JIT user', () => line('/etc/passwd', 'jituser') !== undefined && /^\$6\$/.test(line('/etc/shadow', 'jituser')?.[1] ?? ''));
    const pw = line('/etc/passwd', 'jituser')!;
    assert.equal(pw[4], 'JIT_Account');
    assert.equal(pw[5], '/home/jituser');
    assert.equal(await sh(vm, 'stat -c %U /home/jituser'), 'jituser');
    const sh6 = line('/etc/shadow', 'jituser')!;
    assert.equal(Number(sh6[7]), Date.UTC(2100, 0, 2) / 86_400_000, 'account expiry: the day after the expiration');
    assert.equal(cryptPassword(password, '6', /^\$6\$([^$]+)\$/.exec(sh6[1])![1]), sh6[1]);
    assert.match(vm.readFile('/etc/sudoers.d/waagent')?.toString() ?? '', /^jituser ALL=\(ALL\) ALL$/m);
    assert.doesNotMatch(agentLog(vm), /J1t P@ss/, 'the password never reaches the log');
    const s = vm.simulator.summary()!;
    assert.ok((s.counts.remoteAccess ?? 0) >= 1);
    assert.deepEqual(s.failures, []);

    // the simulator drops the user: a new incarnation without RemoteAccessInfo
    vm.simulator.setScenario({ ...sc, remoteAccess: undefined });
    vm.simulator.bumpIncarnation();
    await until(vm, 'the JIT user removed', () => line('/etc/passwd', 'jituser') === undefined && vm.stat('/home/jituser') === undefined);
    assert.equal(line('/etc/shadow', 'jituser'), undefined);
    assert.equal(vm.stat('/home/jituser'), undefined, 'home removed');
    assert.doesNotMatch(vm.readFile('/etc/sudoers.d/waagent')?.toString() ?? '', /jituser/);
    assert.ok(line('/etc/passwd', sc.userName), 'the provisioned user stays');
    vm.kill('SIGTERM');
    const res = await run;
    assert.equal(res.exitCode, 0, res.stderr);
    assert.match(agentLog(vm), /Removing remote access user 'jituser'/);
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});
