import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs, childArgs, type CliOptions } from '../../src/cli/args';
import { helpText, usageText, USAGE_LINE } from '../../src/cli/help';
import { versionText } from '../../src/cli/version';
import { registerService } from '../../src/cli/register-service';
import { runStart } from '../../src/cli/start';
import { OPTIONS } from '../../src/config/options';

const yes = () => true;
function ok(args: string[], exists: (p: string) => boolean = yes): CliOptions {
  const r = parseArgs(args, exists);
  assert.ok(r.ok, `expected ${JSON.stringify(args)} to parse: ${r.ok ? '' : r.message}`);
  return r.opts;
}

test('every spelling of a command word: -x, --x, /x, x, and prefixes such as -daemonize', () => {
  for (const a of ['-daemon', '--daemon', '/daemon', 'daemon', '-daemonize', '//daemon']) assert.equal(ok([a]).command, 'daemon', a);
  assert.equal(ok(['start']).command, 'start'); // FreeBSD rc.d passes a bare word
  assert.equal(ok(['-deprovision+user']).command, 'deprovision+user');
  assert.equal(ok(['-deprovision']).command, 'deprovision');
  assert.equal(ok(['-register-service']).command, 'register-service');
  assert.equal(ok(['-run-exthandlers']).command, 'run-exthandlers');
  assert.equal(ok(['--version']).command, 'version');
  assert.equal(ok(['-serialconsole']).command, 'serialconsole');
  assert.equal(ok(['-show-configuration']).command, 'show-configuration');
  for (const a of ['-help', '-usage', '-?', '/?', 'help']) assert.equal(ok([a]).command, 'help', a);
});

test('setup-firewall needs a dotted address; provision takes an optional ovf path', () => {
  const f = ok(['-setup-firewall=168.63.129.16']);
  assert.equal(f.command, 'setup-firewall');
  assert.equal(f.firewallIp, '168.63.129.16');
  const bad = parseArgs(['-setup-firewall'], yes);
  assert.equal(bad.ok, false);
  assert.equal(!bad.ok && bad.exitCode, 2);
  assert.equal(ok(['-provision']).ovfPath, undefined);
  const p = ok(['-provision:/tmp/ovf-env.xml']);
  assert.equal(p.command, 'provision');
  assert.equal(p.ovfPath, '/tmp/ovf-env.xml');
  // a later command drops the earlier command's argument
  const later = ok(['-provision:/x', '-version']);
  assert.equal(later.command, 'version');
  assert.equal(later.ovfPath, undefined);
});

test('the last command wins; flags anywhere; flags alone or nothing → help', () => {
  assert.equal(ok(['-version', '-daemon']).command, 'daemon');
  assert.equal(ok(['-daemon', '-version']).command, 'version');
  const o = ok(['-verbose', '-deprovision', '--force', '-debug', 'full']);
  assert.deepEqual([o.command, o.verbose, o.force, o.debug, o.full], ['deprovision', true, true, true, true]);
  assert.equal(ok(['-verbose']).command, 'help');
  assert.equal(ok([]).command, 'help');
  assert.equal(ok(['', '-version', '']).command, 'version'); // empty arguments are ignored
});

test('configuration-path: accepted characters, missing file → exit 1 (D26)', () => {
  const seen: string[] = [];
  const o = ok(['-configuration-path:/etc/my_waagent-1.conf', '-daemon'], (p) => { seen.push(p); return true; });
  assert.equal(o.configPath, '/etc/my_waagent-1.conf');
  assert.deepEqual(seen, ['/etc/my_waagent-1.conf']);
  const r = parseArgs(['-daemon', '-configuration-path:/nope.conf'], () => false);
  assert.deepEqual(r, { ok: false, exitCode: 1, message: 'Error: Configuration file /nope.conf does not exist' });
  // no path at all is not a configuration-path argument: it is an unknown word
  const empty = parseArgs(['-configuration-path:'], yes);
  assert.equal(!empty.ok && empty.exitCode, 2);
});

test('unknown words are usage errors (exit 2, D15), also after a valid command', () => {
  for (const args of [['-foo'], ['-daemon', 'bogus'], ['-v'], ['--log'], ['-collect-logs']]) {
    const r = parseArgs(args, yes);
    assert.equal(r.ok, false, args.join(' '));
    assert.equal(!r.ok && r.exitCode, 2);
    assert.match(!r.ok ? r.message : '', /Unknown argument/);
  }
});

