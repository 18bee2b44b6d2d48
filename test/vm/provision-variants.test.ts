// Provisioning under harder conditions: no DVD mount helper (the kernel cannot mount the ISO, so the agent reads
// ovf-env.xml from /dev/sr0 itself, provisioning-and-os.md §3.4), and a fabric that fails transiently
// (fabric-protocol.md §5: 503 with Retry-After, dropped connections, stalls, a 500 on the first health report).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { agentCommand, createVm, defaultWaagentConf, vmUnavailableReason, type Vm } from './vm';
import { defaultScenario, type Scenario } from '../fabric/scenario';

let skip = vmUnavailableReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (skip) console.log(`# skipping VM provisioning-variant tests: ${skip}`);

function diag(vm: Vm): string {
  return `\n--- agent log ---\n${vm.readFile('/var/log/waagent.log')?.toString().slice(-3000) ?? '(none)'}`;
}

function userProvisioned(vm: Vm, sc: Scenario): void {
  assert.ok(vm.readFile('/etc/passwd')!.toString().split('\n').some((l) => l.startsWith(`${sc.userName}:`)), `user missing${diag(vm)}`);
  assert.equal(vm.readFile('/etc/hostname')?.toString().trim(), sc.hostName);
  assert.ok(vm.readFile('/var/lib/waagent/provisioned'), 'provisioned marker missing');
}

test('no mount helper for the DVD: the agent reads the ISO from the block device', { skip, timeout: 240_000 }, async () => {
  const sc = defaultScenario();
  const vm = await createVm({ scenario: sc, waagentConf: defaultWaagentConf(), dvdHelpers: false });
  try {
    const r = await vm.run(['-daemon'], { timeoutMs: 180_000, until: 'ready', graceMs: 1000 });
    assert.equal(r.reason, 'ready', `no Ready (exit ${r.exitCode}: ${r.stderr.slice(-1000)})${diag(vm)}`);
    userProvisioned(vm, sc);
    assert.deepEqual(vm.simulator.summary()!.failures, []);
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});

test('transient fabric faults: the agent retries and still provisions', { skip, timeout: 300_000 }, async () => {
  const sc = defaultScenario();
  sc.faults = [
    { kind: 'versions', attempts: [1], drop: true },
    { kind: 'goalstate', attempts: [1], status: 503, retryAfter: 1 },
    { kind: 'goalstate', attempts: [2], stallMs: 1500 },
    { kind: 'certificates', attempts: [1], status: 500 },
    { kind: 'health', attempts: [1], status: 500 },
  ];
  const vm = await createVm({ scenario: sc, waagentConf: defaultWaagentConf() });
  try {
    const r = await vm.run(['-daemon'], { timeoutMs: 240_000, until: 'ready', graceMs: 1000 });
    assert.equal(r.reason, 'ready', `no Ready despite only transient faults (exit ${r.exitCode})${diag(vm)}`);
    userProvisioned(vm, sc);
    const s = vm.simulator.summary()!;
    assert.ok((s.counts.goalstate ?? 0) >= 3, 'the failed goal-state requests were not retried');
    assert.ok((s.counts.health ?? 0) >= 2, 'the refused health report was not retried');
    assert.deepEqual(s.failures, []);
    const key = vm.readFile(`/var/lib/waagent/${sc.certificates[0].thumbprint}.crt`);
    assert.ok(key, 'certificates not written after the 500');
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});
