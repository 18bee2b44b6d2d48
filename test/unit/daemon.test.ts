// The daemon's single instance, loop and signals (provisioning-and-os.md §3.1, §10.9, §10.11) on a temp-dir root with
// a fake fabric link (no network): the PID file taken atomically by exactly one of several starters, a stale file
// taken over, a live daemon respected (exit 0), a one-shot -provision/-deprovision waited for, -provision refused
// beside a daemon, deprovisioning stopping a daemon first, and SIGTERM (the abort signal) honoured during
// provisioning and during the 15 s restart sleep.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { makeBed, type TestBed } from './provision-helpers';
import { runDaemonLoop } from '../../src/daemon/daemon';
import { acquirePidFile, pidFileHolder } from '../../src/daemon/pidfile';
import { planDeprovision, executePlan, stopDaemonAndHold } from '../../src/deprovision/plan';
import { provision } from '../../src/provision/provision';
import type { FabricLinkHandle } from '../../src/fabric/link';
import type { HealthReport } from '../../src/fabric/types';
import type { Runner } from '../../src/core/exec';
import { log, memoryAppender } from '../../src/core/log';

const PID_FILE = '/var/run/waagent.pid';
const CHILD = path.join(__dirname, 'pidfile-child.js');

/** A link that never connects (no network): records health reports. */
function idleLink(reports: HealthReport[] = []): FabricLinkHandle {
  let reject!: (e: Error) => void;
  const p = new Promise<never>((_r, rej) => { reject = rej; });
  p.catch(() => undefined);
  return {
    connected: () => p, isConnected: false, goalState: undefined, wire: undefined,
    reportHealth: (r) => { reports.push(r); }, healthAccepted: async () => undefined, reportRoleProperties: () => undefined,
    close: () => reject(new Error('closed')),
    pollOnce: async () => ({ connected: false, changed: false }),
    onGoalState: () => () => undefined,
  };
}

/** A process whose command line looks like `waagent <args>` (the PID-file checks read /proc/<pid>/cmdline). */
function fakeAgent(args: string[], opts: { ignoreTerm?: boolean } = {}): ChildProcess {
  const script = `${opts.ignoreTerm ? "process.on('SIGTERM', () => {}); " : ''}setInterval(() => {}, 1000); process.stdout.write('ready\\n')`;
  return spawn(process.execPath, ['-e', script, 'waagent', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
}
/** Resolves once the fake agent runs its script (its signal handlers are in place). */
function started(c: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    let out = '';
    c.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('ready')) resolve(); });
    c.once('exit', () => resolve());
  });
}
function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((r) => { c.once('exit', () => r()); c.kill('SIGKILL'); });
}
/** A PID that no process has (a child that already ended). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}
function writePid(bed: TestBed, pid: number): void {
  fs.mkdirSync(path.dirname(bed.p(PID_FILE)), { recursive: true });
  fs.writeFileSync(bed.p(PID_FILE), String(pid));
}
const readPid = (bed: TestBed) => { try { return fs.readFileSync(bed.p(PID_FILE), 'utf8'); } catch { return undefined; } };
const ms = (t0: number) => Date.now() - t0;

/** Wraps the bed's runner: `gate(argv)` may hold a command until a promise resolves. */
function gateRunner(bed: TestBed, gate: (argv: string[]) => Promise<void> | undefined): void {
  const orig = bed.ctx.os.run;
  const run: Runner = async (argv, o) => { await gate(argv); return orig(argv, o); };
  Object.defineProperty(bed.ctx.os, 'run', { value: run });
}

test('PID file: of eight starters at once (a stale file present) exactly one owns it; the others name the winner', async () => {
  const bed = makeBed();
  const kids: ChildProcess[] = [];
  try {
    writePid(bed, deadPid());
    const startAt = Date.now() + 800;
    const results: { pid: number; owned: boolean; holder?: number }[] = [];
    await Promise.all(Array.from({ length: 8 }, () => new Promise<void>((resolve) => {
      const c = spawn(process.execPath, [CHILD, bed.dir, PID_FILE, String(startAt), 'waagent', '-daemon'], { stdio: ['pipe', 'pipe', 'inherit'] });
      kids.push(c);
      let out = '';
      c.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('\n')) { results.push(JSON.parse(out)); resolve(); } });
      c.on('exit', () => resolve());
    })));
    assert.equal(results.length, 8);
    const winners = results.filter((r) => r.owned);
    assert.equal(winners.length, 1, JSON.stringify(results));
    assert.equal(readPid(bed), String(winners[0].pid));
    for (const r of results) if (!r.owned) assert.equal(r.holder, winners[0].pid);
    assert.ok(!fs.existsSync(bed.p(`${PID_FILE}.lock`)), 'no lock file left');
  } finally {
    for (const c of kids) { c.stdin?.end(); await stop(c); }
    bed.cleanup();
  }
});

