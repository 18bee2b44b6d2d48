// The provisioning modes other than the built-in one, with the real executable (provisioning-and-os.md §3.2, §3.19,
// DECISIONS.md D29): `Provisioning.Enabled=n` + `UseCloudInit=n` only marks the VM provisioned and reports Ready;
// cloud-init mode waits for cloud-init's ovf-env.xml and host key, then reports Ready with the host key thumbprint —
// and neither touches users, host name or sshd_config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { agentCommand, createVm, defaultWaagentConf, vmUnavailableReason, type Vm } from './vm';
import { buildOvfEnv, defaultScenario } from '../fabric/scenario';

let skip = vmUnavailableReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (skip) console.log(`# skipping VM provisioning-mode tests: ${skip}`);

const diag = (vm: Vm): string => `\n--- agent log ---\n${vm.readFile('/var/log/waagent.log')?.toString().slice(-3000) ?? '(none)'}`;

/** Paths outside the agent's own state that the run changed (the log, Lib.Dir and Extension.LogDir excluded). */
function systemChanges(vm: Vm): string[] {
  return vm.changedPaths().map((c) => c.path)
    .filter((p) => !/^\/var\/lib\/waagent(\/|$)|^\/var\/log\/(waagent\.log|azure)(\/|$)|^\/var\/log$|^\/var\/lib$|^\/var$|^\/tmp(\/|$)|^\/run(\/|$)/.test(p));
}

test('provisioning disabled: marker and Ready only, the system untouched', { skip, timeout: 240_000 }, async () => {
  const sc = defaultScenario();
  const vm = await createVm({ scenario: sc, waagentConf: defaultWaagentConf({ 'Provisioning.Enabled': 'n', 'Provisioning.UseCloudInit': 'n' }) });
  try {
    const r = await vm.run(['-daemon'], { timeoutMs: 120_000, until: 'ready', graceMs: 1000 });
    assert.equal(r.reason, 'ready', `no Ready (exit ${r.exitCode})${diag(vm)}`);
    const s = vm.simulator.summary()!;
    assert.equal(s.notReady.length, 0, 'no NotReady/Provisioning in disabled mode');
    assert.deepEqual(s.failures, []);
    assert.ok(vm.readFile('/var/lib/waagent/provisioned'), 'marker missing');
    assert.ok(!vm.readFile('/etc/passwd')!.toString().includes(`${sc.userName}:`), 'a user was created');
    assert.deepEqual(systemChanges(vm), [], 'changes outside the agent state');
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});

test('cloud-init mode: waits for ovf-env.xml and the host key, reports Ready and the thumbprint, touches nothing else', { skip, timeout: 240_000 }, async () => {
  const sc = defaultScenario();
  const vm = await createVm({ scenario: sc, waagentConf: defaultWaagentConf({ 'Provisioning.Enabled': 'n', 'Provisioning.UseCloudInit': 'y' }) });
  try {
    // The agent starts first and waits; "cloud-init" then drops its copy of ovf-env.xml (password redacted).
    let wrote = false;
    const r = await vm.run(['-daemon'], {
      timeoutMs: 120_000, until: 'ready', graceMs: 1000,
      killWhen: () => {
        if (!wrote) { wrote = true; vm.writeFile('/var/lib/waagent/ovf-env.xml', buildOvfEnv(sc).replace(/<(\w+:)?UserPassword>[^<]*</, '<$1UserPassword>REDACTED<'), 0o600); }
        return false;
      },
    });
    assert.equal(r.reason, 'ready', `no Ready (exit ${r.exitCode})${diag(vm)}`);
    const s = vm.simulator.summary()!;
    // NotReady/Provisioning may have been replaced by Ready before it was sent (D6: the newest report wins).
    assert.ok(!s.notReady.some((n) => n.subStatus === 'ProvisioningFailed'), 'provisioning failed');
    assert.deepEqual(s.failures, []);
    const pub = vm.readFile('/etc/ssh/ssh_host_rsa_key.pub')!.toString().trim().split(/\s+/)[1];
    const fp = `SHA256${createHash('sha256').update(Buffer.from(pub, 'base64')).digest('base64').replace(/=+$/, '')}`;
    assert.equal(s.roleProperties.at(-1)?.properties.CertificateThumbprint, fp);
    assert.ok(vm.readFile('/var/lib/waagent/provisioned'), 'marker missing');
    assert.ok(!vm.readFile('/etc/passwd')!.toString().includes(`${sc.userName}:`), 'cloud-init mode created a user');
    assert.deepEqual(systemChanges(vm), [], 'changes outside the agent state');
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});