test('--log-file=<path> (and --log-file <path>) through minimist', () => {
  assert.equal(ok(['-daemon', '--log-file=/tmp/a.log']).logFile, '/tmp/a.log');
  assert.equal(ok(['--log-file', '/tmp/b.log', '-version']).logFile, '/tmp/b.log');
  const r = parseArgs(['--log-file='], yes);
  assert.equal(!r.ok && r.exitCode, 2);
});

test('child arguments carry verbose, the configuration path and the log file', () => {
  const o = ok(['-verbose', '-configuration-path:/c.conf', '--log-file=/l', '-daemon']);
  assert.deepEqual(childArgs(o, '-run-exthandlers'), ['-run-exthandlers', '-verbose', '-configuration-path:/c.conf', '--log-file=/l']);
  assert.deepEqual(childArgs(ok(['-start']), '-daemon'), ['-daemon']);
});

test('help lists every command; usage is blank line, usage line, blank line', () => {
  const h = helpText();
  for (const c of ['-deprovision[+user]', '-register-service', '-version', '-daemon', '-start', '-run-exthandlers',
    '-show-configuration', '-serialconsole', '-setup-firewall=<ip>', '-provision', '-configuration-path:<path>', '-verbose', '-force']) {
    assert.ok(h.includes(c), c);
  }
  assert.equal(usageText(), `\n${USAGE_LINE}\n\n`);
});

test('help promises only what is built: a feature named in the help has its module in src/', () => {
  const h = helpText().toLowerCase();
  const src = path.join(__dirname, '../../../src');
  const built = (p: string) => fs.existsSync(path.join(src, p));
  const duties = fs.readFileSync(path.join(src, 'daemon/duty-list.ts'), 'utf8');
  const claims: [RegExp, boolean][] = [
    [/extension/, built('extensions')],
    [/resource disk/, /name: 'resource disk'/.test(duties.replace(/^\s*\/\/.*$/gm, ''))],
    [/the daemon starts it/, false], // the daemon runs the goal-state loop in its own process (§10.11, ours)
  ];
  for (const [re, ok] of claims) if (!ok) assert.doesNotMatch(h, re);
});

test('version: four lines, WALinuxAgent- prefix first (D3)', () => {
  const t = versionText({ id: 'ubuntu', like: ['debian'], version: '22.04', codename: 'jammy', fullName: 'Ubuntu', name: 'ubuntu' }, '24.21.0');
  assert.equal(t, 'WALinuxAgent-3.0.0.0 running on ubuntu 22.04\nNode: 24.21.0\nGoal state agent: 3.0.0.0\nwaagent-ts\n');
});

test('register-service: register, stop, start; a failing stop is ignored, a failing register or start is exit 1', async () => {
  const calls: string[] = [];
  const svc = (fail: string[]) => ({
    registerAgentService: async () => { calls.push('register'); if (fail.includes('register')) throw new Error('no'); },
    stopAgentService: async () => { calls.push('stop'); if (fail.includes('stop')) throw new Error('not running'); },
    startAgentService: async () => { calls.push('start'); if (fail.includes('start')) throw new Error('no'); },
  });
  const said: string[] = [];
  const errors: string[] = [];
  assert.equal(await registerService(svc(['stop']), (l) => said.push(l), (m) => errors.push(m)), 0);
  assert.deepEqual(calls, ['register', 'stop', 'start']);
  assert.deepEqual(said, ['Register WALinuxAgent service', 'Stop WALinuxAgent service', 'Start WALinuxAgent service']);
  assert.equal(errors.length, 0);
  assert.equal(await registerService(svc(['register']), () => {}, (m) => errors.push(m)), 1);
  assert.equal(await registerService(svc(['start']), () => {}, (m) => errors.push(m)), 1);
  assert.equal(errors.length, 2);
});

test('-start spawns the daemon detached with the configuration path; a missing program is exit 1', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-start-'));
  const out = path.join(dir, 'args');
  const script = path.join(dir, 'fake.js');
  fs.writeFileSync(script, `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify([process.argv.slice(2), process.pid, require('fs').readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[3]]))`);
  const o = ok(['-start', '-configuration-path:/c.conf'], yes);
  assert.equal(await runStart(o, [process.execPath, script]), 0);
  for (let i = 0; i < 100 && !fs.existsSync(out); i++) await new Promise((r) => setTimeout(r, 50));
  const [args, pid, session] = JSON.parse(fs.readFileSync(out, 'utf8')) as [string[], number, string];
  assert.deepEqual(args, ['-daemon', '-configuration-path:/c.conf']);
  assert.equal(Number(session), pid, 'the daemon leads its own session (setsid)');
  assert.equal(await runStart(o, [path.join(dir, 'does-not-exist')]), 1);
  fs.rmSync(dir, { recursive: true, force: true });
});

