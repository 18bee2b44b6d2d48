// The §13.2 fake extension script, run directly with the system's POSIX sh in a temp handler directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { FAKE_SCRIPT, FAKE_LOG, FAKE_STATUS_KINDS, readFakeLog, fakeCallOrder, fakeHandlerManifest, fakeExtensionZip } from '../fabric/fake-extension';
import { makeTenantCertificate, encryptProtectedSettings } from '../fabric/certgen';
import { extractZipSafely } from '../../src/extensions/unzip';

interface Handler { lib: string; h: string }
function handler(settings: Record<string, unknown> | undefined, seq = 0, ext?: string): Handler {
  const lib = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-fake-'));
  const h = path.join(lib, 'Test.Fake-1.0.0');
  fs.mkdirSync(path.join(h, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(h, 'config'));
  fs.writeFileSync(path.join(h, 'bin', 'fake.sh'), FAKE_SCRIPT, { mode: 0o744 });
  fs.writeFileSync(path.join(h, 'HandlerEnvironment.json'), JSON.stringify([{ version: 1.0, handlerEnvironment: { eventsFolder: path.join(lib, 'etp') } }]));
  if (settings) fs.writeFileSync(path.join(h, 'config', `${ext ? ext + '.' : ''}${seq}.settings`), JSON.stringify({ runtimeSettings: [{ handlerSettings: settings }] }));
  return { lib, h };
}
/** Runs `fake.sh <op>` as the agent does: stdin /dev/null, stdout/stderr into files (never pipes: daemons keep them). */
function run(x: Handler, op: string, env: Record<string, string> = {}): { status: number | null; stdout: Buffer; stderr: Buffer } {
  const out = path.join(x.lib, `out.${op}`); const err = path.join(x.lib, `err.${op}`);
  const o = fs.openSync(out, 'w'); const e = fs.openSync(err, 'w');
  try {
    const r = spawnSync('sh', ['bin/fake.sh', op], { cwd: x.h, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ConfigSequenceNumber: '0', ...env }, stdio: ['ignore', o, e], timeout: 20_000 });
    return { status: r.status, stdout: fs.readFileSync(out), stderr: fs.readFileSync(err) };
  } finally { fs.closeSync(o); fs.closeSync(e); }
}
const fake = (directives: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ publicSettings: { fake: directives }, ...extra });

test('each call appends one record: operation, arguments, ids, umask, group/session, fds, environment, settings facts', () => {
  const x = handler(fake(''));
  assert.equal(run(x, 'install', { AZURE_GUEST_AGENT_EXTENSION_VERSION: '1.0.0', VERSION: '1.0.0' }).status, 0);
  assert.equal(run(x, 'enable', { ConfigSequenceNumber: '0' }).status, 0);
  const recs = readFakeLog(path.join(x.lib, FAKE_LOG));
  assert.deepEqual(fakeCallOrder(recs), ['install@Test.Fake-1.0.0', 'enable@Test.Fake-1.0.0']);
  const r = recs[0];
  assert.equal(r.argc, 1);
  assert.equal(r.args, 'install');
  assert.equal(r.pwd, x.h);
  assert.equal(r.uid, String(process.getuid?.()));
  assert.match(r.umask ?? '', /^0?[0-7]{3}$/);
  // Run directly by node here (not through the agent's setsid launch): the group and session are the test runner's,
  // which read 0 when their leader is outside this PID namespace (as under CI's container). Parsed, never missing.
  assert.match(r.pgid ?? '', /^\d+$/);
  assert.match(r.sid ?? '', /^\d+$/);
  assert.equal(r.ppid, String(process.pid));
  assert.equal(r.env?.AZURE_GUEST_AGENT_EXTENSION_VERSION, '1.0.0');
  assert.equal(r.env?.VERSION, '1.0.0');
  assert.equal(r.seq, '0');
  assert.equal(r.settingsExists, true);
  assert.equal(r.handlerEnvExists, true);
  assert.equal(r.fds?.['0'], '/dev/null');
  assert.equal(r.fds?.['1'], path.join(x.lib, 'out.install'));
  assert.deepEqual(recs.filter((e) => e.event === 'exit').map((e) => e.code), [0, 0]);
});

test('exit codes per operation: "<op>.exit" wins over "exit"', () => {
  const x = handler(fake('exit=3 enable.exit=7'));
  assert.equal(run(x, 'install').status, 3);
  assert.equal(run(x, 'enable').status, 7);
});

test('no settings file: the fake still records and exits 0; seqNo falls back to the highest settings file', () => {
  const x = handler(undefined);
  assert.equal(run(x, 'install', { ConfigSequenceNumber: '' }).status, 0);
  fs.writeFileSync(path.join(x.h, 'config', '2.settings'), JSON.stringify({ runtimeSettings: [{ handlerSettings: fake('exit=2') }] }));
  fs.writeFileSync(path.join(x.h, 'config', '10.settings'), JSON.stringify({ runtimeSettings: [{ handlerSettings: fake('exit=5') }] }));
  assert.equal(run(x, 'enable', { ConfigSequenceNumber: '' }).status, 5);
  assert.deepEqual(readFakeLog(path.join(x.lib, FAKE_LOG)).filter((r) => !r.event).map((r) => [r.seq, r.settingsExists]), [['', false], ['10', true]]);
});

