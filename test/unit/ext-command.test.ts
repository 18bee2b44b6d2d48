// Running handler commands (extensions.md §6) with real processes in a temp-dir root: exact environment, process
// attributes, output files not pipes, timeouts that kill the process group, exit status → error codes, one command at
// a time, CommandExecution.log, the launch strategy chosen once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { makeExtBed, recordingRunner, type ExtBed } from './ext-run-helpers';
import { log, memoryAppender, Level } from '../../src/core/log';
import {
  runHandlerCommand, handlerCommandEnv, childEnvironment, composeOutput, fullCommand, shellCommand,
  commandStats, type RunHandlerCommandOptions,
} from '../../src/extensions/command';
import { chooseHandlerLauncher, scopeLauncher, directLauncher, handlerSlice, setHandlerLauncher } from '../../src/os/handler-launch';
import { appendCapped } from '../../src/extensions/handler-log';
import { decodeBackslashReplace } from '../../src/extensions/py-json';
import type { HandlerOperation } from '../../src/extensions/handler-files';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const N = 'Test.Ext-Handler';
const V = '1.0.0';
const H = `/var/lib/waagent/${N}-${V}`;
const LOGDIR = `/var/log/azure/${N}`;

/** PIDs started by test scripts that may outlive them; killed at the end whatever happened. */
const strays: number[] = [];
after(() => { for (const p of strays) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } } });

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch { return false; }
}
async function waitFor(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (cond()) return true; await new Promise((r) => setTimeout(r, 25)); }
  return cond();
}
function readPid(bed: ExtBed, abs: string): number { const p = Number(bed.read(abs).trim()); strays.push(p); return p; }

function opts(bed: ExtBed, operation: HandlerOperation, extra: Partial<RunHandlerCommandOptions> = {}): RunHandlerCommandOptions {
  return {
    ctx: bed.ctx, handlerDir: H, commandLine: `bin/run.sh ${operation}`, operation, logDir: LOGDIR, name: N, version: V,
    env: handlerCommandEnv({ operation, handlerDir: H, version: V, wireAddress: '168.63.129.16', seqNo: 3, update: { toVersion: V, fromVersion: '0.9' } }),
    timeoutMs: 20_000, agentEnv: { PATH }, ...extra,
  };
}

