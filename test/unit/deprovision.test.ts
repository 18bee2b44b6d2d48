// Deprovisioning: the plan per distro (warnings, actions, nothing changed while planning) and its execution on a
// temp-dir root (files removed, directories kept, resolv.conf link rule, user and sudoers line by exact token,
// failures logged and the rest still run), and the command (prompt, SIGINT, exit codes, log file not recreated).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { SysRoot } from '../../src/core/sysroot';
import { recordingRunner, type ExecResult } from '../../src/core/exec';
import { Config } from '../../src/config/config';
import { Logger, memoryAppender, fileAppender, Level } from '../../src/core/log';
import { createOs } from '../../src/os/factory';
import type { AgentContext } from '../../src/context';
import { planDeprovision, executePlan } from '../../src/deprovision/plan';
import { cleanupChangedInstance } from '../../src/deprovision/instance-change';
import { runDeprovision, type DeprovisionIo } from '../../src/cli/deprovision';

const OVF = `<?xml version="1.0"?><Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure">
<wa:ProvisioningSection><wa:Version>1.0</wa:Version><LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure">
<ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType><HostName>vm1</HostName><UserName>bob</UserName>
<UserPassword>*</UserPassword></LinuxProvisioningConfigurationSet></wa:ProvisioningSection></Environment>`;

type Handler = (argv: string[]) => Partial<ExecResult> | undefined;

function bed(opts: { distro?: string; version?: string; conf?: Record<string, string>; handler?: Handler; resolv?: 'file' | 'run-link' | 'file-link' | 'dangling' | 'resolvconf' } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deprov-'));
  const root = new SysRoot(dir);
  const p = (a: string) => root.path(a);
  const w = (a: string, data = 'x', mode = 0o644) => { fs.mkdirSync(path.dirname(p(a)), { recursive: true }); fs.writeFileSync(p(a), data, { mode }); };
  const link = (a: string, target: string) => { fs.mkdirSync(path.dirname(p(a)), { recursive: true }); fs.symlinkSync(target, p(a)); };
  w('/etc/passwd', 'root:x:0:0:root:/root:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/bash\nbobby:x:1002:1002::/home/bobby:/bin/bash\n');
  w('/etc/shadow', 'root:$6$x$y:19000:0:99999:7:::\nbob:!:19000::::::\n', 0o640);
  w('/etc/login.defs', 'UID_MIN 1000\n');
  w('/etc/hostname', 'vm1\n');
  w('/etc/sudoers.d/waagent', 'bobby ALL=(ALL) ALL\nbob ALL=(ALL) NOPASSWD: ALL\n# bob was here\n', 0o440);
  w('/etc/ssh/ssh_host_rsa_key'); w('/etc/ssh/ssh_host_rsa_key.pub'); w('/etc/ssh/sshd_config');
  w('/var/lib/waagent/provisioned', 'ID'); w('/var/lib/waagent/ovf-env.xml', OVF, 0o600); w('/var/lib/waagent/WireServerEndpoint', '168.63.129.16');
  w('/var/lib/waagent/Certificates.pem'); w('/var/lib/waagent/Microsoft.Ext-1.0/status/0.status');
  w('/var/log/azure/Microsoft.Ext/CommandExecution.log');
  w('/var/lib/dhcp/dhclient.eth0.leases'); w('/var/lib/dhclient/sub/x.lease'); w('/var/lib/NetworkManager/dhclient-abc-eth0.lease');
  w('/var/lib/NetworkManager/NetworkManager.state');
  w('/run/systemd/netif/leases/2'); w('/var/db/dhclient.leases.hn0');
  w('/root/.bash_history'); w('/var/log/waagent.log'); w('/etc/machine-id', 'abc\n');
  w('/lib/systemd/system/waagent-network-setup.service');
  fs.mkdirSync(p('/home/bob'), { recursive: true });
  switch (opts.resolv ?? 'file') {
    case 'file': w('/etc/resolv.conf', 'nameserver 1.1.1.1\n'); break;
    case 'run-link': w('/run/systemd/resolve/stub-resolv.conf'); link('/etc/resolv.conf', '../run/systemd/resolve/stub-resolv.conf'); break;
    case 'file-link': w('/etc/resolv.conf.real'); link('/etc/resolv.conf', '/etc/resolv.conf.real'); break;
    case 'dangling': link('/etc/resolv.conf', '/etc/nowhere'); break;
    case 'resolvconf':
      w('/run/resolvconf/resolv.conf'); link('/etc/resolv.conf', '/run/resolvconf/resolv.conf');
      w('/etc/resolvconf/resolv.conf.d/tail'); w('/etc/resolvconf/resolv.conf.d/original'); w('/etc/resolvconf/resolv.conf.d/head');
      break;
  }
  const run = recordingRunner((argv) => opts.handler?.(argv) ?? undefined);
  const conf = new Config('(test)', opts.conf ?? {});
  const logger = new Logger(); const mem = memoryAppender(); logger.addAppender(mem);
  const id = opts.distro ?? 'debian';
  const osObj = createOs({ id, like: [], version: opts.version ?? '12', codename: '', fullName: id, name: id }, root, run, conf);
  const ctx: AgentContext = { conf, os: osObj, log: logger, libDir: '/var/lib/waagent' };
  const exists = (a: string) => { try { fs.lstatSync(p(a)); return true; } catch { return false; } };
  return { dir, root, p, run, ctx, mem, exists, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d).sort()) {
      const f = path.join(d, e); const st = fs.lstatSync(f);
      if (st.isDirectory()) { out.push(`${f}/`); walk(f); } else out.push(`${f} ${st.mode} ${st.isSymbolicLink() ? fs.readlinkSync(f) : fs.readFileSync(f, 'utf8')}`);
    }
  };
  walk(dir);
  return out;
}

