import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { makeBed, fakeFabric } from './provision-helpers';
import { provision, provisionDisabled } from '../../src/provision/provision';
import { provisionWithCloudInit } from '../../src/provision/cloudinit';
import type { OvfEnv } from '../../src/provision/ovf';
import { log, memoryAppender, Level } from '../../src/core/log';
import { sshFingerprint } from '../../src/crypto/openssh-key';

/** The reported thumbprint of the bed's RSA host key: `ssh-keygen -lf` form with `:` removed. */
const bedThumbprint = (bed: { read(p: string): string }): string => sshFingerprint(bed.read('/etc/ssh/ssh_host_rsa_key.pub')).replace(/:/g, '');

const PASSWORD = 'Sup3r-secret-pw';
function ovf(over: Partial<OvfEnv> = {}): OvfEnv {
  return {
    version: '1.0', hostName: 'vm-test', userName: 'azureuser', userPassword: PASSWORD,
    disableSshPasswordAuthentication: false, customData: 'ZWNobyBoaQ==',
    publicKeys: [{ path: '$HOME/azureuser/.ssh/authorized_keys', value: 'ssh-ed25519 AAAAC3NzaKEY user@pc' }],
    keyPairs: [], provisionGuestAgent: true, ...over,
  };
}

test('built-in provisioning: steps in order, reports NotReady then Ready + role property, marker, eject; rerun changes nothing', async () => {
  const bed = makeBed({ 'Provisioning.DeleteRootPassword': 'y' });
  const mem = memoryAppender(Level.VERBOSE); log.addAppender(mem);
  try {
    fs.mkdirSync(bed.p('/sys/class/dmi/id'), { recursive: true });
    fs.writeFileSync(bed.p('/sys/class/dmi/id/product_uuid'), '544CDFD0-CB4E-4B4A-9954-5BDF3ED5C3B8\n');
    const fabric = fakeFabric();
    let ejected = 0;
    const out = await provision(bed.ctx, { ovf: ovf(), fabric, onMarkerWritten: async () => { ejected++; } });
    assert.equal(out.success, true, out.error);
    assert.equal(out.thumbprint, bedThumbprint(bed));
    assert.deepEqual(fabric.reports, [{ state: 'NotReady', subStatus: 'Provisioning', description: 'Starting' }, { state: 'Ready' }]);
    assert.deepEqual(fabric.roleProps, [bedThumbprint(bed)]);
    assert.equal(ejected, 1);
    const order = bed.run.calls.map((c) => c.argv[0]);
    // The host name is set beside the account steps (they are independent); the account steps keep their order.
    assert.ok(order.includes('hostname') && order.indexOf('useradd') < order.indexOf('chpasswd'), order.join(','));
    assert.equal(bed.read('/etc/hostname'), 'vm-test\n');
    assert.match(bed.read('/etc/shadow'), /^root:\*LOCK\*:14600::::::\n/);
    assert.match(bed.read('/etc/shadow'), /^azureuser:\$6\$/m);
    assert.equal(bed.read('/etc/sudoers.d/waagent'), 'azureuser ALL=(ALL) ALL\n');
    assert.match(bed.read('/etc/ssh/sshd_config'), /^PasswordAuthentication yes$/m);
    assert.equal(bed.read('/home/azureuser/.ssh/authorized_keys'), 'ssh-ed25519 AAAAC3NzaKEY user@pc\n');
    assert.equal(bed.read('/var/lib/waagent/CustomData'), 'ZWNobyBoaQ==');
    assert.equal(bed.read('/var/lib/waagent/provisioned'), 'D0DF4C54-4ECB-4A4B-9954-5BDF3ED5C3B8');
    assert.equal(fs.existsSync(bed.p('/var/lib/waagent/disable_agent')), false);
    for (const c of bed.run.calls) assert.ok(!c.argv.join(' ').includes(PASSWORD) && !c.argv.join(' ').includes('$6$'), 'no secret on argv');
    assert.ok(!mem.lines.some((l) => l.includes(PASSWORD)), 'password never logged');

    // Rerun: nothing on the system changes (no useradd, no chpasswd, no file rewritten).
    const snapshot = ['/etc/hostname', '/etc/shadow', '/etc/sudoers.d/waagent', '/etc/ssh/sshd_config', '/home/azureuser/.ssh/authorized_keys']
      .map((f) => [f, fs.statSync(bed.p(f)).ino] as const);
    const n = bed.run.calls.length;
    const again = await provision(bed.ctx, { ovf: ovf(), fabric: fakeFabric() });
    assert.equal(again.success, true);
    const cmds = bed.run.calls.slice(n).map((c) => c.argv[0]);
    assert.ok(!cmds.includes('useradd') && !cmds.includes('chpasswd') && !cmds.includes('hostname'), cmds.join(','));
    for (const [f, ino] of snapshot) assert.equal(fs.statSync(bed.p(f)).ino, ino, `${f} rewritten on rerun`);
  } finally { log.removeAppender(mem); bed.cleanup(); }
});

