import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Config } from '../../src/config/config';
import { OPTIONS, OPTION_BY_NAME } from '../../src/config/options';
import { defaultConfigPath, distroDefaults, loadConfig, reportProblems, ConfigFileError } from '../../src/config/load';
import { configurationText } from '../../src/cli/show-configuration';
import { SysRoot } from '../../src/core/sysroot';
import { Logger, memoryAppender } from '../../src/core/log';
import type { DistroInfo } from '../../src/os/detect';

const distro = (id: string, extra: Partial<DistroInfo> = {}): DistroInfo =>
  ({ id, like: [], version: '1', codename: '', fullName: id, name: id, ...extra });

function tmpRoot(): string { return fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-conf-')); }

test('switches: y/n in any case; anything else is the default', () => {
  const c = Config.parse('Provisioning.Enabled=N\nResourceDisk.Format=Y\nOS.EnableFIPS=yes\nLogs.Console=1\n', 'f');
  assert.equal(c.bool('Provisioning.Enabled'), false);
  assert.equal(c.bool('ResourceDisk.Format'), true);
  assert.equal(c.bool('OS.EnableFIPS'), false); // default n; "yes" is not y
  assert.equal(c.bool('Logs.Console'), true); // default y; "1" is not n
  assert.deepEqual(c.problems.map((p) => `${p.key}:${p.line}`).sort(), ['Logs.Console:4', 'OS.EnableFIPS:3']);
  assert.match(c.problems.find((p) => p.key === 'OS.EnableFIPS')!.message, /^f:3: invalid value 'yes' for OS\.EnableFIPS .*default False/);
});

test('integers: base 10, bad values fall back to the default with file:line', () => {
  const c = Config.parse('# comment\nResourceDisk.SwapSizeMB=2048\nProvisioning.PasswordCryptSaltLength=ten\nHttpProxy.Port=3128\n', '/etc/waagent.conf');
  assert.equal(c.int('ResourceDisk.SwapSizeMB'), 2048);
  assert.equal(c.int('Provisioning.PasswordCryptSaltLength'), 10);
  assert.equal(c.int('HttpProxy.Port'), 3128);
  assert.equal(c.int('Autoupdate.Frequency'), 3600);
  assert.equal(c.problems.length, 1);
  assert.match(c.problems[0].message, /^\/etc\/waagent\.conf:3: invalid value 'ten' for Provisioning\.PasswordCryptSaltLength/);
});

test('strings: value as written; None means unset; absent string with no default is null', () => {
  const c = Config.parse('ResourceDisk.MountPoint=/mnt\nOS.OpensslPath=None\nResourceDisk.MountOptions=compress=lzo,noatime\n', 'f');
  assert.equal(c.str('ResourceDisk.MountPoint'), '/mnt');
  assert.equal(c.str('OS.OpensslPath'), '/usr/bin/openssl');
  assert.equal(c.has('OS.OpensslPath'), false);
  assert.equal(c.str('ResourceDisk.MountOptions'), 'compress=lzo,noatime'); // split on the first = only
  assert.equal(c.str('HttpProxy.Host'), null);
  assert.throws(() => c.s('HttpProxy.Host'), /has no value/);
});

test('quotes, spaces, end-of-line comments and CRLF are stripped', () => {
  const c = Config.parse('Provisioning.SshHostKeyPairType = "ed25519"  # the type\r\nOS.SshDir="  /etc/ssh2 "\nLogs.Verbose=y\r\n', 'f');
  assert.equal(c.str('Provisioning.SshHostKeyPairType'), 'ed25519');
  assert.equal(c.str('OS.SshDir'), '/etc/ssh2');
  assert.equal(c.bool('Logs.Verbose'), true);
  assert.deepEqual(c.problems, []);
});

test('comment lines, lines without =, and keys with leading # are ignored', () => {
  const c = Config.parse('#Logs.Verbose=y\nLogs.Verbose\njust text\n=novalue\n', 'f');
  assert.equal(c.bool('Logs.Verbose'), false);
  assert.equal(c.has('Logs.Verbose'), false);
});

test('later duplicates win; None after a value unsets it', () => {
  const c = Config.parse('ResourceDisk.Filesystem=ext3\nResourceDisk.Filesystem=xfs\nOS.SshDir=/x\nOS.SshDir=None\n', 'f');
  assert.equal(c.str('ResourceDisk.Filesystem'), 'xfs');
  assert.equal(c.str('OS.SshDir'), '/etc/ssh');
});

test('an empty (or blank) file is an error', () => {
  assert.throws(() => Config.parse('', 'f'), /cannot parse empty configuration/);
  assert.throws(() => Config.parse(' \n\n', 'f'), /cannot parse empty configuration/);
});

test('unknown keys are collected once; keys of shipped samples are silent', () => {
  const c = Config.parse('Foo.Bar=1\nFoo.Bar=2\nRole.StateConsumer=None\nHome.Dir=/home\nNetwork.Interface=eth0\n', 'f');
  assert.deepEqual(c.unknownKeys, ['Foo.Bar']);
  const logger = new Logger(); const mem = memoryAppender(); logger.addAppender(mem);
  reportProblems(c, logger);
  assert.equal(mem.lines.filter((l) => l.includes('unknown configuration option Foo.Bar')).length, 1);
});

test('-show-configuration: every option once, byte order, True/False/None, both D29 keys', () => {
  const c = Config.parse('Provisioning.Enabled=n\nHttpProxy.Port=80\n', 'f');
  const lines = configurationText(c).trimEnd().split('\n');
  assert.equal(lines.length, OPTIONS.length);
  const keys = lines.map((l) => l.split(' = ')[0]);
  assert.deepEqual(keys, [...keys].sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b)))));
  assert.ok(keys.indexOf('AutoUpdate.GAFamily') < keys.indexOf('Autoupdate.Frequency'));
  assert.ok(keys.indexOf('Autoupdate.Frequency') < keys.indexOf('DVD.MountPoint'));
  assert.ok(lines.includes('Provisioning.Enabled = False'));
  assert.ok(lines.includes('Provisioning.Agent = auto'));
  assert.ok(lines.includes('HttpProxy.Port = 80'));
  assert.ok(lines.includes('HttpProxy.Host = None'));
  assert.ok(lines.includes('LBProbeResponder = True'));
});

