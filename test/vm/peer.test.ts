// A test of the tests (issue 11, "A real peer on the same bench"): Debian 12's WALinuxAgent 2.7.3 (test/vm/peer.ts,
// unpacked into the VM's image layer only) provisions the same throwaway VM against the same fabric simulator, and
// the provisioning checks of provision.test.ts hold for it too: the simulator accepts everything the reference agent
// sends (no rejected request), NotReady/Provisioning then Ready, regenerated host keys, the
// user with a SHA-512 password hash, sudoers, both SSH keys, the host name. Where we differ on purpose it says so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVm, defaultWaagentConf, imageWrite, vmUnavailableReason, type RunResult, type Vm } from './vm';
import { peerUnavailable, unpackPeer } from './peer';
import { defaultScenario, type Scenario } from '../fabric/scenario';

const skip = vmUnavailableReason() ?? peerUnavailable();
if (skip) console.log(`# skipping the peer VM tests: ${skip}`);

let vm: Vm | undefined;
let run: RunResult;
let scenario: Scenario;
const text = (p: string): string => vm!.readFile(p)?.toString() ?? '';

function sshKeygen(args: string[], file: string, data: string): string {
  const tmp = mkdtempSync(join(tmpdir(), 'waagent-peer-test-'));
  try {
    writeFileSync(join(tmp, file), data);
    return execFileSync('ssh-keygen', [...args, join(tmp, file)]).toString();
  } finally { rmSync(tmp, { recursive: true, force: true }); }
}

before(async () => {
  if (skip) return;
  scenario = defaultScenario();
  // WALinuxAgent 2.7 decides by Provisioning.Agent (auto would look for cloud-init); the rest is the VM tests' conf.
  const conf = defaultWaagentConf({ 'Provisioning.Agent': 'waagent' });
  vm = await createVm({
    scenario, waagentConf: conf, agentBin: '/usr/bin/python3 -u /usr/sbin/waagent',
    extraSetup(img) { unpackPeer(img); imageWrite(img, '/etc/waagent.conf', conf, 0o644); },
  });
  run = await vm.run(['-daemon'], { timeoutMs: 180_000, until: 'ready', graceMs: 3000 });
});

after(async () => { if (vm) await vm.destroy({ removeFiles: !process.env.WAAGENT_KEEP_VM }); });

test('peer: the simulator accepts all it sends; NotReady/Provisioning, Ready, host keys regenerated', { skip, timeout: 200_000 }, () => {
  assert.match(text('/var/log/waagent.log'), /Azure Linux Agent Version:2\.7\.3\.0/, 'the peer did not run');
  const s = vm!.simulator.summary()!;
  assert.equal(run.reason, 'ready', `the peer did not report Ready\n${text('/var/log/waagent.log').slice(-3000)}`);
  assert.deepEqual(s.failures, [], 'the simulator rejected something the reference agent sent');
  assert.equal(s.notReady[0]?.subStatus, 'Provisioning');
  assert.ok(s.notReady[0].at <= s.readyAt!);
  assert.ok((s.counts.certificates ?? 0) >= 1);
  assert.match(sshKeygen(['-lf'], 'k.pub', text('/etc/ssh/ssh_host_rsa_key.pub')), /\(RSA\)/);
  // Different on purpose (fabric-protocol.md §2.8, DECISIONS.md D5): WALinuxAgent stopped posting the host-key
  // thumbprint as a role property in 2.2.49.1; we still send it after Ready (provision.test.ts checks ours).
  assert.equal(s.roleProperties.length, 0);
});

test('peer: user, SHA-512 password hash of the scenario password, sudoers', { skip }, () => {
  assert.ok(text('/etc/passwd').split('\n').some((l) => l.startsWith(`${scenario.userName}:`)));
  const hash = text('/etc/shadow').split('\n').find((l) => l.startsWith(`${scenario.userName}:`))!.split(':')[1];
  const m = /^\$6\$([^$]+)\$/.exec(hash);
  assert.ok(m, 'not a SHA-512 crypt hash');
  const again = execFileSync('mkpasswd', ['-s', '-m', 'sha-512', '-S', m![1]], { input: scenario.userPassword! }).toString().trim();
  assert.equal(again, hash);
  assert.match(text('/etc/sudoers.d/waagent'), new RegExp(`^${scenario.userName} ALL=\\(ALL\\) ALL$`, 'm'));
});

test('peer: both SSH keys (by value, and from the certificate by thumbprint), host name', { skip }, () => {
  const keys = text(`/home/${scenario.userName}/.ssh/authorized_keys`);
  for (const k of scenario.publicKeys.filter((x) => x.value)) assert.ok(keys.includes(k.value!.trim().split(/\s+/).slice(0, 2).join(' ')), 'key by value missing');
  const cert = scenario.certificates[0];
  const pem = new X509Certificate(cert.certPem).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const fromCert = sshKeygen(['-i', '-m', 'PKCS8', '-f'], 'c.pem', pem).trim();
  assert.ok(keys.includes(fromCert), 'key from the certificate missing');
  assert.equal(text('/etc/hostname').trim(), scenario.hostName);
});
