// The daemon's single instance and signals with real processes in a throwaway VM (provisioning-and-os.md §3.1,
// §10.9, §10.11): two daemons started at the same moment (one provisions, the other exits 0 at once; one user, one
// sudoers line), and SIGTERM while provisioning runs a long CustomData (the daemon exits 0 within seconds, removes its
// PID file, writes no marker; a restart finishes provisioning with the same end state).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { agentCommand, createVm, defaultWaagentConf, vmUnavailableReason, type Vm } from './vm';
import { defaultScenario } from '../fabric/scenario';

let skip = vmUnavailableReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (skip) console.log(`# skipping VM daemon/signal tests: ${skip}`);

const diag = (vm: Vm): string => `\n--- agent log ---\n${vm.readFile('/var/log/waagent.log')?.toString().slice(-3000) ?? '(none)'}`;
const count = (text: string | undefined, re: RegExp): number => (text ?? '').split('\n').filter((l) => re.test(l)).length;

test('two daemons started at once: one provisions, the other exits 0; one user and one sudoers line', { skip, timeout: 300_000 }, async () => {
  const scenario = defaultScenario();
  const vm = await createVm({ scenario, waagentConf: defaultWaagentConf() });
  try {
    const r = await vm.run(['/bin/sh', '-c', '/usr/sbin/waagent -daemon & /usr/sbin/waagent -daemon & wait'], { timeoutMs: 180_000, until: 'ready', graceMs: 3000 });
    assert.equal(r.reason, 'ready', `no Ready${diag(vm)}`);
    const logText = vm.readFile('/var/log/waagent.log')?.toString() ?? '';
    assert.equal(count(logText, /Daemon is already running: \d+/), 1, `exactly one daemon must step aside${diag(vm)}`);
    assert.equal(count(vm.readFile('/etc/passwd')?.toString(), new RegExp(`^${scenario.userName}:`)), 1);
    assert.equal(count(vm.readFile('/etc/sudoers.d/waagent')?.toString(), new RegExp(`^${scenario.userName} `)), 1);
    assert.deepEqual(vm.simulator.summary()!.failures, []);
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});

test('SIGTERM during provisioning (a long CustomData): exit 0 within seconds, PID file gone, no marker; a restart finishes', { skip, timeout: 300_000 }, async () => {
  const scenario = defaultScenario();
  // Sleeps the first time only, so that the restart's provisioning goes through.
  scenario.customData = '#!/bin/sh\nif [ -e /var/tmp/cd-once ]; then exit 0; fi\ntouch /var/tmp/cd-once\nsleep 30\n';
  const vm = await createVm({ scenario, waagentConf: defaultWaagentConf({ 'Provisioning.ExecuteCustomData': 'y' }) });
  try {
    let termAt = 0;
    const r = await vm.run(['-daemon'], {
      timeoutMs: 120_000, killSignal: 'SIGTERM',
      killWhen: () => { if (vm.readFile('/var/tmp/cd-once') === undefined) return false; termAt = Date.now(); return true; },
    });
    assert.equal(r.reason, 'killed', `CustomData never started${diag(vm)}`);
    assert.equal(r.exitCode, 0, `exit ${r.exitCode} signal ${r.signal}${diag(vm)}`);
    assert.ok(r.endedAt - termAt < 12_000, `the daemon took ${r.endedAt - termAt} ms to stop${diag(vm)}`);
    assert.equal(vm.readFile('/var/run/waagent.pid'), undefined, 'PID file left behind');
    assert.equal(vm.readFile('/var/lib/waagent/provisioned'), undefined, 'marker written by an interrupted provisioning');
    assert.match(vm.readFile('/var/log/waagent.log')?.toString() ?? '', /Received SIGTERM/);

    const again = await vm.run(['-daemon'], { timeoutMs: 180_000, until: 'ready', graceMs: 2000 });
    assert.equal(again.reason, 'ready', `no Ready after the restart${diag(vm)}`);
    assert.ok(vm.readFile('/var/lib/waagent/provisioned'));
    assert.equal(count(vm.readFile('/etc/passwd')?.toString(), new RegExp(`^${scenario.userName}:`)), 1);
    assert.equal(count(vm.readFile('/etc/sudoers.d/waagent')?.toString(), new RegExp(`^${scenario.userName} `)), 1);
    assert.equal(vm.stat('/var/lib/waagent/CustomData.out'), undefined, 'the script printed nothing');
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});
