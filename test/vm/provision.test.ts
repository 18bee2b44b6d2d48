// The built executable provisions a throwaway VM from the default scenario (provisioning-and-os.md §3,
// fabric-protocol.md §2.7–2.8): we check what changed on the machine and what the fabric received.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { agentCommand, createVm, defaultWaagentConf, vmUnavailableReason, type RunResult, type Vm } from './vm';
import { defaultScenario, type Scenario } from '../fabric/scenario';

let skip = vmUnavailableReason();
if (!skip) {
  const bin = agentCommand();
  try { execFileSync('test', ['-e', bin.split(/\s+/)[0]]); } catch { skip = `agent executable ${bin} not built (node build.mjs)`; }
}
if (skip) console.log(`# skipping VM provisioning tests: ${skip}`);

const LIB = '/var/lib/waagent';
let scenario: Scenario;
let vm: Vm | undefined;
let run: RunResult;

function text(p: string): string {
  const b = vm!.readFile(p);
  assert.ok(b, `${p} missing in the VM`);
  return b!.toString('utf8');
}

/** `ssh-keygen -i -m PKCS8` of the certificate's public key: the line the agent must append for a thumbprint key. */
function expectedKeyFromCert(certPem: string): string {
  const tmp = mkdtempSync(join(tmpdir(), 'waagent-prov-test-'));
  try {
    const pub = join(tmp, 'cert.pub.pem');
    writeFileSync(pub, new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'pem' }).toString());
    return execFileSync('ssh-keygen', ['-i', '-m', 'PKCS8', '-f', pub]).toString().trim();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** `ssh-keygen -lf` of a public key, `:` removed: what the fabric must receive as CertificateThumbprint. */