test('environment: exactly the added variables plus the agent environment, inherited values win, runtime-only dropped', async () => {
  const bed = makeExtBed();
  try {
    bed.handler(N, V, '#!/bin/sh\nenv > ../env.txt\n');
    const env = handlerCommandEnv({ operation: 'enable', handlerDir: H, version: V, wireAddress: '168.63.129.16', seqNo: 3 });
    const r = await runHandlerCommand(opts(bed, 'enable', { env, agentEnv: { PATH, KEEP_ME: 'yes', NODE_TEST_CONTEXT: 'child', NODE_CHANNEL_FD: '3', ConfigSequenceNumber: '99' } }));
    assert.equal(r.exitCode, 0, r.output);
    assert.equal(r.error, undefined);
    const got = Object.fromEntries(bed.read('/var/lib/waagent/env.txt').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    for (const k of ['PWD', 'SHLVL', '_', 'OLDPWD']) delete got[k]; // set by the shell itself
    assert.deepEqual(got, {
      PATH, KEEP_ME: 'yes',
      AZURE_GUEST_AGENT_EXTENSION_PATH: H,
      AZURE_GUEST_AGENT_EXTENSION_VERSION: V,
      AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS: '168.63.129.16',
      ConfigSequenceNumber: '99', // the agent's own environment wins (§6.3)
      AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: 'NOT_RUN',
    });
  } finally { bed.cleanup(); }
});

test('environment per operation: update (SC and MC), install with an uninstall result, MC extension name, telemetry', () => {
  const base = { handlerDir: H, version: '1.1.0', wireAddress: '10.0.0.1', seqNo: 4 };
  assert.deepEqual(handlerCommandEnv({ ...base, operation: 'update', update: { toVersion: '1.1.0', fromVersion: '1.0.0', disableExitCode: '0' } }), {
    AZURE_GUEST_AGENT_EXTENSION_PATH: H, AZURE_GUEST_AGENT_EXTENSION_VERSION: '1.1.0', AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS: '10.0.0.1',
    ConfigSequenceNumber: '4', VERSION: '1.1.0', AZURE_GUEST_AGENT_UPDATING_FROM_VERSION: '1.0.0', AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE: '0',
  });
  assert.equal(handlerCommandEnv({ ...base, operation: 'update', update: { toVersion: '1.1.0', fromVersion: '1.0.0' } }).AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE, 'NOT_RUN');
  const mc = handlerCommandEnv({ ...base, operation: 'update', extensionName: 'X1', update: { toVersion: '1.1.0', fromVersion: '1.0.0', disableExitCodes: [{ extensionName: 'X1', exitCode: '0' }, { extensionName: 'X2', exitCode: '1011' }] } });
  assert.equal(mc.AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODES_MULTIPLE_EXTENSIONS, '[{"extensionName": "X1", "exitCode": "0"}, {"extensionName": "X2", "exitCode": "1011"}]');
  assert.equal(mc.ConfigExtensionName, 'X1');
  assert.equal(mc.AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE, undefined);
  assert.equal(mc.AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE, undefined);
  const inst = handlerCommandEnv({ ...base, operation: 'install', uninstallExitCode: '0' });
  assert.equal(inst.AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE, '0');
  assert.equal(inst.VERSION, undefined);
  const dis = handlerCommandEnv({ ...base, operation: 'disable' });
  assert.deepEqual(Object.keys(dis).sort(), ['AZURE_GUEST_AGENT_EXTENSION_PATH', 'AZURE_GUEST_AGENT_EXTENSION_VERSION', 'AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS', 'ConfigSequenceNumber']);
  assert.equal(handlerCommandEnv({ ...base, operation: 'enable', telemetry: true }).AZURE_GUEST_AGENT_EXTENSION_SUPPORTED_FEATURES, '[{"Key": "ExtensionTelemetryPipeline", "Value": "1.0"}]');
  assert.equal(handlerCommandEnv({ ...base, operation: 'enable' }).AZURE_GUEST_AGENT_EXTENSION_SUPPORTED_FEATURES, undefined);
  assert.deepEqual(childEnvironment({ A: '1', B: '2' }, { B: 'x', NODE_UNIQUE_ID: '1' }), { A: '1', B: 'x' });
});

test('process attributes: cwd <H>, own session and process group, stdin /dev/null, stdout/stderr unlinked files in <H>', async () => {
  const bed = makeExtBed();
  try {
    bed.handler(N, V, [
      '#!/bin/sh',
      'o=../attrs.txt',
      'echo "pwd=$(pwd)" > $o',
      'echo "stat=$(cat /proc/$$/stat)" >> $o',
      'echo "fd0=$(readlink /proc/$$/fd/0)" >> $o',
      'echo "fd1=$(readlink /proc/$$/fd/1)" >> $o',
      'echo "fd2=$(readlink /proc/$$/fd/2)" >> $o',
      'echo "umask=$(umask)" >> $o',
      '',
    ].join('\n'));
    const r = await runHandlerCommand(opts(bed, 'install'));
    assert.equal(r.exitCode, 0, r.output);
    const kv = Object.fromEntries(bed.read('/var/lib/waagent/attrs.txt').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const realH = bed.p(H);
    assert.equal(kv.pwd, realH);
    const f = kv.stat.slice(kv.stat.lastIndexOf(')') + 2).split(' ');
    const [pgrp, session] = [Number(f[2]), Number(f[3])];
    const mine = fs.readFileSync('/proc/self/stat', 'utf8'); const mf = mine.slice(mine.lastIndexOf(')') + 2).split(' ');
    assert.equal(pgrp, session, 'the command leads its own session and group');
    assert.notEqual(session, Number(mf[3]), 'not the agent session');
    assert.equal(kv.fd0, '/dev/null');
    assert.match(kv.fd1, new RegExp(`^${realH}/\\.waagent-stdout-[0-9a-f]+ \\(deleted\\)$`));
    assert.match(kv.fd2, new RegExp(`^${realH}/\\.waagent-stderr-[0-9a-f]+ \\(deleted\\)$`));
    assert.deepEqual(fs.readdirSync(realH).sort(), ['bin'], 'nothing left in <H>');
  } finally { bed.cleanup(); }
});

test('a background child that keeps stdout/stderr open does not hold the agent; its group is not signalled after exit', async () => {
  const bed = makeExtBed();
  try {
    bed.handler(N, V, '#!/bin/sh\nsh -c "exec sleep 30" &\necho $! > ../bg.pid\necho started\necho warn >&2\nexit 0\n');
    const t0 = Date.now();
    const r = await runHandlerCommand(opts(bed, 'enable'));
    const ms = Date.now() - t0;
    assert.equal(r.exitCode, 0);
    assert.ok(ms < 5000, `returned after ${ms} ms`);
    assert.equal(r.output, '[stdout]\nstarted\n\n\n[stderr]\nwarn\n');
    const bg = readPid(bed, '/var/lib/waagent/bg.pid');
    await new Promise((res) => setTimeout(res, 200));
    assert.ok(alive(bg), 'background work survives a normal exit (§6.8)');
  } finally { bed.cleanup(); }
});

test('timeout: SIGKILL to the whole process group (background grandchild, TERM-ignoring child); a new session survives; 1011', async () => {
  const bed = makeExtBed();
  try {
    bed.handler(N, V, [
      '#!/bin/sh',
      'sh -c "sleep 300" &',
      'echo $! > ../grandchild.pid',
      'sh -c "trap \'\' TERM; sleep 300" &',
      'echo $! > ../noterm.pid',
      'setsid sh -c \'echo $$ > ../escaped.pid; exec sleep 300\' &',
      'echo working; sleep 300',
      '',
    ].join('\n'));
    const t0 = Date.now();
    const r = await runHandlerCommand(opts(bed, 'enable', { timeoutMs: 700 }));
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, -9);
    assert.equal(r.error?.code, 1011);
    assert.equal(r.resultCode, '1011');
    assert.equal(r.error?.message, `[ExtensionError] Timeout(1): ${H}/bin/run.sh enable\n[stdout]\nworking\n\n\n[stderr]\n`);
    await waitFor(() => fs.existsSync(bed.p('/var/lib/waagent/escaped.pid')));
    const gc = readPid(bed, '/var/lib/waagent/grandchild.pid');
    const nt = readPid(bed, '/var/lib/waagent/noterm.pid');
    const esc = readPid(bed, '/var/lib/waagent/escaped.pid');
    assert.ok(await waitFor(() => !alive(gc)), 'grandchild killed');
    assert.ok(await waitFor(() => !alive(nt)), 'TERM-ignoring child killed');
    assert.ok(alive(esc), 'a process in a new session survives by design (§6.5)');
  } finally { bed.cleanup(); }
});

test('exit status → result: codes per operation, the output tail in the message, signals negative, noexec warning', async () => {
  const bed = makeExtBed();
  try {
    bed.handler(N, V, '#!/bin/sh\ncase "$1" in\n  nx) exit 126 ;;\nesac\necho "out of $1"; echo "err of $1" >&2; exit 3\n');
    const expected: Record<HandlerOperation, number> = { install: 1007, enable: 1009, disable: 1010, update: 1008, uninstall: 1000 };
    for (const [op, code] of Object.entries(expected) as [HandlerOperation, number][]) {
      const r = await runHandlerCommand(opts(bed, op));
      assert.equal(r.exitCode, 3);
      assert.equal(r.resultCode, '3');
      assert.equal(r.error?.code, code, op);
      assert.equal(r.error?.message, `[ExtensionOperationError] Non-zero exit code: 3, ${H}/bin/run.sh ${op}\n[stdout]\nout of ${op}\n\n\n[stderr]\nerr of ${op}\n`);
    }
    const s = await runHandlerCommand({ ...opts(bed, 'enable'), commandLine: 'bin/run.sh x; kill -TERM $$' });
    assert.equal(s.exitCode, -15);
    assert.match(s.error?.message ?? '', /^\[ExtensionOperationError\] Non-zero exit code: -15, /);
    bed.write('/proc/mounts', 'rootfs / rootfs rw 0 0\n/dev/sdb1 /var ext4 rw,nosuid,nodev,noexec 0 0\n/dev/sdc1 /var/lib/other ext4 rw 0 0\n');
    const nx = await runHandlerCommand({ ...opts(bed, 'enable'), commandLine: 'bin/run.sh nx' });
    assert.equal(nx.exitCode, 126);
    assert.match(nx.error?.message ?? '', /^\[ExtensionOperationError\] Non-zero exit code: 126, \S+ nx\nWARNING: \/var is mounted with the noexec flag, which can prevent execution of VM Extensions\.\n\[stdout\]/);
    bed.write('/proc/mounts', '/dev/sda1 / ext4 rw 0 0\n/dev/sdb1 /var/lib/waagent ext4 rw 0 0\n/dev/sdc1 /var ext4 rw,noexec 0 0\n');
    const ok = await runHandlerCommand({ ...opts(bed, 'enable'), commandLine: 'bin/run.sh nx' });
    assert.doesNotMatch(ok.error?.message ?? '', /WARNING/, 'the mount that holds Lib.Dir is not noexec');
  } finally { bed.cleanup(); }
});

test('command line: leading slashes stripped, shell semantics kept, empty command is 126, missing <H> is a launch failure', async () => {
  const bed = makeExtBed();
  try {
    bed.handler(N, V, '#!/bin/sh\necho "argc=$# 1=$1 2=$2"\n');
    const r = await runHandlerCommand({ ...opts(bed, 'enable'), commandLine: '//bin/run.sh  -e   "two words"' });
    assert.equal(r.exitCode, 0);
    assert.equal(r.fullCommand, `${H}/bin/run.sh  -e   "two words"`);
    assert.match(r.output, /argc=2 1=-e 2=two words/);
    const e = await runHandlerCommand({ ...opts(bed, 'enable'), commandLine: '' });
    assert.equal(e.exitCode, 126);
    assert.equal(e.error?.code, 1009);
    const m = await runHandlerCommand({ ...opts(bed, 'install'), handlerDir: '/var/lib/waagent/Missing-1.0' });
    assert.equal(m.exitCode, null);
    assert.equal(m.error?.code, 1007);
    assert.match(m.error?.message ?? '', /^\[ExtensionError\] Failed to launch '\/var\/lib\/waagent\/Missing-1.0\/bin\/run.sh install': /);
    assert.equal(m.resultCode, '1007');
  } finally { bed.cleanup(); }
});

test('shellCommand: a hostile handler directory is quoted, a normal one is byte-identical to HEAD', () => {
  assert.equal(shellCommand('/var/lib/waagent/Microsoft.Azure.Extensions.CustomScript-2.1.10', 'bin/custom-script-shim enable'),
    '/var/lib/waagent/Microsoft.Azure.Extensions.CustomScript-2.1.10/bin/custom-script-shim enable');
  assert.equal(shellCommand("/var/lib/waagent/A;touch x'$(id)-1.0", 'bin/x'), `'/var/lib/waagent/A;touch x'\\''$(id)-1.0'/bin/x`);
  assert.equal(fullCommand('/l/A-1/', '///x y'), '/l/A-1/x y');
});

test('a hostile handler name never becomes shell syntax', async () => {
  const bed = makeExtBed();
  try {
    const name = 'A;touch INJECTED;$(touch INJECTED2)';
    const h = bed.handler(name, V, '#!/bin/sh\necho ran\n');
    const r = await runHandlerCommand({ ...opts(bed, 'enable'), handlerDir: h, name });
    assert.equal(r.exitCode, 0, r.output);
    assert.match(r.output, /ran/);
    assert.equal(fs.readdirSync(bed.p(h)).some((f) => f.startsWith('INJECTED')), false);
    assert.equal(fs.readdirSync(bed.p('/var/lib/waagent')).some((f) => f.startsWith('INJECTED')), false);
  } finally { bed.cleanup(); }
});

test('output: the end of long streams is kept (§6.4 Ours), undecodable bytes as \\x escapes', async () => {
  const bed = makeExtBed();
  try {
    bed.handler(N, V, '#!/bin/sh\necho FIRST-OUT; i=0; while [ $i -lt 500 ]; do echo "line $i of stdout padding"; i=$((i+1)); done; echo LAST-OUT\necho FIRST-ERR >&2; printf "bad \\377 byte\\n" >&2; echo LAST-ERR >&2\n');
    const r = await runHandlerCommand(opts(bed, 'enable'));
    assert.ok(r.output.length <= 3200, String(r.output.length));
    assert.doesNotMatch(r.output, /FIRST-OUT/);
    assert.match(r.output, /LAST-OUT\n\n\n\[stderr\]\nFIRST-ERR\nbad \\xff byte\nLAST-ERR\n$/);
  } finally { bed.cleanup(); }
});

test('composeOutput follows HEAD: both whole when they fit, else 1590 each with the rest given to the other', () => {
  assert.equal(composeOutput('a', 'b'), '[stdout]\na\n\n[stderr]\nb');
  const long = 'x'.repeat(4000);
  const r1 = composeOutput(long, 'short');
  assert.equal(r1, `[stdout]\n${'x'.repeat(1590 + 1590 - 5)}\n\n[stderr]\nshort`);
  const r2 = composeOutput('o'.repeat(100), `${'e'.repeat(4000)}END`);
  assert.equal(r2, `[stdout]\n${'o'.repeat(100)}\n\n[stderr]\n${'e'.repeat(1590 + 1490 - 3)}END`);
  const r3 = composeOutput(`A${'o'.repeat(2000)}`, `B${'e'.repeat(2000)}`);
  assert.equal(r3.length, 20 + 1590 * 2); // = 3200
  assert.ok(!r3.includes('A') && !r3.includes('B'));
  assert.equal(decodeBackslashReplace(Buffer.from([0x68, 0xc3, 0xa9, 0xff, 0xe2, 0x82, 0x41, 0xf0, 0x9f, 0x98, 0x80])), 'h\u00e9\\xff\\xe2\\x82A\u{1f600}');
});

test('one command at a time, VM-wide: concurrent calls never overlap', async () => {
  const bed = makeExtBed();
  try {
    bed.handler(N, V, '#!/bin/sh\necho "start $1 $(date +%s%N)" >> ../order.txt\nsleep 0.3\necho "end $1 $(date +%s%N)" >> ../order.txt\n');
    const before = commandStats.maxConcurrent;
    const rs = await Promise.all(['a', 'b', 'c'].map((x) => runHandlerCommand({ ...opts(bed, 'enable'), commandLine: `bin/run.sh ${x}` })));
    assert.ok(rs.every((r) => r.exitCode === 0));
    const lines = bed.read('/var/lib/waagent/order.txt').trim().split('\n').map((l) => l.split(' ').slice(0, 2).join(' '));
    assert.deepEqual(lines, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    assert.equal(Math.max(before, commandStats.maxConcurrent), 1);
  } finally { bed.cleanup(); }
});

test('CommandExecution.log: [N-V] lines with the command, environment and output; secrets redacted in log and output', async () => {
  const bed = makeExtBed();
  const mem = memoryAppender(Level.VERBOSE);
  log.addAppender(mem);
  try {
    const secret = 'PrOtEcTeDsEtTiNgS-0123456789';
    log.addSecret(secret);
    bed.handler(N, V, `#!/bin/sh\necho "leaking ${secret}"\necho '{"protectedSettings": "abcdef"}'\n`);
    const r = await runHandlerCommand(opts(bed, 'enable'));
    assert.equal(r.exitCode, 0);
    const text = bed.read(`${LOGDIR}/CommandExecution.log`);
    assert.equal(bed.mode(LOGDIR), 0o755);
    assert.match(text, new RegExp(`INFO \\[${N}-${V}\\] Executing command: ${H}/bin/run.sh enable with environment variables: \\{"AZURE_GUEST_AGENT_EXTENSION_PATH": "${H}"`));
    assert.match(text, /\[Test.Ext-Handler-1.0.0\] Command: bin\/run.sh enable\n\[stdout\]\nleaking \*\*\*\*\*/);
    for (const t of [text, r.output, mem.lines.join('')]) {
      assert.ok(!t.includes(secret), 'registered secret redacted');
      assert.ok(!t.includes('abcdef'), 'protectedSettings value redacted');
    }
    assert.ok(mem.lines.some((l) => l.includes(`[${N}-${V}] Executing command`)), 'agent log has the line too');
    // MC extensions get their own file
    await runHandlerCommand({ ...opts(bed, 'enable'), extensionName: 'X1' });
    assert.match(bed.read(`${LOGDIR}/CommandExecution_X1.log`), /\[Test.Ext-Handler.X1-1.0.0\] Executing command/);
  } finally { log.removeAppender(mem); bed.cleanup(); }
});

test('CommandExecution.log is capped: past the cap only the tail is kept, from a line boundary', () => {
  const bed = makeExtBed();
  try {
    const f = bed.p('/var/log/azure/cap.log');
    for (let i = 0; i < 200; i++) appendCapped(f, `line ${String(i).padStart(4, '0')} ${'x'.repeat(40)}\n`, 4000, 3000);
    const t = fs.readFileSync(f, 'utf8');
    assert.ok(t.length <= 4000, String(t.length));
    assert.match(t, /^line \d{4} x+\n/);
    assert.match(t, /line 0199 x+\n$/);
  } finally { bed.cleanup(); }
});

test('abort: the agent stops waiting at once and leaves the command running', async () => {
  const bed = makeExtBed();
  try {
    bed.handler(N, V, '#!/bin/sh\necho $$ > ../self.pid\nexec sleep 30\n');
    const ac = new AbortController();
    const p = runHandlerCommand({ ...opts(bed, 'enable'), signal: ac.signal });
    await waitFor(() => fs.existsSync(bed.p('/var/lib/waagent/self.pid')) && bed.read('/var/lib/waagent/self.pid').trim() !== '');
    ac.abort();
    const r = await p;
    assert.equal(r.aborted, true);
    assert.equal(r.exitCode, null);
    assert.equal(r.error?.code, 1009);
    const pid = readPid(bed, '/var/lib/waagent/self.pid');
    assert.ok(alive(pid), 'left running');
  } finally { bed.cleanup(); }
});

test('launch strategy: direct without systemd; scope only when /run/systemd/system exists and the probe succeeds', async () => {
  const none = makeExtBed();
  try {
    assert.equal(await chooseHandlerLauncher(none.ctx.os), directLauncher);
    assert.equal((none.ctx.os.run as ReturnType<typeof recordingRunner>).calls.length, 0, 'no probe without systemd');
  } finally { none.cleanup(); }
  for (const probeCode of [0, 1]) {
    const run = recordingRunner((argv) => (argv[0] === 'systemd-run' ? { code: probeCode, stderr: probeCode ? 'Failed to create bus connection' : '' } : undefined));
    const bed = makeExtBed({ run });
    try {
      fs.mkdirSync(bed.p('/run/systemd/system'), { recursive: true });
      bed.write('/usr/bin/systemd-run', '#!/bin/sh\n', 0o755);
      const l = await chooseHandlerLauncher(bed.ctx.os);
      assert.equal(l, probeCode === 0 ? scopeLauncher : directLauncher);
      assert.equal(run.calls.length, 1);
      assert.deepEqual(run.calls[0].argv.slice(0, 3), ['systemd-run', '--scope', '--quiet']);
      assert.match(run.calls[0].argv[3], /^--unit=waagent-probe_[0-9a-f-]{36}$/);
      assert.equal(run.calls[0].argv[4], '/bin/true');
    } finally { bed.cleanup(); }
  }
  const argv = scopeLauncher.argv('/var/lib/waagent/Microsoft.AKS-Engine-1.0/bin/x enable', { operation: 'enable', name: 'Microsoft.AKS-Engine' });
  assert.equal(argv.length, 10);
  assert.deepEqual([argv[0], argv[1], argv[2], argv[3], argv[5], argv[6]], ['systemd-run', '--quiet', '--property=CPUAccounting=no', '--property=MemoryAccounting=no', '--scope', '--slice=azure-vmextensions-Microsoft.AKS_Engine.slice']);
  assert.match(argv[4], /^--unit=enable_[0-9a-f-]{36}$/);
  assert.deepEqual(argv.slice(7), ['/bin/sh', '-c', '/var/lib/waagent/Microsoft.AKS-Engine-1.0/bin/x enable']);
  assert.equal(handlerSlice('Pub.Type.X-1'), 'azure-vmextensions-Pub.Type.X_1.slice');
  assert.deepEqual(directLauncher.argv('c', { operation: 'enable', name: 'n' }), ['/bin/sh', '-c', 'c']);
});

test('scope strategy: the command runs through systemd-run with the unit and slice of the handler, same semantics', async () => {
  const bed = makeExtBed();
  try {
    // a stand-in for systemd-run: records its arguments, then runs what follows its options (as --scope does: exec)
    bed.write('/fakebin/systemd-run', '#!/bin/sh\necho "$@" > "$0.args"\nwhile [ "$1" != /bin/sh ]; do shift; done\nexec "$@"\n', 0o755);
    setHandlerLauncher(bed.ctx.os, scopeLauncher);
    bed.handler(N, V, '#!/bin/sh\necho "args=$*"; exit 4\n');
    const r = await runHandlerCommand({ ...opts(bed, 'disable'), commandLine: 'bin/run.sh a  b', agentEnv: { PATH: `${bed.p('/fakebin')}:${PATH}` } });
    assert.equal(r.exitCode, 4);
    assert.equal(r.error?.code, 1010);
    assert.match(r.output, /args=a b/);
    const args = bed.read('/fakebin/systemd-run.args').trim();
    assert.match(args, new RegExp(`^--quiet --property=CPUAccounting=no --property=MemoryAccounting=no --unit=disable_[0-9a-f-]{36} --scope --slice=azure-vmextensions-Test.Ext_Handler.slice /bin/sh -c ${bed.p(H)}/bin/run.sh a  b$`));
  } finally { bed.cleanup(); }
});
