// Disk full, read-only file systems and missing tools under the built daemon in throwaway VMs (issue 10 "Then the
// campaign"; provisioning-and-os.md §3.1, §3.18, DECISIONS.md D16). Each case breaks the machine before the daemon
// starts (a small tmpfs with a filler file, or a read-only bind mount, over /var/lib/waagent, /etc or /var/log — the
// VM's own mount namespace; a program deleted from the image), then checks: a ProvisioningFailed whose description
// names the cause, the daemon still running, nothing committed half-written; then repairs the machine and checks that
// the daemon provisions by itself (Ready, one user). /var/log trouble must not fail provisioning at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { agentCommand, createVm, defaultWaagentConf, vmUnavailableReason, type RunResult, type Vm } from './vm';
import { defaultScenario, type Scenario } from '../fabric/scenario';

let skip = vmUnavailableReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (skip) console.log(`# skipping VM storage-fault tests: ${skip}`);

const LIB = '/var/lib/waagent';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const diag = (vm: Vm): string => `\n--- agent log ---\n${vm.readFile('/var/log/waagent.log')?.toString().slice(-3000) ?? '(none)'}`;
const count = (text: string | undefined, re: RegExp): number => (text ?? '').split('\n').filter((l) => re.test(l)).length;

async function sh(vm: Vm, script: string): Promise<string> {
  const r = await vm.exec(['sh', '-ec', script]);
  assert.equal(r.code, 0, `setup failed: ${script}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Waits until the fabric got a ProvisioningFailed (or `ms` passed); returns its description. */
async function failedDescription(vm: Vm, ms: number): Promise<string | undefined> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(200)) {
    const f = vm.simulator.summary()?.notReady.find((n) => n.subStatus === 'ProvisioningFailed');
    if (f) return f.description ?? '';
  }
  return undefined;
}

interface Case {
  name: string;
  scenario?: (sc: Scenario) => void;
  /** Breaks the machine (inside the VM, before the daemon starts). */
  breakIt: string;
  /** The reported description must match. */
  reason: RegExp;
  /** Checks while the fault lasts (the daemon runs). */
  during?: (vm: Vm, sc: Scenario) => void;
  /** Repairs the machine; the daemon must then provision by itself. Absent: the failure is final. */
  repair?: string;
}

/** A tmpfs of `kb` KiB over `dir` (its files copied in unless `empty`), filled up to `freeKb` KiB free. */
const TMPFS_OVER = (dir: string, kb: number, freeKb: number, empty = false): string => `
  mkdir -p /run/keep${dir}; ${empty ? '' : `cp -a ${dir}/. /run/keep${dir}/`}
  mount -t tmpfs -o size=${kb}k,mode=0755 fault ${dir}
  cp -a /run/keep${dir}/. ${dir}/
  avail=$(df -k --output=avail ${dir} | tail -1)
  [ "$avail" -gt ${freeKb} ] && dd if=/dev/zero of=${dir}/filler bs=1k count=$((avail - ${freeKb})) 2>/dev/null
  df -k ${dir} | tail -1`;

/** The OVF and CustomData the agent saved are whole (or absent): nothing committed truncated. */
function assertSavedComplete(vm: Vm, sc: Scenario): void {
  const saved = vm.readFile(`${LIB}/ovf-env.xml`)?.toString();
  if (saved !== undefined) assert.match(saved.trimEnd(), /<\/(\w+:)?Environment>$/, `${LIB}/ovf-env.xml committed truncated (${saved.length} bytes)`);
  const cd = vm.readFile(`${LIB}/CustomData`)?.toString();
  const want = [sc.customData!, Buffer.from(sc.customData!).toString('base64')];
  if (cd !== undefined) assert.ok(want.includes(cd), `${LIB}/CustomData committed truncated (${cd.length} of ${want[1].length} bytes)`);
}

const CASES: Case[] = [
  {
    name: `${LIB} nearly full (a 160 KiB OVF, 48 KiB free): clear error, nothing truncated, retried once space is freed`,
    scenario: (sc) => { sc.customData = `#!/bin/sh\n# ${randomBytes(90 * 1024).toString('base64')}\n# end\n`; },
    breakIt: `mkdir -p ${LIB}; ${TMPFS_OVER(LIB, 512, 48)}; chmod 0700 ${LIB}`,
    reason: /no space left|ENOSPC/,
    during: assertSavedComplete,
    repair: `rm -f ${LIB}/filler`,
  },
  {
    name: '/etc read-only: the description says so; retried after the remount read-write',
    breakIt: 'mount --bind /etc /etc; mount -o remount,bind,ro /etc',
    reason: /\/etc is on a read-only file system/,
    repair: 'mount -o remount,bind,rw /etc',
  },
  {
    name: '/etc full: the description says so; passwd/shadow/group intact; retried once space is freed',
    breakIt: TMPFS_OVER('/etc', 0, 8).replace('size=0k', `size=$(( $(du -sk /etc | cut -f1) + 512 ))k`),
    reason: /no space left on the file system of \/etc/,
    during: (vm) => {
      for (const f of ['/etc/passwd', '/etc/shadow', '/etc/group']) {
        const t = vm.readFile(f)?.toString() ?? '';
        assert.ok(t.startsWith('root:') && t.endsWith('\n'), `${f} damaged while /etc is full`);
        assert.ok(count(t, /^azureuser:/) <= 1, `${f}: duplicate user line`);
      }
    },
    repair: 'rm -f /etc/filler',
  },
  {
    name: 'useradd not installed: ProvisioningFailed saying so, the daemon stays up',
    breakIt: 'rm -f /usr/sbin/useradd /sbin/useradd',
    reason: /useradd is not installed/,
  },
];