test('out/err: n bytes with distinct first and last lines', () => {
  const x = handler(fake('out=5000 err=300'));
  const r = run(x, 'enable');
  assert.equal(r.stdout.length, 5000);
  assert.equal(r.stderr.length, 300);
  assert.match(r.stdout.toString(), /^FAKE-OUT-FIRST\n.*\nFAKE-OUT-LAST$/s);
  assert.match(r.stderr.toString(), /^FAKE-ERR-FIRST\n.*\nFAKE-ERR-LAST$/s);
});

test('status kinds write the §8.2 cases to status/<seq>.status', () => {
  const expectJson: Record<string, (v: unknown) => boolean> = {
    transitioning: (v) => (v as any)[0].status.status === 'transitioning',
    success: (v) => (v as any)[0].status.status === 'success' && (v as any)[0].status.operation === 'Enable' && Array.isArray((v as any)[0].status.substatus),
    error: (v) => (v as any)[0].status.status === 'error' && (v as any)[0].status.code === 1,
    warning: (v) => (v as any)[0].status.status === 'warning',
    Success: (v) => (v as any)[0].status.status === 'Success',
    notarray: (v) => !Array.isArray(v),
    emptyarray: (v) => Array.isArray(v) && v.length === 0,
    nostatuskey: (v) => (v as any)[0].status === undefined,
    badsubstatus: (v) => (v as any)[0].status.substatus === 'oops',
    stringcode: (v) => (v as any)[0].status.code === 'abc',
    huge: (v) => (v as any)[0].status.formattedMessage.message.length === 140000,
    hugenull: (v) => (v as any)[0].status.formattedMessage === null && (v as any)[0].status.substatus[0].name.length === 140000,
  };
  for (const kind of FAKE_STATUS_KINDS) {
    const x = handler(fake(`status=${kind}`));
    assert.equal(run(x, 'enable').status, 0, kind);
    const f = path.join(x.h, 'status', '0.status');
    if (kind === 'none') { assert.ok(!fs.existsSync(f)); continue; }
    const raw = fs.readFileSync(f);
    if (kind === 'invalidjson') { assert.throws(() => JSON.parse(raw.toString())); continue; }
    if (kind === 'nonutf8') {
      assert.ok(raw.includes(Buffer.from([0xff, 0xfe])), 'raw non-UTF-8 bytes');
      assert.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(raw));
      continue;
    }
    assert.ok(expectJson[kind](JSON.parse(raw.toString())), kind);
    if (kind === 'huge') assert.ok(raw.length > 128 * 1024);
  }
});

test('multi-config: ConfigExtensionName picks config/<X>.<seq>.settings and names status/<X>.<seq>.status', () => {
  const x = handler(fake('status=success exit=4'), 3, 'MCExt1');
  assert.equal(run(x, 'enable', { ConfigExtensionName: 'MCExt1', ConfigSequenceNumber: '3' }).status, 4);
  assert.ok(fs.existsSync(path.join(x.h, 'status', 'MCExt1.3.status')));
  assert.equal(readFakeLog(path.join(x.lib, FAKE_LOG))[0].extName, 'MCExt1');
});

test('heartbeat, back-dated heartbeat, invalid heartbeat', () => {
  const x = handler(fake('heartbeat=ready'));
  run(x, 'enable');
  assert.equal(JSON.parse(fs.readFileSync(path.join(x.h, 'heartbeat.log'), 'utf8'))[0].heartbeat.status, 'ready');
  const y = handler(fake('heartbeatage=700'));
  run(y, 'enable');
  const age = Date.now() / 1000 - fs.statSync(path.join(y.h, 'heartbeat.log')).mtimeMs / 1000;
  assert.ok(age > 690 && age < 720, `age ${age}`);
  const z = handler(fake('heartbeat=invalid'));
  run(z, 'enable');
  assert.throws(() => JSON.parse(fs.readFileSync(path.join(z.h, 'heartbeat.log'), 'utf8')));
});

test('mrseq and skipifseen: exit 0 early when the seqNo is not newer', () => {
  const x = handler(fake('mrseq=1 skipifseen=1 exit=9'));
  assert.equal(run(x, 'enable').status, 9);
  assert.equal(fs.readFileSync(path.join(x.h, 'mrseq'), 'utf8'), '0');
  assert.equal(run(x, 'enable').status, 0, 'seen: skipped');
  assert.ok(readFakeLog(path.join(x.lib, FAKE_LOG)).some((r) => r.event === 'skipped'));
});

