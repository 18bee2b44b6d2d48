// Several agent invocations in one throwaway VM: killed mid-provisioning then restarted, restarted once provisioned
// (Ready again, no re-provisioning: DECISIONS.md D21), deprovisioned with +user, then provisioned again
// (provisioning-and-os.md §3.1, §3.3, §4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { agentCommand, createVm, defaultWaagentConf, vmUnavailableReason } from './vm';
import { defaultScenario } from '../fabric/scenario';

let skip = vmUnavailableReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (skip) console.log(`# skipping VM lifecycle tests: ${skip}`);

test('kill mid-provisioning, restart, restart again, deprovision+user, provision again', { skip, timeout: 600_000 }, async () => {
  const scenario = defaultScenario();
  const vm = await createVm({ scenario, waagentConf: defaultWaagentConf() });
  const userLine = (): string | undefined => vm.readFile('/etc/shadow')?.toString().split('\n').find((l) => l.startsWith(`${scenario.userName}:`));
  const diag = (): string => `\n--- agent log ---\n${vm.readFile('/var/log/waagent.log')?.toString().slice(-3000) ?? '(none)'}`;
  try {
    // 1. SIGKILL as soon as the fabric has the NotReady report.
    const killed = await vm.run(['-daemon'], { timeoutMs: 120_000, killWhen: (s) => s.notReady.length > 0 || s.readyCount > 0 });
    assert.equal(killed.reason, 'killed', `the agent never reported NotReady${diag()}`);

    // 2. Restart: provisioning completes and Ready arrives.
    const second = await vm.run(['-daemon'], { timeoutMs: 180_000, until: 'ready', graceMs: 2000 });
    assert.equal(second.reason, 'ready', `no Ready after the restart (exit ${second.exitCode}: ${second.stderr.slice(-1000)})${diag()}`);
    assert.ok(vm.readFile('/var/lib/waagent/provisioned'), 'provisioned marker missing');
    const shadow = userLine();
    assert.ok(shadow, 'user missing after restart');
    assert.deepEqual(vm.simulator.summary()!.failures, []);

    // 3. Restart once more: Ready again (D21) and nothing re-provisioned.
    const third = await vm.run(['-daemon'], { timeoutMs: 120_000, until: 'ready', graceMs: 1000 });
    assert.equal(third.reason, 'ready', `no Ready on the provisioned VM's restart${diag()}`);
    assert.equal(userLine(), shadow, 'password hash changed: provisioning ran again');

    // 4. Deprovision with the user.
    const dep = await vm.run(['-deprovision+user', '-force'], { timeoutMs: 120_000 });
    assert.equal(dep.exitCode, 0, `deprovision failed: ${dep.stderr.slice(-1000)}${diag()}`);
    assert.equal(userLine(), undefined, 'user still in /etc/shadow');
    assert.ok(!vm.readFile('/etc/passwd')!.toString().split('\n').some((l) => l.startsWith(`${scenario.userName}:`)), 'user still in /etc/passwd');
    assert.equal(vm.readFile('/var/lib/waagent/provisioned'), undefined, 'marker survived deprovisioning');
    assert.equal(vm.readFile('/etc/ssh/ssh_host_rsa_key'), undefined, 'host key survived deprovisioning');
    assert.equal(vm.readFile('/var/lib/dhcp/dhclient.eth0.leases'), undefined, 'DHCP lease survived deprovisioning');
    assert.equal(vm.readFile('/etc/hostname')?.toString().trim(), 'localhost.localdomain');

    // 5. The "next boot": the DHCP client writes its lease again, the agent provisions from the DVD again.
    vm.restoreLease();
    const readyBefore = vm.simulator.summary()!.readyCount;
    const again = await vm.run(['-daemon'], { timeoutMs: 180_000, until: 'ready', graceMs: 2000 });
    assert.equal(again.reason, 'ready', `no Ready after deprovisioning${diag()}`);
    assert.ok(vm.simulator.summary()!.readyCount > readyBefore);
    assert.ok(userLine(), 'user not re-created');
    assert.notEqual(userLine(), shadow, 'a new hash (new salt) was expected');
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});