test('plan (Debian, defaults): warnings and actions in order; planning changes nothing', () => {
  const b = bed();
  try {
    const before = snapshot(b.dir);
    const plan = planDeprovision(b.ctx, false);
    assert.deepEqual(snapshot(b.dir), before);
    assert.equal(b.run.calls.length, 0);
    assert.deepEqual(plan.warnings, [
      'WARNING! The waagent service will be stopped.',
      'WARNING! Cached DHCP leases will be deleted.',
      'WARNING! /etc/resolv.conf will be deleted.',
    ]);
    assert.deepEqual(plan.actions.map((a) => a.name), [
      'stop the agent service', 'stop a daemon still running and hold its PID file', 'delete cached DHCP leases', 'reset the host name',
      'delete the contents of /var/lib/waagent and /var/log/azure', 'delete history, agent log and key leftovers',
      'delete /etc/resolv.conf', 'delete the firewall persistence unit',
    ]);
  } finally { b.cleanup(); }
});

test('plan: options, +user, Arch/CoreOS machine-id, Ubuntu resolv.conf variants', () => {
  const cases: [Parameters<typeof bed>[0], boolean, string[]][] = [
    [{ conf: { 'Provisioning.RegenerateSshHostKeyPair': 'y', 'Provisioning.DeleteRootPassword': 'y' } }, false,
      ['WARNING! All SSH host key pairs will be deleted.', 'WARNING! root password will be disabled. You will not be able to login as root.']],
    [{}, true, ['WARNING! bob account and entire home directory will be deleted.']],
    [{ distro: 'arch' }, false, ['WARNING! /etc/machine-id will be removed.']],
    [{ distro: 'flatcar' }, false, ['WARNING! /etc/machine-id will be removed.']],
    [{ distro: 'ubuntu', version: '22.04' }, false, ['WARNING! /etc/resolv.conf will NOT be removed, this is a behavior change to earlier versions of Ubuntu.']],
    [{ distro: 'ubuntu', version: '16.04', resolv: 'resolvconf' }, false,
      ['WARNING! /etc/resolvconf/resolv.conf.d/tail and /etc/resolvconf/resolv.conf.d/original will be deleted.']],
    [{ distro: 'ubuntu', version: '16.04', resolv: 'file' }, false, ['WARNING! /etc/resolv.conf will be deleted.']],
    [{ distro: 'debian', resolv: 'run-link' }, false, ['WARNING! /etc/resolv.conf will NOT be removed: it links to /run/systemd/resolve/stub-resolv.conf, which the system manages.']],
  ];
  for (const [o, withUser, expected] of cases) {
    const b = bed(o);
    try {
      const plan = planDeprovision(b.ctx, withUser);
      for (const w of expected) assert.ok(plan.warnings.includes(w), `${JSON.stringify(o)}: ${w}\n${plan.warnings.join('\n')}`);
      if (o?.distro === 'debian' && o.resolv === 'run-link') assert.ok(!plan.actions.some((a) => a.name.includes('resolv')));
      if (o?.distro === 'ubuntu' && o.version === '22.04') assert.ok(!plan.warnings.includes('WARNING! /etc/resolv.conf will be deleted.'));
      if (o?.distro === 'debian' || !o?.distro) assert.ok(!plan.warnings.some((w) => w.includes('machine-id')));
    } finally { b.cleanup(); }
  }
});