test('tld and etp: legacy events in <L>/events and ETP files in the advertised eventsFolder', () => {
  const x = handler(fake('tld=3 etp=2'));
  run(x, 'enable');
  assert.equal(fs.readdirSync(path.join(x.lib, 'events')).length, 3);
  assert.equal(fs.readdirSync(path.join(x.lib, 'etp')).length, 2);
});

test('daemon: enable returns at once, the background sleep keeps running', () => {
  const x = handler(fake('daemon=30'));
  const t0 = Date.now();
  assert.equal(run(x, 'enable').status, 0);
  const pid = Number(fs.readFileSync(path.join(x.lib, 'fake-ext-daemon.pid'), 'utf8'));
  assert.ok(alive(pid));
  process.kill(pid, 'SIGKILL');
  assert.ok(Date.now() - t0 < 20_000);
});

test('child stays in the handler\'s process group ignoring SIGTERM; escape runs in its own session', async () => {
  for (const d of ['child=30', 'escape=30']) {
    const y = handler(fake(d));
    const p = spawn('sh', ['bin/fake.sh', 'enable'], { cwd: y.h, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ConfigSequenceNumber: '0' }, stdio: 'ignore', detached: true });
    const file = path.join(y.lib, d.startsWith('child') ? 'fake-ext-child.pid' : 'fake-ext-escape.pid');
    for (let i = 0; i < 400 && !(fs.existsSync(file) && fs.readFileSync(file, 'utf8').trim()); i++) await new Promise((r) => setTimeout(r, 25));
    const pid = Number(fs.readFileSync(file, 'utf8'));
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    try {
      if (d.startsWith('child')) {
        assert.equal(Number(st[2]), p.pid, 'child in the handler\'s process group');
        process.kill(-p.pid!, 'SIGTERM');
        await new Promise((r) => setTimeout(r, 200));
        assert.ok(alive(pid), 'the child ignores SIGTERM');
      } else {
        assert.equal(Number(st[3]), pid, 'escaped process leads its own session');
      }
    } finally {
      try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ }
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
});

test('decrypt=1: protected settings decrypted with <L>/<T>.crt/.prv via openssl; the plaintext hash recorded', { skip: !hasOpenssl() && 'openssl not installed' }, () => {
  const cert = makeTenantCertificate({ cn: 'fake-ext-test' });
  const secret = { commandToExecute: 'echo "hi"', n: 2 };
  const x = handler(fake('decrypt=1', { protectedSettingsCertThumbprint: cert.thumbprint, protectedSettings: encryptProtectedSettings(secret, cert.certPem) }));
  fs.writeFileSync(path.join(x.lib, `${cert.thumbprint}.crt`), cert.certPem);
  fs.writeFileSync(path.join(x.lib, `${cert.thumbprint}.prv`), cert.keyPem, { mode: 0o600 });
  run(x, 'enable');
  const ev = readFakeLog(path.join(x.lib, FAKE_LOG)).find((r) => r.event === 'decrypt')!;
  assert.equal(ev.ok, true);
  assert.equal(ev.thumbprint, cert.thumbprint);
  assert.equal(ev.sha256, createHash('sha256').update(JSON.stringify(secret)).digest('hex'));
});

test('the packaged fake: manifest variants and extraction', async () => {
  const m = JSON.parse(fakeHandlerManifest({ leadingSlash: true, supportsMultipleExtensions: 'true', updateMode: 'UpdateWithoutInstall', continueOnUpdateFailure: true, reportHeartbeat: true, resourceLimits: { cpuQuotaPercentage: 5 } }));
  const hm = m[0].handlerManifest;
  assert.equal(hm.enableCommand, '/bin/fake.sh enable');
  assert.equal(hm.supportsMultipleExtensions, 'true');
  assert.equal(hm.updateMode, 'UpdateWithoutInstall');
  assert.deepEqual(hm.resourceLimits, { cpuQuotaPercentage: 5 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-fakezip-'));
  fs.writeFileSync(path.join(dir, 'p.zip'), fakeExtensionZip());
  await extractZipSafely(path.join(dir, 'p.zip'), path.join(dir, 'H-1.0.0'));
  assert.equal(fs.readFileSync(path.join(dir, 'H-1.0.0', 'bin', 'fake.sh'), 'utf8'), FAKE_SCRIPT);
});

test('the script is POSIX sh: dash and busybox parse it', () => {
  for (const sh of ['dash', 'busybox']) {
    try { execFileSync('sh', ['-c', `command -v ${sh}`], { stdio: 'ignore' }); } catch { continue; }
    const args = sh === 'busybox' ? ['sh', '-n', '-c', FAKE_SCRIPT] : ['-n', '-c', FAKE_SCRIPT];
    assert.doesNotThrow(() => execFileSync(sh, args, { stdio: 'pipe' }), sh);
  }
});

function alive(pid: number): boolean { try { process.kill(pid, 0); return true; } catch { return false; } }
function hasOpenssl(): boolean { try { execFileSync('openssl', ['version'], { stdio: 'ignore' }); return true; } catch { return false; } }