test('no password → NOPASSWD sudoers, no chpasswd; ProvisionGuestAgent=false writes disable_agent', async () => {
  const bed = makeBed();
  try {
    const out = await provision(bed.ctx, { ovf: ovf({ userPassword: undefined, provisionGuestAgent: false, disableSshPasswordAuthentication: true }), fabric: fakeFabric() });
    assert.equal(out.success, true, out.error);
    assert.equal(out.agentDisabled, true);
    assert.ok(fs.existsSync(bed.p('/var/lib/waagent/disable_agent')));
    assert.equal(bed.read('/etc/sudoers.d/waagent'), 'azureuser ALL=(ALL) NOPASSWD: ALL\n');
    assert.equal(bed.run.calls.filter((c) => c.argv[0] === 'chpasswd').length, 0);
    assert.match(bed.read('/etc/ssh/sshd_config'), /^PasswordAuthentication no$/m);
  } finally { bed.cleanup(); }
});

test('failure → NotReady/ProvisioningFailed with "Failed to provision:", no marker, no Ready, secret not leaked', async () => {
  const bed = makeBed({}, (argv, opts) => (argv[0] === 'chpasswd' ? { code: 1, stderr: `chpasswd: error on ${String(opts.input)}` } : undefined));
  try {
    const fabric = fakeFabric();
    let ejected = false;
    const out = await provision(bed.ctx, { ovf: ovf(), fabric, onMarkerWritten: async () => { ejected = true; } });
    assert.equal(out.success, false);
    assert.match(out.error ?? '', /^Failed to provision: Failed to set password for azureuser/);
    assert.ok(!(out.error ?? '').includes('$6$') && !(out.error ?? '').includes(PASSWORD));
    assert.deepEqual(fabric.reports.map((r) => r.state), ['NotReady', 'NotReady']);
    const last = fabric.reports[1];
    assert.ok(last.state === 'NotReady' && last.subStatus === 'ProvisioningFailed' && last.description === out.error);
    assert.equal(fs.existsSync(bed.p('/var/lib/waagent/provisioned')), false);
    assert.equal(ejected, false);
    assert.deepEqual(fabric.roleProps, []);
  } finally { bed.cleanup(); }
});

test('hostile OVF values fail provisioning before touching the system', async () => {
  for (const bad of [{ userName: '-oProxyCommand=x' }, { hostName: 'a;reboot' }, { publicKeys: [{ path: '/etc/cron.d/x', value: 'ssh-rsa AAAA x' }] }] as Partial<OvfEnv>[]) {
    const bed = makeBed();
    try {
      const fabric = fakeFabric();
      const out = await provision(bed.ctx, { ovf: ovf(bad), fabric });
      assert.equal(out.success, false, JSON.stringify(bad));
      assert.equal(fs.existsSync(bed.p('/etc/cron.d/x')), false);
      assert.equal(fs.existsSync(bed.p('/var/lib/waagent/provisioned')), false);
      if (!bad.publicKeys) assert.equal(bed.run.calls.length, 0, 'no command ran');
    } finally { bed.cleanup(); }
  }
});