test('plan +user without a usable ovf-env.xml: two warnings, no delete action', () => {
  const b = bed();
  try {
    fs.writeFileSync(b.p('/var/lib/waagent/ovf-env.xml'), '<Environment><broken>');
    const plan = planDeprovision(b.ctx, true);
    assert.deepEqual(plan.warnings.slice(-2), ['WARNING! ovf-env.xml is not found.', 'WARNING! Skip delete user.']);
    assert.ok(!plan.actions.some((a) => a.name.startsWith('delete user')));
    fs.rmSync(b.p('/var/lib/waagent/ovf-env.xml'));
    assert.deepEqual(planDeprovision(b.ctx, true).warnings.slice(-2), ['WARNING! ovf-env.xml is not found.', 'WARNING! Skip delete user.']);
  } finally { b.cleanup(); }
});

test('execute (+user): VM state gone, directories kept, user and only their sudoers line removed', async () => {
  const b = bed({ conf: { 'Provisioning.RegenerateSshHostKeyPair': 'y' } });
  try {
    const failures = await executePlan(planDeprovision(b.ctx, true), b.ctx);
    assert.deepEqual(failures, []);
    for (const gone of ['/var/lib/waagent/provisioned', '/var/lib/waagent/ovf-env.xml', '/var/lib/waagent/WireServerEndpoint',
      '/var/lib/waagent/Certificates.pem', '/var/lib/waagent/Microsoft.Ext-1.0', '/var/log/azure/Microsoft.Ext',
      '/var/lib/dhcp/dhclient.eth0.leases', '/var/lib/dhclient/sub', '/var/lib/NetworkManager/dhclient-abc-eth0.lease',
      '/run/systemd/netif/leases/2', '/var/db/dhclient.leases.hn0', '/root/.bash_history', '/var/log/waagent.log',
      '/etc/resolv.conf', '/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_rsa_key.pub', '/lib/systemd/system/waagent-network-setup.service']) {
      assert.ok(!b.exists(gone), `${gone} should be gone`);
    }
    for (const kept of ['/var/lib/waagent', '/var/log/azure', '/var/lib/dhcp', '/var/lib/dhclient', '/var/lib/NetworkManager/NetworkManager.state',
      '/etc/ssh/sshd_config', '/etc/machine-id', '/run/systemd/netif/leases']) {
      assert.ok(b.exists(kept), `${kept} should be kept`);
    }
    assert.equal(fs.readFileSync(b.p('/etc/hostname'), 'utf8'), 'localhost.localdomain\n');
    const argvs = b.run.calls.map((c) => c.argv);
    assert.deepEqual(argvs.find((a) => a[0] === 'systemctl'), ['systemctl', 'stop', 'walinuxagent']); // Debian's service name
    assert.ok(argvs.some((a) => a.join(' ') === 'hostname localhost.localdomain'));
    assert.ok(argvs.some((a) => a.join(' ') === 'userdel -f -r bob'));
    assert.equal(fs.readFileSync(b.p('/etc/sudoers.d/waagent'), 'utf8'), 'bobby ALL=(ALL) ALL\n# bob was here\n');
  } finally { b.cleanup(); }
});

