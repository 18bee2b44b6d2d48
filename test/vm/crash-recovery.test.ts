// Kill -9 at every step of a first boot (issue 10 "Then the campaign"; provisioning-and-os.md §3.6 "each step is
// idempotent", §3.18): the built daemon runs under strace, which delivers SIGKILL to the agent deterministically at
// the N-th event of its main thread — the entry of the N-th rename (every atomic file commit: the temp file is
// complete, the target not yet replaced) or of the N-th wait4 (reaping a command: the command's effect happened, the
// agent has not seen its result). For every N up to what an uninterrupted run counts, a fresh VM is killed there, the
// daemon is restarted, and the machine must end exactly as after an uninterrupted run: Ready reported, the same
// changed files with the same modes, owners and (where deterministic) contents, no temp file left, one user, one
// sudoers line, one line per key and per sshd_config directive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { agentCommand, createVm, defaultWaagentConf, vmUnavailableReason, type Vm } from './vm';
import { defaultScenario, type Scenario } from '../fabric/scenario';

let skip = vmUnavailableReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (!skip) {
  try { execFileSync('sh', ['-c', 'command -v strace'], { stdio: 'ignore' }); } catch { skip = 'strace is not installed (see .ci/apt-packages.txt)'; }
}
if (skip) console.log(`# skipping VM crash-recovery tests: ${skip}`);

/** The events a kill point counts: syscalls of the agent's main thread (strace without -f follows no other thread
 *  and no child, so a rename inside useradd never counts). */
type Event = 'rename' | 'wait4';
const EVENTS: Event[] = ['rename', 'wait4'];
const TRACE = '/run/crash-trace';
/** How many VMs at once (the machine has 2 cores). */
const PARALLEL = 2;

/** Files whose content is random per run (keys, salts, the encrypted certificate blob) or a log: compared by mode and
 *  owner only. */