// End to end against the bundle, when it has been built (node build.mjs --js-only).
const bundle = path.join(__dirname, '../../../dist/waagent.js');
const e2e = fs.existsSync(bundle) ? {} : { skip: 'dist/waagent.js not built (node build.mjs --js-only)' };

function run(args: string[]) {
  return spawnSync(process.execPath, [bundle, ...args], { cwd: os.tmpdir(), encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
}

test('e2e: -version, -help, unknown word', e2e, () => {
  const v = run(['-version']);
  assert.equal(v.status, 0);
  assert.equal(v.stderr, '');
  const lines = v.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines[0], /^WALinuxAgent-3\.0\.0\.0 running on /);
  assert.equal(lines[1], `Node: ${process.versions.node}`);
  const h = run(['-help']);
  assert.equal(h.status, 0);
  assert.ok(h.stdout.includes(USAGE_LINE));
  const u = run(['-daemon', '-bogus']);
  assert.equal(u.status, 2);
  assert.equal(u.stdout, '');
  assert.ok(u.stderr.includes('Unknown argument: -bogus'));
  assert.ok(u.stderr.includes(USAGE_LINE));
  const m = run(['-show-configuration', '-configuration-path:/nonexistent/waagent.conf']);
  assert.equal(m.status, 1);
  assert.ok(m.stderr.startsWith('Error: Configuration file /nonexistent/waagent.conf does not exist\n'));
});

test('e2e: -show-configuration -configuration-path:<tmp>', e2e, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-e2e-'));
  const conf = path.join(dir, 'waagent.conf');
  fs.writeFileSync(conf, `Logs.Console=n\nExtension.LogDir=${dir}/azure\nResourceDisk.SwapSizeMB=512\nOS.EnableFIPS=maybe\nNo.Such=1\n`);
  const r = run(['-show-configuration', `-configuration-path:${conf}`, `--log-file=${dir}/waagent.log`]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, OPTIONS.length);
  assert.ok(lines.includes('ResourceDisk.SwapSizeMB = 512'));
  assert.ok(lines.includes('OS.EnableFIPS = False'));
  assert.ok(lines.includes('Logs.Console = False'));
  // problems are logged (stderr and the log file), never mixed into the table
  assert.match(r.stderr, /waagent\.conf:4: invalid value 'maybe' for OS\.EnableFIPS/);
  assert.match(r.stderr, /unknown configuration option No\.Such/);
  assert.match(fs.readFileSync(path.join(dir, 'waagent.log'), 'utf8'), /WARNING Daemon .*invalid value 'maybe'/);
  assert.equal(fs.statSync(path.join(dir, 'azure')).mode & 0o777, 0o755);
  const empty = path.join(dir, 'empty.conf');
  fs.writeFileSync(empty, '');
  const e = run(['-show-configuration', `-configuration-path:${empty}`, `--log-file=${dir}/waagent.log`]);
  assert.equal(e.status, 1);
  assert.match(e.stderr, /Failed to run 'show-configuration': .*empty/);
  assert.equal(e.stderr.match(/Failed to run/g)?.length, 1);
  fs.rmSync(dir, { recursive: true, force: true });
});

const sea = path.join(__dirname, '../../../dist/waagent-linux-x64');
test('e2e: the single executable runs -version from / with an empty environment, without warnings', fs.existsSync(sea) ? {} : { skip: 'dist/waagent-linux-x64 not built (node build.mjs)' }, () => {
  const r = spawnSync(sea, ['-version'], { cwd: '/', env: {}, encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^WALinuxAgent-3\.0\.0\.0 running on .*\nNode: 24\.\d+\.\d+\nGoal state agent: 3\.0\.0\.0\nwaagent-ts\n$/);
  const u = spawnSync(sea, ['-nonsense'], { cwd: '/', env: {}, encoding: 'utf8' });
  assert.equal(u.status, 2);
});