test('the option table: unique names, defaults of the declared type (spec §2.3/§2.4 samples)', () => {
  assert.equal(OPTION_BY_NAME.size, OPTIONS.length);
  for (const o of OPTIONS) {
    if (o.def === null) { assert.notEqual(o.type, 'switch', o.name); continue; }
    assert.equal(typeof o.def, o.type === 'switch' ? 'boolean' : o.type === 'int' ? 'number' : 'string', o.name);
  }
  // A few code defaults that differ from the sample file (a classic source of bugs).
  assert.equal(OPTION_BY_NAME.get('ResourceDisk.Format')!.def, false);
  assert.equal(OPTION_BY_NAME.get('ResourceDisk.Filesystem')!.def, 'ext3');
  assert.equal(OPTION_BY_NAME.get('Provisioning.DeleteRootPassword')!.def, false);
  assert.equal(OPTION_BY_NAME.get('EnableOverProvisioning')!.def, true);
  assert.equal(OPTION_BY_NAME.get('Extensions.GoalStatePeriod')!.def, 6);
});

test('default configuration path per distro, with the FreeBSD and Flatcar fall-backs', () => {
  const none = () => false;
  assert.equal(defaultConfigPath(distro('ubuntu'), none), '/etc/waagent.conf');
  assert.equal(defaultConfigPath(distro('openbsd'), none), '/etc/waagent.conf');
  assert.equal(defaultConfigPath(distro('freebsd'), none), '/usr/local/etc/waagent.conf');
  assert.equal(defaultConfigPath(distro('freebsd'), (p) => p === '/etc/waagent.conf'), '/etc/waagent.conf');
  assert.equal(defaultConfigPath(distro('freebsd'), () => true), '/usr/local/etc/waagent.conf');
  assert.equal(defaultConfigPath(distro('coreos'), none), '/usr/share/oem/waagent.conf');
  assert.equal(defaultConfigPath(distro('flatcar'), (p) => p === '/etc/waagent.conf'), '/etc/waagent.conf');
  assert.equal(defaultConfigPath(distro('flatcar'), () => true), '/usr/share/oem/waagent.conf');
  assert.equal(defaultConfigPath(distro('clear-linux-os'), none), '/usr/share/defaults/waagent/waagent.conf');
});

test('loadConfig: reads under the root, applies BSD default corrections under the file, reports errors', () => {
  const dir = tmpRoot();
  const root = new SysRoot(dir);
  fs.mkdirSync(path.join(dir, 'etc'));
  fs.writeFileSync(path.join(dir, 'etc/waagent.conf'), '\uFEFFOS.SudoersDir=/opt/sudoers.d\nLogs.Verbose=maybe\n');
  const c = loadConfig('/etc/waagent.conf', root, distro('freebsd'));
  assert.equal(c.str('OS.PasswordPath'), '/etc/master.passwd');
  assert.equal(c.str('OS.SudoersDir'), '/opt/sudoers.d');
  assert.equal(c.str('ResourceDisk.Filesystem'), 'ufs');
  assert.equal(c.has('Provisioning.Enabled'), false);
  assert.equal(c.problems.length, 1);
  assert.equal(loadConfig('/etc/waagent.conf', root, distro('ubuntu')).str('OS.PasswordPath'), '/etc/shadow');
  for (const d of ['freebsd', 'openbsd', 'bigip', 'ubuntu']) {
    assert.ok(Object.keys(distroDefaults(distro(d))).every((k) => OPTION_BY_NAME.has(k) && !k.startsWith('Provisioning.')), d);
  }
  assert.throws(() => loadConfig('/etc/missing.conf', root, distro('ubuntu')), (e: Error) => e instanceof ConfigFileError && /Missing configuration in \/etc\/missing\.conf/.test(e.message));
  fs.writeFileSync(path.join(dir, 'etc/empty.conf'), '');
  assert.throws(() => loadConfig('/etc/empty.conf', root, distro('ubuntu')), /empty/);
  fs.mkdirSync(path.join(dir, 'etc/dir.conf'));
  assert.throws(() => loadConfig('/etc/dir.conf', root, distro('ubuntu')), /Cannot read configuration file/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('AutoUpdate.Enabled=y is accepted and noted once as ignored (D4)', () => {
  const logger = new Logger(); const mem = memoryAppender(); logger.addAppender(mem);
  reportProblems(Config.parse('AutoUpdate.Enabled=y\n', 'f'), logger);
  assert.equal(mem.lines.filter((l) => /AutoUpdate\.Enabled is ignored/.test(l)).length, 1);
  const mem2 = memoryAppender(); const l2 = new Logger(); l2.addAppender(mem2);
  reportProblems(Config.parse('AutoUpdate.Enabled=n\n', 'f'), l2);
  assert.equal(mem2.lines.length, 0);
});
