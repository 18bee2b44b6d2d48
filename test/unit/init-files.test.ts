/**
 * A linter for the init files whose systems are not in the test bed (provisioning-and-os.md §10.2, §10.3, §10.6,
 * §10.7): the FreeBSD and OpenBSD rc.d scripts, the CoreOS/Flatcar unit, and the shape of the systemd unit, slice and
 * SysV script that the VM tests run for real. Shape (headers, required variables and calls), paths (the binary, the
 * PID file, the interpreter that the daemon's command line shows), syntax (`sh -n`) and modes in the repository.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const TOP = join(__dirname, '..', '..', '..');
const INIT = join(TOP, 'init');
const read = (p: string): string => readFileSync(join(INIT, p), 'utf8');
const mode = (p: string): number => statSync(join(INIT, p)).mode & 0o777;

/** Parses a systemd unit file: section → key → values (repeated keys accumulate), rejecting lines outside the grammar. */
export function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  let cur: Map<string, string[]> | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) return;
    const sec = /^\[([A-Za-z]+)\]$/.exec(line);
    if (sec) { cur = new Map(); out.set(sec[1], cur); return; }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!kv || !cur) throw new Error(`line ${i + 1} is not a unit-file line: ${raw}`);
    cur.set(kv[1], [...(cur.get(kv[1]) ?? []), kv[2].trim()]);
  });
  return out;
}

const one = (u: Map<string, Map<string, string[]>>, sec: string, key: string): string | undefined => {
  const v = u.get(sec)?.get(key);
  assert.ok(!v || v.length === 1, `${sec}.${key} given twice`);
  return v?.[0];
};

function shSyntax(file: string, shell = 'sh'): void {
  execFileSync(shell, ['-n', join(INIT, file)]);
}

/** Shell assignments `name="value"` (or unquoted) at the start of a line. */
function assignments(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of text.split('\n')) {
    const a = /^([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|(\S*))\s*$/.exec(l);
    if (a) m.set(a[1], a[2] ?? a[3]);
  }
  return m;
}

test('systemd unit (§10.2): sections, ExecStart, Restart, slice, accounting, ordering, KillMode; mode 0644', () => {
  const u = parseUnit(read('waagent.service'));
  assert.deepEqual([...u.keys()], ['Unit', 'Service', 'Install']);
  assert.equal(one(u, 'Service', 'ExecStart'), '/usr/sbin/waagent -daemon');
  assert.equal(one(u, 'Service', 'Type'), 'simple');
  assert.equal(one(u, 'Service', 'Restart'), 'always');
  assert.equal(one(u, 'Service', 'Slice'), 'azure.slice');
  assert.equal(one(u, 'Service', 'CPUAccounting'), 'yes');
  assert.equal(one(u, 'Service', 'MemoryAccounting'), 'yes');
  assert.equal(one(u, 'Service', 'KillMode'), 'control-group');
  const after = one(u, 'Unit', 'After')!.split(/\s+/);
  for (const x of ['network-online.target', 'cloud-init.service']) assert.ok(after.includes(x), `After= lacks ${x}`);
  assert.ok(one(u, 'Unit', 'Wants')!.split(/\s+/).includes('sshd.service'));
  assert.equal(one(u, 'Unit', 'ConditionFileIsExecutable'), '/usr/sbin/waagent');
  assert.equal(one(u, 'Unit', 'ConditionPathExists'), '/etc/waagent.conf');
  assert.equal(one(u, 'Install', 'WantedBy'), 'multi-user.target');
  assert.equal(mode('waagent.service'), 0o644);
  const s = parseUnit(read('azure.slice'));
  assert.equal(one(s, 'Unit', 'DefaultDependencies'), 'no');
  assert.equal(one(s, 'Unit', 'Before'), 'slices.target');
  assert.equal(mode('azure.slice'), 0o644);
});

test('CoreOS/Flatcar unit (§10.2): the OEM paths, Restart=always, RestartSec=5s, ordered after sshd-keygen', () => {
  const u = parseUnit(read('coreos/waagent.service'));
  assert.deepEqual([...u.keys()], ['Unit', 'Service', 'Install']);
  assert.equal(one(u, 'Unit', 'Description'), 'Microsoft Azure Agent');
  assert.equal(one(u, 'Service', 'ExecStart'), '/usr/share/oem/bin/waagent -daemon');
  assert.equal(one(u, 'Service', 'Type'), 'simple');
  assert.equal(one(u, 'Service', 'Restart'), 'always');
  assert.equal(one(u, 'Service', 'RestartSec'), '5s');
  assert.deepEqual(one(u, 'Unit', 'After')!.split(/\s+/).sort(), ['network-online.target', 'sshd-keygen.service']);
  assert.deepEqual(one(u, 'Unit', 'Wants')!.split(/\s+/).sort(), ['network-online.target', 'sshd-keygen.service']);
  assert.equal(one(u, 'Install', 'WantedBy'), 'multi-user.target');
  assert.equal(mode('coreos/waagent.service'), 0o644);
});