test('a key by fingerprint waits (bounded) for the fabric before falling back to IMDS', async () => {
  const bed = makeBed();
  try {
    const fabric = fakeFabric(false);
    let imds = 0;
    const p = provision(bed.ctx, {
      ovf: ovf({ publicKeys: [{ path: '/home/azureuser/.ssh/authorized_keys', fingerprint: 'ABCD' }] }), fabric, certificateWaitMs: 60_000,
      getImdsPublicKeys: async () => { imds++; return [{ keyData: 'ssh-rsa FROMIMDS k', path: '/home/azureuser/.ssh/authorized_keys' }]; },
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(imds, 0, 'IMDS not asked while waiting for the fabric');
    fabric.connect();
    const out = await p;
    assert.equal(out.success, true, out.error);
    assert.equal(imds, 1);
    assert.equal(bed.read('/home/azureuser/.ssh/authorized_keys'), 'ssh-rsa FROMIMDS k\n');
    // Bound: a fabric that never connects only delays by the bound.
    const bed2 = makeBed();
    try {
      const t0 = Date.now();
      const out2 = await provision(bed2.ctx, { ovf: ovf({ publicKeys: [{ path: '/home/azureuser/.ssh/authorized_keys', fingerprint: 'ABCD' }] }), fabric: fakeFabric(false), certificateWaitMs: 100 });
      assert.equal(out2.success, false);
      assert.match(out2.error ?? '', /Can't find ABCD.crt/);
      assert.ok(Date.now() - t0 < 5000);
    } finally { bed2.cleanup(); }
  } finally { bed.cleanup(); }
});

test('provisioning disabled: marker + Ready only', async () => {
  const bed = makeBed();
  try {
    const fabric = fakeFabric();
    await provisionDisabled(bed.ctx, fabric);
    assert.deepEqual(fabric.reports, [{ state: 'Ready' }]);
    assert.ok(fs.existsSync(bed.p('/var/lib/waagent/provisioned')));
    assert.ok(bed.run.calls.every((c) => c.argv[0] === 'dmidecode'));
  } finally { bed.cleanup(); }
});

test('cloud-init mode: waits for ovf-env.xml, reports, fingerprints, marks; times out cleanly', async () => {
  const bed = makeBed();
  try {
    const fabric = fakeFabric();
    const doc = `<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure"><wa:ProvisioningSection><wa:Version>1.0</wa:Version><wa:LinuxProvisioningConfigurationSet><wa:HostName>h</wa:HostName><wa:UserName>u</wa:UserName><wa:UserPassword>REDACTED</wa:UserPassword></wa:LinuxProvisioningConfigurationSet></wa:ProvisioningSection><wa:PlatformSettingsSection><wa:PlatformSettings><wa:ProvisionGuestAgent>false</wa:ProvisionGuestAgent></wa:PlatformSettings></wa:PlatformSettingsSection></Environment>`;
    setTimeout(() => fs.writeFileSync(bed.p('/var/lib/waagent/ovf-env.xml'), doc), 30);
    const out = await provisionWithCloudInit(bed.ctx, { fabric, pollMs: 10, maxPolls: 100 });
    assert.equal(out.success, true, out.error);
    assert.equal(out.agentDisabled, true);
    assert.deepEqual(fabric.reports, [{ state: 'NotReady', subStatus: 'Provisioning', description: 'Starting' }, { state: 'Ready' }]);
    assert.deepEqual(fabric.roleProps, [bedThumbprint(bed)]);
    assert.ok(fs.existsSync(bed.p('/var/lib/waagent/provisioned')));
    assert.ok(!bed.run.calls.some((c) => ['useradd', 'hostname', 'chpasswd'].includes(c.argv[0])));
  } finally { bed.cleanup(); }
  const none = makeBed();
  try {
    const fabric = fakeFabric();
    const out = await provisionWithCloudInit(none.ctx, { fabric, pollMs: 1, maxPolls: 5 });
    assert.equal(out.success, false);
    assert.match(out.error ?? '', /Giving up, ovf-env.xml was not copied/);
    assert.equal(fs.existsSync(none.p('/var/lib/waagent/provisioned')), false);
    fs.writeFileSync(none.p('/var/lib/waagent/ovf-env.xml'), '<broken');
    const bad = await provisionWithCloudInit(none.ctx, { fabric, pollMs: 1, maxPolls: 5 });
    assert.equal(bad.error, 'OVF xml could not be parsed');
  } finally { none.cleanup(); }
});

test('executed CustomData runs before the host keys are regenerated (§3.6 steps 12 → 14)', async () => {
  let keysSeenByCustomData: string | undefined;
  const bed = makeBed({ 'Provisioning.ExecuteCustomData': 'y', 'Provisioning.RegenerateSshHostKeyPair': 'y', 'Provisioning.SshHostKeyPairType': 'ed25519' },
    (argv, _opts, b) => {
      if (argv[0] !== '/var/lib/waagent/CustomData') return undefined;
      keysSeenByCustomData = fs.readdirSync(b.p('/etc/ssh')).filter((f) => f.startsWith('ssh_host_')).join(',');
      return { code: 0 };
    });
  try {
    const out = await provision(bed.ctx, { ovf: ovf({ customData: Buffer.from('#!/bin/sh\necho hi\n').toString('base64') }), fabric: fakeFabric() });
    assert.equal(out.success, true, out.error);
    assert.equal(keysSeenByCustomData, 'ssh_host_rsa_key.pub', 'CustomData saw the host keys of the image, untouched');
    assert.equal(fs.existsSync(bed.p('/etc/ssh/ssh_host_rsa_key.pub')), false);
    assert.ok(fs.existsSync(bed.p('/etc/ssh/ssh_host_ed25519_key')));
    assert.equal(out.thumbprint, sshFingerprint(bed.read('/etc/ssh/ssh_host_ed25519_key.pub')).replace(/:/g, ''));
  } finally { bed.cleanup(); }
});