test('daemon: a live daemon owns the PID file → exit 0 at once, file untouched; a stale file is taken over', async () => {
  const bed = makeBed();
  const other = fakeAgent(['-daemon']);
  try {
    await started(other);
    writePid(bed, other.pid!);
    const t0 = Date.now();
    assert.equal(await runDaemonLoop(bed.ctx, { signal: new AbortController().signal, startLink: () => idleLink() }), 0);
    assert.ok(ms(t0) < 3000);
    assert.equal(readPid(bed), String(other.pid));
    // A PID reused by an unrelated process and a dead PID are both stale.
    for (const stale of [process.ppid, deadPid()]) {
      writePid(bed, stale);
      assert.equal(pidFileHolder(bed.ctx.os.fs, PID_FILE), undefined, `pid ${stale}`);
      const got = await acquirePidFile(bed.ctx.os.fs, PID_FILE);
      assert.equal(got.owned, true);
      assert.equal(readPid(bed), String(process.pid));
      fs.rmSync(bed.p(PID_FILE));
    }
  } finally { await stop(other); bed.cleanup(); }
});

test('daemon: SIGTERM during provisioning stops it promptly and removes the PID file', async () => {
  const bed = makeBed();
  let release!: () => void;
  const held = new Promise<void>((r) => { release = r; });
  let blocked = false;
  // The DVD search (blkid) hangs: provisioning is in progress when SIGTERM comes.
  gateRunner(bed, (argv) => (argv[0] === 'blkid' ? (blocked = true, held) : undefined));
  const stopCtl = new AbortController();
  try {
    const loop = runDaemonLoop(bed.ctx, { signal: stopCtl.signal, startLink: () => idleLink(), stopGraceMs: 300, restartDelayMs: 60_000 });
    for (let i = 0; i < 300 && !blocked; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(blocked, 'provisioning reached the DVD search');
    assert.equal(readPid(bed), String(process.pid));
    const t0 = Date.now();
    stopCtl.abort();
    assert.equal(await loop, 0);
    assert.ok(ms(t0) < 3000, `stopped after ${ms(t0)} ms`);
    assert.equal(readPid(bed), undefined, 'PID file removed');
    assert.ok(!fs.existsSync(bed.p('/var/lib/waagent/provisioned')));
  } finally { release(); bed.cleanup(); }
});

test('daemon: SIGTERM during the 15 s restart sleep stops it at once', async () => {
  const bed = makeBed();
  const mem = memoryAppender(); log.addAppender(mem);
  const stopCtl = new AbortController();
  try {
    let starts = 0;
    const loop = runDaemonLoop(bed.ctx, { signal: stopCtl.signal, startLink: () => { starts++; throw new Error('link failed'); } });
    for (let i = 0; i < 300 && !mem.lines.some((l) => l.includes('Sleep 15 seconds')); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(mem.lines.some((l) => l.includes('Sleep 15 seconds')));
    const t0 = Date.now();
    stopCtl.abort();
    assert.equal(await loop, 0);
    assert.ok(ms(t0) < 1000, `stopped after ${ms(t0)} ms`);
    assert.equal(starts, 1);
    assert.equal(readPid(bed), undefined);
  } finally { log.removeAppender(mem); bed.cleanup(); }
});

test('provision(): a stop request ends it before the next step — no later step, no marker, no failure report', async () => {
  const bed = makeBed();
  let release!: () => void;
  const held = new Promise<void>((r) => { release = r; });
  let inUseradd = false;
  gateRunner(bed, (argv) => (argv[0] === 'useradd' ? (inUseradd = true, held) : undefined));
  const stopCtl = new AbortController();
  const reports: HealthReport[] = [];
  const fabric = { ...idleLink(reports), isConnected: true, connected: async () => ({ incarnation: '1', containerId: 'c', instanceId: 'i', configName: 'c' }) };
  try {
    const ovf = { version: '1.0', hostName: 'vm-t', userName: 'azureuser', userPassword: 'Pw-123456', disableSshPasswordAuthentication: false,
      publicKeys: [], keyPairs: [], provisionGuestAgent: true };
    const p = provision(bed.ctx, { ovf, fabric, signal: stopCtl.signal });
    for (let i = 0; i < 300 && !inUseradd; i++) await new Promise((r) => setTimeout(r, 10));
    stopCtl.abort();
    release();
    const out = await p;
    assert.equal(out.success, false);
    assert.equal(out.error, 'interrupted');
    assert.ok(!bed.run.calls.some((c) => c.argv[0] === 'chpasswd'), 'the password step did not run');
    assert.ok(!fs.existsSync(bed.p('/etc/sudoers.d/waagent')));
    assert.ok(!fs.existsSync(bed.p('/var/lib/waagent/provisioned')));
    assert.ok(!JSON.stringify(reports).includes('ProvisioningFailed'), JSON.stringify(reports));
  } finally { release(); bed.cleanup(); }
});

test('daemon + -provision: a one-shot command holding the PID file is waited for; the daemon then starts', async () => {
  const bed = makeBed();
  const oneShot = fakeAgent(['-provision']);
  const stopCtl = new AbortController();
  const mem = memoryAppender(); log.addAppender(mem);
  try {
    await started(oneShot);
    writePid(bed, oneShot.pid!);
    let linked = false;
    const loop = runDaemonLoop(bed.ctx, { signal: stopCtl.signal, pidPollMs: 50, startLink: () => { linked = true; return idleLink(); } });
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(linked, false, 'the daemon did not start while -provision holds the PID file');
    assert.equal(readPid(bed), String(oneShot.pid));
    assert.ok(mem.lines.some((l) => l.includes(`pid ${oneShot.pid}`) && l.includes('waiting')));
    await stop(oneShot);
    for (let i = 0; i < 300 && !linked; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(linked, true, 'the daemon started once -provision ended');
    assert.equal(readPid(bed), String(process.pid));
    stopCtl.abort();
    assert.equal(await loop, 0);
  } finally { log.removeAppender(mem); await stop(oneShot); bed.cleanup(); }
});

test('-provision beside a running daemon: refused (exit 1), nothing provisioned, PID file untouched', async () => {
  const bed = makeBed();
  const daemon = fakeAgent(['-daemon']);
  try {
    await started(daemon);
    writePid(bed, daemon.pid!);
    const { runProvisionWith } = await import('../../src/cli/provision');
    assert.equal(await runProvisionWith(bed.ctx), 1);
    assert.equal(readPid(bed), String(daemon.pid));
    assert.equal(bed.run.calls.length, 0, 'no command ran');
    assert.ok(!fs.existsSync(bed.p('/var/lib/waagent/provisioned')));
  } finally { await stop(daemon); bed.cleanup(); }
});

test('daemon + -deprovision: a running daemon gets SIGTERM and is waited for; one that does not stop halts deprovisioning', async () => {
  const bed = makeBed();
  const daemon = fakeAgent(['-daemon']);
  try {
    await started(daemon);
    writePid(bed, daemon.pid!);
    const exited = new Promise<NodeJS.Signals | null>((r) => daemon.once('exit', (_c, s) => r(s)));
    await stopDaemonAndHold(bed.ctx, 5000);
    assert.equal(await exited, 'SIGTERM');
    assert.equal(readPid(bed), String(process.pid), 'deprovisioning holds the PID file: a restarted daemon waits');
  } finally { await stop(daemon); bed.cleanup(); }
  const b2 = makeBed();
  const stubborn = fakeAgent(['-daemon'], { ignoreTerm: true });
  try {
    await started(stubborn);
    writePid(b2, stubborn.pid!);
    fs.writeFileSync(b2.p('/var/lib/waagent/provisioned'), 'ID');
    // The full plan with a short wait: the fatal step fails and nothing after it runs.
    const plan = planDeprovision(b2.ctx, false);
    const i = plan.actions.findIndex((a) => a.fatal);
    plan.actions[i] = { ...plan.actions[i], run: () => stopDaemonAndHold(b2.ctx, 500) };
    const failures = await executePlan(plan, b2.ctx);
    assert.equal(failures.length, 1);
    assert.match(failures[0].error, /did not stop/);
    assert.ok(fs.existsSync(b2.p('/var/lib/waagent/provisioned')), 'Lib.Dir untouched');
    assert.equal(fs.readFileSync(b2.p('/etc/hostname'), 'utf8'), 'oldname\n', 'host name untouched');
    assert.equal(readPid(b2), String(stubborn.pid));
  } finally { await stop(stubborn); b2.cleanup(); }
});
