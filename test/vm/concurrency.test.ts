// Agent commands racing each other with the built executable in throwaway VMs (issue 10 "Concurrency";
// provisioning-and-os.md §10.9): a daemon and a one-shot `-provision` started at the same moment (both orders) — one
// provisions, the other steps aside or waits, and the machine ends as after one provisioning; and `-deprovision -force`
// while the daemon is in the middle of provisioning (a long CustomData) — the daemon is stopped first, deprovisioning
// then runs alone, and nothing of the interrupted provisioning (marker, OVF, temp file) survives it. Two daemons at
// once and SIGTERM during provisioning are in daemon-signals.test.ts; the PID-file rules with stand-in processes in
// test/unit/daemon.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { agentCommand, createVm, defaultWaagentConf, vmUnavailableReason, type Vm } from './vm';
import { defaultScenario } from '../fabric/scenario';

let skip = vmUnavailableReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (skip) console.log(`# skipping VM concurrency tests: ${skip}`);

const LIB = '/var/lib/waagent';
const W = '/usr/sbin/waagent';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const count = (text: string | undefined, re: RegExp): number => (text ?? '').split('\n').filter((l) => re.test(l)).length;
const diag = (vm: Vm, extra = ''): string => `\n--- agent log ---\n${vm.readFile('/var/log/waagent.log')?.toString().slice(-3000) ?? '(none)'}${extra}`;

/** Temp files of an atomic write anywhere the VM changed. */
function tempFiles(vm: Vm): string[] {
  return vm.changedPaths().map((c) => c.path).filter((p) => /\/\.[^/]+\.\d+\.[0-9a-f]{8}\.tmp$/.test(p));
}

for (const order of [['-daemon', '-provision'], ['-provision', '-daemon']]) {
  test(`${order.join(' and ')} started at once: one provisions, the machine ends as after one provisioning, Ready`, { skip, timeout: 200_000 }, async () => {
    const scenario = defaultScenario();
    const vm = await createVm({ scenario, waagentConf: defaultWaagentConf() });
    try {
      const r = await vm.run(['/bin/sh', '-c', `${W} ${order[0]} & ${W} ${order[1]} & wait`], { timeoutMs: 120_000, until: 'ready', graceMs: 4000 });
      assert.equal(r.reason, 'ready', `no Ready${diag(vm)}`);
      const log = vm.readFile('/var/log/waagent.log')?.toString() ?? '';
      assert.equal(count(log, /Provisioning succeeded/), 1, `provisioning ran other than once${diag(vm)}`);
      const stepAside = count(log, /not provisioning \(stop it first/) + count(log, /holds \/var\/run\/waagent\.pid: waiting for it to finish/);
      assert.equal(stepAside, 1, `exactly one command must step aside or wait${diag(vm)}`);
      const u = scenario.userName;
      assert.equal(count(vm.readFile('/etc/passwd')?.toString(), new RegExp(`^${u}:`)), 1);
      assert.equal(count(vm.readFile('/etc/sudoers.d/waagent')?.toString(), new RegExp(`^${u} `)), 1);
      const keys = (vm.readFile(`/home/${u}/.ssh/authorized_keys`)?.toString() ?? '').split('\n').filter((l) => l.trim());
      assert.equal(keys.length, 2, 'authorized_keys');
      assert.equal(count(vm.readFile('/etc/ssh/sshd_config')?.toString(), /^\s*ClientAliveInterval\s/i), 1);
      assert.deepEqual(tempFiles(vm), []);
      const s = vm.simulator.summary()!;
      assert.deepEqual(s.failures, []);
      assert.ok(!s.notReady.some((n) => n.subStatus === 'ProvisioningFailed'), JSON.stringify(s.notReady));
    } finally {
      await vm.destroy({ removeFiles: true });
    }
  });
}

test('-deprovision -force while the daemon provisions (a long CustomData): the daemon stops first, nothing of its provisioning survives', { skip, timeout: 200_000 }, async () => {
  const scenario = defaultScenario();
  scenario.customData = '#!/bin/sh\ntouch /var/tmp/cd-started\nsleep 20\n';
  const vm = await createVm({ scenario, waagentConf: defaultWaagentConf({ 'Provisioning.ExecuteCustomData': 'y' }) });
  try {
    const script = [
      `${W} -daemon & d=$!`,
      'i=0; while [ ! -e /var/tmp/cd-started ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done',
      `${W} -deprovision -force; echo "deprovision-exit=$?"`,
      'wait $d; echo "daemon-exit=$?"',
    ].join('\n');
    const r = await vm.run(['/bin/sh', '-c', script], { timeoutMs: 120_000 });
    const out = `\n--- stdout ---\n${r.stdout.slice(-3000)}\n--- stderr ---\n${r.stderr.slice(-2000)}`;
    assert.equal(r.reason, 'exit', `did not finish (${r.reason})${out}`);
    assert.ok(vm.readFile('/var/tmp/cd-started'), `CustomData never started${out}`);
    assert.match(r.stdout, /deprovision-exit=0/, `deprovisioning failed${out}`);
    assert.match(r.stdout, /daemon-exit=0/, `the daemon did not stop cleanly${out}`);
    await sleep(2000); // anything the stopped daemon left running gets its chance to write
    for (const f of ['provisioned', 'ovf-env.xml', 'CustomData']) assert.equal(vm.readFile(`${LIB}/${f}`), undefined, `${LIB}/${f} survived deprovisioning${out}`);
    assert.equal(vm.readFile('/var/run/waagent.pid'), undefined, 'PID file left behind');
    assert.deepEqual(tempFiles(vm), []);
    const ps = await vm.exec(['pgrep', '-af', W]);
    assert.equal(ps.stdout.trim(), '', 'an agent process still runs');
    assert.equal(vm.simulator.summary()!.readyCount, 0, 'Ready reported by an interrupted provisioning');
    // The user stays (no +user), and its account files are whole.
    assert.equal(count(vm.readFile('/etc/passwd')?.toString(), new RegExp(`^${scenario.userName}:`)), 1);
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});