const VOLATILE = [
  /^\/var\/log\//,
  /^\/etc\/shadow-?$/, // the password hash has a random salt; its line is checked below
  /^\/etc\/ssh\/ssh_host_/, // regenerated host keys
  /^\/var\/lib\/waagent\/(TransportPrivate|TransportCert)\.pem$/,
  /^\/var\/lib\/waagent\/Certificates\.(p7m|xml)$/, // encrypted to the per-boot transport key
  /^\/var\/lib\/waagent\/ExtensionsConfig\.\d+\.xml$/, // a fresh SAS and time per fetch
  /^\/var\/lib\/waagent\/history\//,
  /^\/var\/log\/(lastlog|faillog|wtmp|btmp)$/,
  /^\/var\/cache\//,
  /\/waagent\.pid$/,
];
/** Paths only some runs create, legitimately (a restart's own bookkeeping). */
const OPTIONAL = [/^\/run\//, /^\/tmp\//, /^\/var\/log\/azure$/];

interface EndState {
  /** path → "type mode uid:gid" for everything changed; content hash for deterministic regular files. */
  entries: Map<string, string>;
  ready: boolean;
  problems: string[];
}

function lines(t: string | undefined, re: RegExp): number {
  return (t ?? '').split('\n').filter((l) => re.test(l)).length;
}

/** What the machine looks like after a run, and the invariants every end state must satisfy. */
function endState(vm: Vm, sc: Scenario): EndState {
  const entries = new Map<string, string>();
  const problems: string[] = [];
  for (const c of vm.changedPaths()) {
    if (OPTIONAL.some((r) => r.test(c.path))) continue;
    if (/\.tmp$/.test(c.path) || /\/\.[^/]+\.\d+\.[0-9a-f]{8}\.tmp$/.test(c.path)) problems.push(`temp file left: ${c.path}`);
    if (c.kind === 'deleted') { entries.set(c.path, 'deleted'); continue; }
    const st = vm.stat(c.path);
    let v = `${c.type} ${st ? (st.mode & 0o7777).toString(8) : '?'} ${st?.uid}:${st?.gid}`;
    if (c.type === 'file' && !VOLATILE.some((r) => r.test(c.path))) {
      const b = vm.readFile(c.path);
      v += ` ${b ? createHash('sha256').update(b).digest('hex').slice(0, 16) : 'unreadable'}`;
    }
    if (c.type === 'symlink') v += ` -> ${readlinkSync(join(vm.rootPath, c.path))}`;
    entries.set(c.path, v);
  }
  const u = sc.userName;
  const passwd = vm.readFile('/etc/passwd')?.toString();
  const shadow = vm.readFile('/etc/shadow')?.toString();
  if (lines(passwd, new RegExp(`^${u}:`)) !== 1) problems.push(`${lines(passwd, new RegExp(`^${u}:`))} passwd lines for ${u}`);
  if (lines(vm.readFile('/etc/group')?.toString(), new RegExp(`^${u}:`)) !== 1) problems.push(`group lines for ${u} != 1`);
  if (lines(shadow, new RegExp(`^${u}:\\$6\\$[^:]+:`)) !== 1) problems.push(`shadow: no single crypted password line for ${u}`);
  if (lines(shadow, /^root:\*LOCK\*:/) !== 1 || lines(shadow, /^root:/) !== 1) problems.push('shadow: root not locked exactly once');
  const sudo = vm.readFile('/etc/sudoers.d/waagent')?.toString();
  if (lines(sudo, new RegExp(`^${u} `)) !== 1) problems.push(`${lines(sudo, new RegExp(`^${u} `))} sudoers lines for ${u}`);
  const keys = (vm.readFile(`/home/${u}/.ssh/authorized_keys`)?.toString() ?? '').split('\n').filter((l) => l.trim());
  if (keys.length !== 2 || new Set(keys).size !== 2) problems.push(`authorized_keys has ${keys.length} lines (${new Set(keys).size} distinct), want 2`);
  const sshd = vm.readFile('/etc/ssh/sshd_config')?.toString();
  for (const d of ['PasswordAuthentication', 'ChallengeResponseAuthentication', 'ClientAliveInterval']) {
    if (lines(sshd, new RegExp(`^\\s*${d}\\s`, 'i')) !== 1) problems.push(`${lines(sshd, new RegExp(`^\\s*${d}\\s`, 'i'))} '${d}' lines in sshd_config`);
  }
  for (const f of ['/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_rsa_key.pub']) {
    const b = vm.readFile(f)?.toString() ?? '';
    if (!/(-----END OPENSSH PRIVATE KEY-----\n|^ssh-rsa \S+)/.test(b)) problems.push(`${f} missing or incomplete`);
  }
  if (!vm.readFile('/var/lib/waagent/provisioned')) problems.push('no provisioned marker');
  const s = vm.simulator.summary();
  const ready = !!s && s.readyCount > 0 && s.healthReports.at(-1)?.state === 'Ready';
  if (!ready) problems.push('Ready not reported at the end');
  if (s && s.failures.length) problems.push(`the simulator rejected: ${JSON.stringify(s.failures).slice(0, 300)}`);
  if (s?.notReady.some((n) => n.subStatus === 'ProvisioningFailed')) problems.push(`ProvisioningFailed: ${JSON.stringify(s.notReady.filter((n) => n.subStatus === 'ProvisioningFailed'))}`);
  return { entries, ready, problems };
}

function diffStates(base: EndState, got: EndState): string[] {
  const out: string[] = [];
  for (const [p, v] of base.entries) {
    const g = got.entries.get(p);
    if (g === undefined) out.push(`missing ${p} (${v})`);
    else if (g !== v) out.push(`differs ${p}: want ${v}, got ${g}`);
  }
  for (const [p, v] of got.entries) if (!base.entries.has(p)) out.push(`extra ${p} (${v})`);
  return out;
}

/** strace argv around the daemon: trace `rename` and `wait4` of the main thread into TRACE; with `kill`, SIGKILL at
 *  the entry of that event's N-th occurrence. */
function tracedDaemon(kill?: { event: Event; n: number }): string[] {
  const argv = ['/usr/bin/strace', '-qq', '-o', TRACE, '-e', `trace=${EVENTS.join(',')}`];
  if (kill) argv.push('-e', `inject=${kill.event}:signal=KILL:when=${kill.n}`);
  return [...argv, '/usr/sbin/waagent', '-daemon'];
}

/** What the N-th event was in a trace (for the report): the rename's target or the reaped pid. */
function describeEvent(trace: string, event: Event, n: number): string {
  const l = trace.split('\n').filter((x) => x.startsWith(`${event}(`))[n - 1];
  if (!l) return '?';
  if (event === 'rename') return /"([^"]+)"\)/.exec(l)?.[1] ?? l;
  return `reaping child ${/^wait4\((-?\d+)/.exec(l)?.[1] ?? '?'}`;
}

interface Outcome { point: string; what: string; killed: boolean; ms: number; problems: string[] }