test('execute: the sshd drop-in written by provisioning is deleted; a drop-in of the same name not written by us is kept', async () => {
  const b = bed();
  try {
    fs.mkdirSync(b.p('/etc/ssh/sshd_config.d'), { recursive: true });
    fs.writeFileSync(b.p('/etc/ssh/sshd_config.d/40-waagent.conf'), '# Written by the Azure guest agent (waagent) during provisioning\nPasswordAuthentication no\n', { mode: 0o600 });
    fs.writeFileSync(b.p('/etc/ssh/sshd_config.d/50-admin.conf'), 'X11Forwarding no\n');
    const plan = planDeprovision(b.ctx, false);
    assert.ok(plan.warnings.some((w) => w.includes('/etc/ssh/sshd_config.d/40-waagent.conf')));
    assert.deepEqual(await executePlan(plan, b.ctx), []);
    assert.ok(!b.exists('/etc/ssh/sshd_config.d/40-waagent.conf'));
    assert.ok(b.exists('/etc/ssh/sshd_config.d/50-admin.conf'));
  } finally { b.cleanup(); }
  const c = bed();
  try {
    fs.mkdirSync(c.p('/etc/ssh/sshd_config.d'), { recursive: true });
    fs.writeFileSync(c.p('/etc/ssh/sshd_config.d/40-waagent.conf'), 'PasswordAuthentication yes\n');
    assert.deepEqual(await executePlan(planDeprovision(c.ctx, false), c.ctx), []);
    assert.ok(c.exists('/etc/ssh/sshd_config.d/40-waagent.conf'), 'an admin file of that name is not ours');
  } finally { c.cleanup(); }
});

test('execute: resolv.conf link rule — a link to an existing file is deleted, a dangling link is left', async () => {
  for (const [kind, gone] of [['file-link', true], ['dangling', false]] as const) {
    const b = bed({ resolv: kind });
    try {
      await executePlan(planDeprovision(b.ctx, false), b.ctx);
      assert.equal(!b.exists('/etc/resolv.conf'), gone, kind);
      if (kind === 'file-link') assert.ok(b.exists('/etc/resolv.conf.real'));
    } finally { b.cleanup(); }
  }
  const u = bed({ distro: 'ubuntu', version: '16.04', resolv: 'resolvconf' });
  try {
    await executePlan(planDeprovision(u.ctx, false), u.ctx);
    assert.ok(u.exists('/etc/resolv.conf') && u.exists('/etc/resolvconf/resolv.conf.d/head'));
    assert.ok(!u.exists('/etc/resolvconf/resolv.conf.d/tail') && !u.exists('/etc/resolvconf/resolv.conf.d/original'));
  } finally { u.cleanup(); }
});

test('execute: a failing action is logged and the others still run', async () => {
  const b = bed({ handler: (argv) => (argv[0] === 'systemctl' ? { code: 5, stderr: 'Unit waagent.service not loaded.' } : undefined) });
  try {
    const failures = await executePlan(planDeprovision(b.ctx, false), b.ctx);
    assert.deepEqual(failures.map((f) => f.name), ['stop the agent service']);
    assert.ok(b.mem.lines.some((l) => / ERROR .*Failed to stop the agent service: .*not loaded/.test(l)));
    assert.ok(!b.exists('/var/lib/waagent/provisioned'));
  } finally { b.cleanup(); }
});

test('execute: refuses to empty a top-level directory given as Lib.Dir', async () => {
  const b = bed();
  try {
    b.ctx.libDir = '/var';
    const failures = await executePlan(planDeprovision(b.ctx, false), b.ctx);
    assert.ok(failures.some((f) => /Refusing to empty \/var/.test(f.error)));
    assert.ok(b.exists('/var/lib/dhcp'));
  } finally { b.cleanup(); }
});

function io(input: string | null): DeprovisionIo & { text(): string; signals: EventEmitter & DeprovisionIo['signals'] } {
  const inp = new PassThrough(); const out = new PassThrough(); const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  if (input !== null) inp.end(input);
  const signals = new EventEmitter() as EventEmitter & DeprovisionIo['signals'];
  return { input: inp, output: out, signals, text: () => Buffer.concat(chunks).toString('utf8') };
}

test('command: prints warnings and the prompt; n / EOF leave everything, Y proceeds', async () => {
  for (const [answer, proceeds] of [['n\n', false], [null, false], ['', false], ['yes\n', true], ['Y\n', true], [' y\n', false]] as const) {
    const b = bed();
    try {
      const s = io(answer === null ? null : answer);
      if (answer === null) setTimeout(() => (s.input as PassThrough).end(), 20);
      const code = await runDeprovision({ force: false, verbose: false }, false, b.ctx, s);
      assert.equal(code, 0);
      assert.ok(s.text().includes('WARNING! The waagent service will be stopped.\n'));
      assert.ok(s.text().includes('Do you want to proceed (y/n)'));
      assert.equal(!b.exists('/var/lib/waagent/provisioned'), proceeds, JSON.stringify(answer));
    } finally { b.cleanup(); }
  }
});