function hostKeyFingerprint(pub: string): string {
  const tmp = mkdtempSync(join(tmpdir(), 'waagent-prov-test-'));
  try {
    writeFileSync(join(tmp, 'key.pub'), pub);
    return execFileSync('ssh-keygen', ['-lf', join(tmp, 'key.pub')]).toString().split(/\s+/)[1].replace(/:/g, '');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

before(async () => {
  if (skip) return;
  scenario = defaultScenario();
  vm = await createVm({ scenario, waagentConf: defaultWaagentConf() });
  run = await vm.run(['-daemon'], { timeoutMs: 180_000, until: 'ready', graceMs: 3000 });
});

after(async () => {
  if (vm) await vm.destroy({ removeFiles: !process.env.WAAGENT_KEEP_VM });
});

test('the fabric received NotReady/Provisioning, then Ready, then the host key role property', { skip, timeout: 200_000 }, () => {
  const s = vm!.simulator.summary();
  assert.ok(s, 'simulator summary missing');
  assert.equal(run.reason, 'ready', `agent did not report Ready (exit ${run.exitCode}, ${run.stderr.slice(-2000)})\n${vm!.readFile('/var/log/waagent.log')?.toString().slice(-4000)}`);
  assert.deepEqual(s!.failures, [], 'the agent sent something the fabric rejects');
  assert.ok(s!.notReady.length >= 1);
  assert.equal(s!.notReady[0].subStatus, 'Provisioning');
  assert.ok(s!.notReady[0].at <= s!.readyAt!, 'NotReady came before Ready');
  assert.ok(!s!.notReady.some((n) => n.subStatus === 'ProvisioningFailed'), 'provisioning failed');
  assert.ok((s!.counts.certificates ?? 0) >= 1, 'certificates were fetched');
  const rp = s!.roleProperties.at(-1);
  assert.ok(rp, 'no role properties');
  const fp = hostKeyFingerprint(text('/etc/ssh/ssh_host_rsa_key.pub'));
  assert.equal(rp!.properties.CertificateThumbprint, fp);
});

test('user, password hash, sudoers', { skip }, () => {
  const pw = text('/etc/passwd').split('\n').find((l) => l.startsWith(`${scenario.userName}:`));
  assert.ok(pw, 'user not in /etc/passwd');
  const sh = text('/etc/shadow').split('\n').find((l) => l.startsWith(`${scenario.userName}:`));
  assert.ok(sh, 'user not in /etc/shadow');
  const hash = sh!.split(':')[1];
  const m = /^\$6\$([^$]+)\$/.exec(hash);
  assert.ok(m, `hash is not SHA-512 crypt: ${hash.slice(0, 4)}…`);
  assert.equal(m![1].length, 10, 'salt length (Provisioning.PasswordCryptSaltLength)');
  const again = execFileSync('mkpasswd', ['-s', '-m', 'sha-512', '-S', m![1]], { input: scenario.userPassword! }).toString().trim();
  assert.equal(hash, again, 'the stored hash does not verify against the scenario password');
  assert.match(text('/etc/sudoers.d/waagent'), new RegExp(`^${scenario.userName} ALL=\\(ALL\\) ALL$`, 'm'));
  assert.equal(vm!.stat('/etc/sudoers.d/waagent')!.mode, 0o440);
});

test('authorized_keys holds the key by value and the key by thumbprint', { skip }, () => {
  const pw = text('/etc/passwd').split('\n').find((l) => l.startsWith(`${scenario.userName}:`))!.split(':');
  const file = `/home/${scenario.userName}/.ssh/authorized_keys`;
  const lines = text(file).split('\n').map((l) => l.trim()).filter(Boolean);
  const byValue = scenario.publicKeys.find((k) => k.value)!.value!;
  assert.ok(lines.includes(byValue), 'key given by value missing');
  const fromCert = expectedKeyFromCert(scenario.certificates[0].certPem);
  assert.ok(lines.some((l) => l.startsWith(fromCert)), `key given by thumbprint missing; expected ${fromCert.slice(0, 40)}…`);
  const st = vm!.stat(file)!;
  assert.equal(st.uid, Number(pw[2]));
  assert.equal(st.mode, 0o600);
  assert.equal(vm!.stat(`/home/${scenario.userName}/.ssh`)!.mode, 0o700);
  const thumb = scenario.certificates[0].thumbprint;
  assert.ok(vm!.readFile(`${LIB}/${thumb}.crt`), 'tenant certificate not written');
  assert.ok(vm!.readFile(`${LIB}/${thumb}.prv`), 'tenant key not written');
});

test('sshd_config edits, host name, host keys regenerated', { skip }, async () => {
  const cfg = text('/etc/ssh/sshd_config');
  assert.match(cfg, /^PasswordAuthentication yes$/m);
  assert.match(cfg, /^ChallengeResponseAuthentication yes$/m);
  assert.match(cfg, /^ClientAliveInterval 180$/m);
  assert.equal(text('/etc/hostname').trim(), scenario.hostName);
  const h = await vm!.exec(['hostname']);
  assert.equal(h.stdout.trim(), scenario.hostName);
  const changed = vm!.changedPaths();
  const hostKey = changed.find((c) => c.path === '/etc/ssh/ssh_host_rsa_key');
  assert.ok(hostKey && hostKey.kind !== 'deleted', 'RSA host key not regenerated');
  const hostPub = execFileSync('cat', ['/etc/ssh/ssh_host_rsa_key.pub']).toString();
  assert.notEqual(text('/etc/ssh/ssh_host_rsa_key.pub'), hostPub, 'host key is the image\'s one');
});

test('CustomData, ovf-env.xml (password redacted), provisioned marker, no secret in the log', { skip }, () => {
  const cd = text(`${LIB}/CustomData`);
  assert.equal(cd, Buffer.from(scenario.customData!).toString('base64'));
  assert.equal(vm!.stat(`${LIB}/CustomData`)!.mode, 0o600);
  const ovf = text(`${LIB}/ovf-env.xml`);
  assert.ok(ovf.includes(scenario.hostName));
  assert.ok(!ovf.includes(scenario.userPassword!.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')), 'password not redacted');
  assert.ok(vm!.readFile(`${LIB}/provisioned`), 'provisioned marker missing');
  const log = vm!.readFile('/var/log/waagent.log')?.toString() ?? '';
  assert.ok(log.length > 0, 'no agent log');
  assert.ok(!log.includes(scenario.userPassword!), 'password in the log');
  assert.ok(!log.includes(scenario.certificates[0].keyPem!.split('\n')[1]), 'private key in the log');
});

test('every change stays in the places provisioning owns', { skip }, () => {
  const allowed = [/^\/etc\//, /^\/home\//, /^\/var\/lib\/waagent/, /^\/var\/log\//, /^\/var\/lib\/dhcp/, /^\/mnt\/cdrom/, /^\/root\//, /^\/var\/cache\//, /^\/var\/mail/, /^\/var\/spool\/mail/, /^\/mnt$/, /^\/var\/lib\/sss/];
  assert.ok(vm!.changedPaths().length > 0, 'the agent changed nothing');
  const odd = vm!.changedPaths().filter((c) => !allowed.some((r) => r.test(c.path)));
  assert.deepEqual(odd, [], 'unexpected changes');
});