async function pool<T, R>(items: T[], n: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) { const i = next++; out[i] = await f(items[i]); }
  }));
  return out;
}

test('kill -9 at every rename and every command reaped during a first boot: a restart ends as an uninterrupted run', { skip, timeout: 600_000 }, async (t) => {
  const started = Date.now();
  const scenario = defaultScenario();
  const conf = defaultWaagentConf({ 'Provisioning.ExecuteCustomData': 'y', 'Provisioning.DeleteRootPassword': 'y' });

  // The reference: one uninterrupted run under the same tracer, counting the events.
  const vm0 = await createVm({ scenario, waagentConf: conf });
  let base: EndState;
  const counts: Record<Event, number> = { rename: 0, wait4: 0 };
  let baseTrace = '';
  try {
    const r = await vm0.run(tracedDaemon(), { timeoutMs: 120_000, until: 'ready', graceMs: 1500 });
    assert.equal(r.reason, 'ready', `the uninterrupted run did not reach Ready${vm0.readFile('/var/log/waagent.log')?.toString().slice(-3000)}`);
    baseTrace = vm0.readFile(TRACE)?.toString() ?? '';
    for (const e of EVENTS) counts[e] = baseTrace.split('\n').filter((l) => l.startsWith(`${e}(`)).length;
    base = endState(vm0, scenario);
    assert.deepEqual(base.problems, [], 'the uninterrupted run itself is not clean');
  } finally {
    await vm0.destroy({ removeFiles: true });
  }
  assert.ok(counts.rename >= 15, `only ${counts.rename} renames traced: the tracer does not see the agent's writes`);
  assert.ok(counts.wait4 >= 5, `only ${counts.wait4} wait4 traced`);

  const points = EVENTS.flatMap((event) => Array.from({ length: counts[event] }, (_, i) => ({ event, n: i + 1 })));
  const outcomes = await pool(points, PARALLEL, async ({ event, n }): Promise<Outcome> => {
    const t0 = Date.now();
    const point = `${event}#${n}`;
    let what = describeEvent(baseTrace, event, n);
    const vm = await createVm({ scenario, waagentConf: conf });
    try {
      // Stopped by the injected SIGKILL; a run whose N-th event never comes (wait4 calls vary a little with timing)
      // is stopped at Ready + the reference run's grace (so an event after Ready is reachable too) and still restarted.
      const k = await vm.run(tracedDaemon({ event, n }), { timeoutMs: 90_000, until: 'ready', graceMs: 1500 });
      const killed = k.signal === 'SIGKILL' || k.exitCode === 137;
      // The event this run was killed at (parallel work may order the renames differently from the reference run).
      what = describeEvent(vm.readFile(TRACE)?.toString() ?? '', event, n);
      const again = await vm.run(['-daemon'], { timeoutMs: 90_000, until: 'ready', graceMs: 1500 });
      const st = endState(vm, scenario);
      const problems = [...st.problems, ...diffStates(base, st)];
      if (again.reason !== 'ready') problems.push(`the restart did not reach Ready (${again.reason}, exit ${again.exitCode})`);
      if (problems.length && process.env.WAAGENT_CRASH_LOGS) problems.push(`--- agent log ---\n${vm.readFile('/var/log/waagent.log')?.toString().slice(-2500)}`);
      return { point, what, killed, ms: Date.now() - t0, problems };
    } finally {
      await vm.destroy({ removeFiles: true });
    }
  });

  const killedCount = outcomes.filter((o) => o.killed).length;
  for (const o of outcomes) t.diagnostic(`${o.point.padEnd(10)} ${o.killed ? 'killed' : 'not reached'} ${String(o.ms).padStart(6)} ms  ${o.what}${o.problems.length ? `  FAIL ${o.problems.length}` : ''}`);
  t.diagnostic(`kill points: ${outcomes.length} (${killedCount} killed: ${counts.rename} renames, ${counts.wait4} wait4); total ${Math.round((Date.now() - started) / 1000)} s`);
  const failed = outcomes.filter((o) => o.problems.length);
  assert.deepEqual(failed.map((o) => `${o.point} (${o.what}):\n  ${o.problems.join('\n  ')}`), []);
  // Every rename point must really have killed the agent (their count does not depend on timing).
  assert.equal(outcomes.filter((o) => o.point.startsWith('rename#') && !o.killed).length, 0, 'a rename kill point was never reached');
  assert.ok(killedCount >= outcomes.length - 3, `only ${killedCount} of ${outcomes.length} kill points were reached`);
});