test('command: SIGINT before the actions → "Deprovision is interrupted." and exit 0; during them it carries on', async () => {
  const b = bed();
  try {
    const s = io(null);
    const pending = runDeprovision({ force: false, verbose: false }, false, b.ctx, s);
    setTimeout(() => s.signals.emit('SIGINT'), 20);
    assert.equal(await pending, 0);
    assert.ok(s.text().includes('Deprovision is interrupted.'));
    assert.ok(b.exists('/var/lib/waagent/provisioned'));
    assert.equal(s.signals.listenerCount('SIGINT'), 0);
  } finally { b.cleanup(); }
  let s2!: ReturnType<typeof io>;
  const c = bed({ handler: (argv) => { if (argv[0] === 'systemctl') s2.signals.emit('SIGINT'); return undefined; } });
  try {
    s2 = io(null);
    assert.equal(await runDeprovision({ force: true, verbose: false }, false, c.ctx, s2), 0);
    assert.ok(s2.text().includes('Deprovisioning may not be interrupted.'));
    assert.ok(!c.exists('/var/lib/waagent/provisioned'));
  } finally { c.cleanup(); }
});

test('command: -force skips the prompt; a failed action gives exit 1; the log file is not recreated', async () => {
  const b = bed({ handler: (argv) => (argv[0] === 'userdel' ? { code: 8, stderr: 'userdel: user bob is currently used' } : undefined) });
  try {
    b.ctx.log.addAppender(fileAppender(b.p('/var/log/waagent.log'), Level.VERBOSE));
    b.ctx.log.info('before');
    const s = io(null);
    const code = await runDeprovision({ force: true, verbose: false }, true, b.ctx, s);
    assert.equal(code, 1);
    assert.ok(!s.text().includes('Do you want to proceed'));
    b.ctx.log.info('after the last action');
    assert.ok(!b.exists('/var/log/waagent.log'), 'log file recreated');
    assert.ok(s.text().includes('after the last action'));
  } finally { b.cleanup(); }
});

test('cleanupChangedInstance (§4.4): cached fabric and extension state gone; marker, certificates, extensions kept', () => {
  const b = bed();
  try {
    const w = (a: string) => { fs.mkdirSync(path.dirname(b.p(a)), { recursive: true }); fs.writeFileSync(b.p(a), 'x'); };
    const lib = '/var/lib/waagent';
    for (const f of ['HostingEnvironmentConfig.xml', 'Incarnation', 'SharedConfig.xml', 'GoalState.3.xml', 'ExtensionsConfig.3.xml',
      'Extensions.2.xml', 'published_hostname', 'Microsoft.Ext-1.0/config/0.settings', 'Microsoft.Ext-1.0/config/HandlerStatus',
      'Microsoft.Ext-1.0/mrseq', 'Microsoft.Ext-1.0/HandlerManifest.json', 'Microsoft.Ext-1.0/config/keep.json', 'GoalState.xml.keep']) w(`${lib}/${f}`);
    const problems = cleanupChangedInstance(b.ctx);
    assert.deepEqual(problems, []);
    for (const gone of ['HostingEnvironmentConfig.xml', 'Incarnation', 'SharedConfig.xml', 'GoalState.3.xml', 'ExtensionsConfig.3.xml',
      'Extensions.2.xml', 'published_hostname', 'WireServerEndpoint', 'Microsoft.Ext-1.0/config/0.settings',
      'Microsoft.Ext-1.0/config/HandlerStatus', 'Microsoft.Ext-1.0/mrseq', 'Microsoft.Ext-1.0/status/0.status']) {
      assert.ok(!b.exists(`${lib}/${gone}`), gone);
    }
    for (const kept of ['provisioned', 'ovf-env.xml', 'Certificates.pem', 'Microsoft.Ext-1.0/HandlerManifest.json',
      'Microsoft.Ext-1.0/config/keep.json', 'GoalState.xml.keep']) {
      assert.ok(b.exists(`${lib}/${kept}`), kept);
    }
    assert.ok(!b.exists('/var/lib/dhcp/dhclient.eth0.leases') && b.exists('/var/lib/dhcp'));
    assert.equal(b.run.calls.length, 0);
  } finally { b.cleanup(); }
});