async function runCase(c: Case): Promise<void> {
  const scenario = defaultScenario();
  c.scenario?.(scenario);
  const vm = await createVm({ scenario, waagentConf: defaultWaagentConf() });
  try {
    await sh(vm, c.breakIt);
    const running = vm.run(['-daemon'], { timeoutMs: c.repair ? 120_000 : 40_000, until: 'ready', graceMs: 1500 });
    let run: RunResult | undefined;
    void running.then((r) => { run = r; });
    const description = await failedDescription(vm, 30_000);
    assert.ok(description !== undefined, `no ProvisioningFailed within 30 s${diag(vm)}`);
    c.during?.(vm, scenario);
    assert.match(description!, c.reason, `unclear reason: ${description}`);
    assert.ok(!description!.includes(scenario.userPassword!), 'password in the description');
    await sleep(2000);
    assert.equal(run, undefined, `the daemon ended (exit ${run?.exitCode}, signal ${run?.signal})${diag(vm)}`);
    assert.ok(vm.agentPids().length > 0, 'the daemon is not running');
    if (!c.repair) {
      vm.kill('SIGTERM');
      const r = await running;
      assert.equal(r.exitCode, 0, `the daemon did not stop cleanly (exit ${r.exitCode}, signal ${r.signal})`);
      assert.equal(vm.simulator.summary()!.readyCount, 0, 'Ready although provisioning failed');
      assert.equal(vm.readFile(`${LIB}/provisioned`), undefined, 'marker written although provisioning failed');
      return;
    }
    await sh(vm, c.repair);
    const r = await running;
    assert.equal(r.reason, 'ready', `no Ready after the repair (reason ${r.reason})${diag(vm)}`);
    assert.equal(r.exitCode, 0);
    assert.ok(vm.readFile(`${LIB}/provisioned`), 'no marker');
    assert.equal(count(vm.readFile('/etc/passwd')?.toString(), /^azureuser:/), 1);
    assert.equal(count(vm.readFile('/etc/sudoers.d/waagent')?.toString(), /^azureuser /), 1);
    assert.match(vm.readFile('/var/log/waagent.log')?.toString() ?? '', /Provisioning failed on storage that may recover: trying again/);
    assertSavedComplete(vm, scenario);
    assert.deepEqual(vm.simulator.summary()!.failures, []);
  } finally {
    await vm.destroy({ removeFiles: !process.env.WAAGENT_KEEP_VM });
  }
}

for (const c of CASES) test(c.name, { skip, timeout: 200_000 }, () => runCase(c));

test('/var/log read-only, then /var/log full: provisioning is not affected, Ready', { skip, timeout: 200_000 }, async () => {
  for (const breakIt of ['mount --bind /var/log /var/log; mount -o remount,bind,ro /var/log', TMPFS_OVER('/var/log', 64, 0, true)]) {
    const vm = await createVm({ scenario: defaultScenario(), waagentConf: defaultWaagentConf() });
    try {
      await sh(vm, breakIt);
      const r = await vm.run(['-daemon'], { timeoutMs: 60_000, until: 'ready', graceMs: 1500 });
      assert.equal(r.reason, 'ready', `no Ready with a broken /var/log (${breakIt}): exit ${r.exitCode}, ${r.stderr.slice(-2000)}`);
      assert.equal(r.exitCode, 0);
      assert.ok(vm.readFile(`${LIB}/provisioned`));
      assert.ok(!vm.simulator.summary()!.notReady.some((n) => n.subStatus === 'ProvisioningFailed'));
    } finally {
      await vm.destroy({ removeFiles: true });
    }
  }
});

test(`${LIB} read-only: fatal start-up error naming it (exit 1, D16); after the remount a start provisions`, { skip, timeout: 200_000 }, async () => {
  const vm = await createVm({ scenario: defaultScenario(), waagentConf: defaultWaagentConf() });
  try {
    await sh(vm, `mkdir -p ${LIB}; mount --bind ${LIB} ${LIB}; mount -o remount,bind,ro ${LIB}`);
    const r = await vm.run(['-daemon'], { timeoutMs: 30_000 });
    assert.equal(r.reason, 'exit', `the daemon did not exit (${r.reason})${diag(vm)}`);
    assert.equal(r.exitCode, 1, `exit ${r.exitCode}${diag(vm)}`);
    assert.match(vm.readFile('/var/log/waagent.log')?.toString() ?? '', new RegExp(`Fatal start-up error: .*(read-only|EROFS).*${LIB}|Fatal start-up error: .*${LIB}.*(read-only|EROFS)`));
    assert.equal(vm.readFile('/var/run/waagent.pid'), undefined, 'PID file left behind');
    await sh(vm, `mount -o remount,bind,rw ${LIB}`);
    const again = await vm.run(['-daemon'], { timeoutMs: 60_000, until: 'ready', graceMs: 1500 });
    assert.equal(again.reason, 'ready', `no Ready after the remount${diag(vm)}`);
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});

test('visudo and ssh-keygen not installed: neither is needed — Ready, the sudoers line written', { skip, timeout: 200_000 }, async () => {
  const vm = await createVm({ scenario: defaultScenario(), waagentConf: defaultWaagentConf() });
  try {
    await sh(vm, 'rm -f /usr/sbin/visudo /usr/bin/ssh-keygen');
    const r = await vm.run(['-daemon'], { timeoutMs: 60_000, until: 'ready', graceMs: 1500 });
    assert.equal(r.reason, 'ready', `no Ready${diag(vm)}`);
    assert.equal(count(vm.readFile('/etc/sudoers.d/waagent')?.toString(), /^azureuser /), 1);
    assert.ok(vm.readFile('/etc/ssh/ssh_host_rsa_key.pub'), 'no host key');
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});