test('SysV script (§10.3): chkconfig line and LSB block, verbs, PID file, exit codes; sh -n; mode 0755', () => {
  const t = read('waagent');
  assert.ok(t.startsWith('#!/bin/sh\n'));
  assert.match(t, /^# chkconfig: 2345 60 80$/m);
  const lsb = /### BEGIN INIT INFO\n([\s\S]*?)### END INIT INFO/.exec(t)?.[1] ?? '';
  const field = (k: string): string | undefined => new RegExp(`^# ${k}:\\s+(.*)$`, 'm').exec(lsb)?.[1].trim();
  assert.equal(field('Provides'), 'waagent');
  assert.equal(field('Required-Start'), '$network $remote_fs $syslog');
  assert.equal(field('Should-Start'), 'sshd');
  assert.equal(field('Required-Stop'), '$network');
  assert.equal(field('Default-Start'), '2 3 4 5');
  assert.equal(field('Default-Stop'), '0 1 6');
  const a = assignments(t);
  assert.equal(a.get('WAAGENT'), '/usr/sbin/waagent');
  assert.equal(a.get('PIDFILE'), '/var/run/waagent.pid');
  assert.equal(a.get('WAAGENT_CONF'), '/etc/waagent.conf');
  assert.match(t, /exit 5; \}/);
  assert.match(t, /exit 6; \}/);
  for (const verb of ['start', 'stop', 'restart\\|force-reload', 'status', 'reload']) assert.match(t, new RegExp(`^\\s+${verb}\\)`, 'm'), `verb ${verb}`);
  assert.match(t, /"\$WAAGENT" -start/);
  shSyntax('waagent');
  assert.equal(mode('waagent'), 0o755);
});

test('FreeBSD rc.d (§10.6): rc.subr shape, rcvar, PID file, command and its interpreter, -start; sh -n', () => {
  const t = read('freebsd/waagent');
  assert.ok(t.startsWith('#!/bin/sh\n'));
  assert.match(t, /^# PROVIDE: waagent$/m);
  assert.match(t, /^# REQUIRE: sshd netif dhclient$/m);
  assert.match(t, /^# KEYWORD: nojail$/m);
  assert.match(t, /^\. \/etc\/rc\.subr$/m);
  const a = assignments(t);
  assert.equal(a.get('name'), 'waagent');
  assert.equal(a.get('rcvar'), 'waagent_enable');
  assert.equal(a.get('pidfile'), '/var/run/waagent.pid');
  assert.equal(a.get('command'), '/usr/local/sbin/${name}');
  // The daemon runs as `<node> /usr/local/sbin/waagent -daemon` (cli/start.ts selfArgv for a script): rc.subr
  // matches that against command_interpreter + command, so the interpreter must be the script's shebang.
  assert.equal(a.get('command_interpreter'), '/usr/local/bin/node');
  assert.equal(a.get('command_args'), '-start');
  const lines = t.split('\n');
  const load = lines.findIndex((l) => l.startsWith('load_rc_config $name'));
  const run = lines.findIndex((l) => l === 'run_rc_command "$1"');
  assert.ok(load > 0 && run > load, 'load_rc_config before run_rc_command "$1"');
  assert.ok(lines.findIndex((l) => l.startsWith('. /etc/rc.subr')) < load);
  shSyntax('freebsd/waagent');
  assert.equal(mode('freebsd/waagent'), 0o755);
});

test('OpenBSD rc.d (§10.7): daemon and flags, pexp describes the daemon process, rc_reload=NO, rc_cmd; sh -n', () => {
  const t = read('openbsd/waagent');
  assert.ok(t.startsWith('#!/bin/ksh\n'));
  const a = assignments(t);
  assert.equal(a.get('daemon'), '/usr/local/sbin/waagent');
  assert.equal(a.get('daemon_flags'), '-start');
  assert.equal(a.get('rc_reload'), 'NO');
  const pexp = a.get('pexp')!;
  assert.equal(pexp, '/usr/local/bin/node ${daemon} -daemon.*');
  // pexp is a regular expression over `pgrep -lf`'s command line of the daemon, never of the -start process.
  const re = new RegExp(`^${pexp.replace('${daemon}', '/usr/local/sbin/waagent')}$`);
  assert.ok(re.test('/usr/local/bin/node /usr/local/sbin/waagent -daemon'));
  assert.ok(re.test('/usr/local/bin/node /usr/local/sbin/waagent -daemon -configuration-path:/etc/w.conf'));
  assert.ok(!re.test('/usr/local/bin/node /usr/local/sbin/waagent -start'));
  const lines = t.split('\n');
  const subr = lines.findIndex((l) => l === '. /etc/rc.d/rc.subr');
  assert.ok(subr > lines.findIndex((l) => l.startsWith('daemon=')), 'daemon= must be set before rc.subr is sourced');
  assert.ok(lines.findIndex((l) => l.startsWith('pexp=')) > subr, 'pexp after rc.subr (it sets a default)');
  assert.equal(lines.filter((l) => l.trim()).at(-1), 'rc_cmd $1');
  shSyntax('openbsd/waagent');
  assert.equal(mode('openbsd/waagent'), 0o755);
});

test('logrotate (§10.10): HEAD\'s options, no copytruncate', () => {
  const t = read('waagent.logrotate');
  assert.match(t, /^\/var\/log\/waagent\.log \{$/m);
  for (const o of ['compress', 'size 20M', 'rotate 50', 'dateext', 'notifempty', 'missingok']) assert.match(t, new RegExp(`^\\s+${o}$`, 'm'), o);
  assert.doesNotMatch(t, /^\s+copytruncate/m);
  assert.equal(mode('waagent.logrotate'), 0o644);
});

test('the unit parser rejects what is not a unit file (a linter that cannot fail is no linter)', () => {
  assert.throws(() => parseUnit('ExecStart=/x\n'), /not a unit-file line/);
  assert.throws(() => parseUnit('[Service]\nExecStart /x\n'), /not a unit-file line/);
  assert.throws(() => one(parseUnit('[Service]\nType=simple\nType=forking\n'), 'Service', 'Type'), /given twice/);
  assert.throws(() => execFileSync('sh', ['-n', '-c', 'if then fi'], { stdio: 'ignore' }));
});
