// Extensions end to end (extensions.md §1.2, §5, §8.6, §11.2; issue 8): the single executable as a daemon in a
// throwaway VM, the fabric simulator serving the §13.2 fake extension. One VM, one daemon, a sequence of incarnations:
// install+enable with protected settings → same incarnation polled again (no command) → new settings (enable only) →
// update 1.0.0 → 1.1.0 (exact order and environment of §5.4, read back from the fake's log) → disabled → uninstall
// (directory and status gone) → restart with Extensions.Enabled=n (every handler reported as not allowed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { agentCommand, createVm, defaultWaagentConf, vmUnavailableReason, type Vm } from './vm';
import { defaultScenario, type Scenario } from '../fabric/scenario';
import { fakeExtensionPackage } from '../fabric/fake-extension';
import { N, L, ext, entry, gsAggregate, calls, callRecords, waitFor, publish, startDaemon, sha256, agentLog, fakeLog, sleep } from './ext-helpers';

let skip = vmUnavailableReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (skip) console.log(`# skipping VM extension tests: ${skip}`);

test('extension lifecycle under the daemon: install, enable, new settings, update, disable, uninstall, Extensions.Enabled=n', { skip, timeout: 600_000 }, async () => {
  const sc = defaultScenario();
  const secret = { password: 'S3cret-for-the-extension', user: 'x' };
  sc.extensionPackages = [fakeExtensionPackage(N, '1.0.0'), fakeExtensionPackage(N, '1.1.0')];
  sc.extensions = [ext({ fake: 'status=success decrypt=1 mrseq=1', protectedSettingsPlain: secret })];
  const vm = await createVm({ scenario: sc, waagentConf: defaultWaagentConf({ 'Extensions.GoalStatePeriod': '1' }) });
  try {
    await lifecycleSteps(vm, sc, secret);
    await notAllowedStep(vm, sc);
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});

async function lifecycleSteps(vm: Vm, sc: Scenario, secret: { password: string }): Promise<void> {
  const daemon = startDaemon(vm);
  try {
    // 1. install + enable with protected settings
    await waitFor(vm, 'enable success, seq 0', () => {
      const e = entry(vm);
      return e?.status === 'Ready' && e.runtimeSettingsStatus?.sequenceNumber === 0 && e.runtimeSettingsStatus.settingsStatus.status.status === 'success' && e;
    });
    assert.deepEqual(calls(vm), ['install@1.0.0', 'enable@1.0.0']);
    const H = `${L}/${N}-1.0.0`;
    const [inst, en] = callRecords(vm);
    assert.equal(inst.env?.AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE, 'NOT_RUN');
    assert.equal(en.env?.ConfigSequenceNumber, '0');
    assert.equal(en.env?.AZURE_GUEST_AGENT_EXTENSION_PATH, H);
    assert.equal(en.env?.AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS, '127.0.0.1');
    assert.equal(en.pwd, H);
    assert.equal(en.handlerEnvExists, true);
    assert.equal(en.settingsExists, true);
    const dec = fakeLog(vm).find((r) => r.event === 'decrypt');
    assert.equal(dec?.ok, true, 'the extension decrypted its protected settings with the agent\'s .crt/.prv');
    assert.equal(dec?.sha256, sha256(JSON.stringify(secret)));
    assert.equal(entry(vm)!.formattedMessage?.message, 'Plugin enabled');
    assert.equal(entry(vm)!.handlerVersion, '1.0.0');
    assert.equal(vm.readFile(`${H}/config/HandlerState`)?.toString(), 'Enabled');
    const settingsMode = execFileSync('stat', ['-c', '%a', `${vm.rootPath}${H}/config/0.settings`]).toString().trim();
    assert.equal(settingsMode, '600');
    assert.ok(!agentLog(vm).includes(secret.password));
    const settingsText = vm.readFile(`${H}/config/0.settings`)!.toString();
    const protectedB64 = /"protectedSettings": "([^"]+)"/.exec(settingsText)?.[1];
    assert.ok(protectedB64, 'protected settings copied verbatim into the settings file');
    assert.ok(!agentLog(vm).includes(protectedB64!), 'the protected settings string is never logged');
    await waitFor(vm, 'goal-state aggregate', () => gsAggregate(vm)?.status === 'Success');

    // 2. the same incarnation polled again: no command; status still uploaded every period
    const uploads = vm.simulator.summary()!.statusUploads;
    await sleep(3000);
    assert.equal(calls(vm).length, 2, 'no command while the incarnation is unchanged');
    assert.ok(vm.simulator.summary()!.statusUploads >= uploads + 2, 'status uploaded every period');
    // the quiet polls after the install and enable settled the heap (src/core/heap-settle.ts; verbose log)
    const settles = (): number => (agentLog(vm).match(/VERBOSE .*Quiet: heap [\d.]+ \S+ [\d.]+ MiB/g) ?? []).length;
    assert.ok(settles() >= 1, 'no heap settle after the busy start');

    // 3. new settings (seq 1): settings file written, enable only. The tenant certificate files vanished meanwhile:
    //    they are there again before the command runs (§7.2; the unit test ext-handler proves the refetch itself).
    const tp = sc.certificates[0].thumbprint;
    for (const f of [`${L}/${tp}.crt`, `${L}/${tp}.prv`]) execFileSync('rm', ['-f', `${vm.rootPath}${f}`]);
    let n = callRecords(vm).length;
    const settlesBefore = settles();
    publish(vm, sc, [ext({ seqNo: 1, fake: 'status=success mrseq=1 decrypt=1', protectedSettingsPlain: secret })]);
    await waitFor(vm, 'enable success, seq 1', () => entry(vm)?.runtimeSettingsStatus?.sequenceNumber === 1 && entry(vm)?.runtimeSettingsStatus?.settingsStatus.status.status === 'success');
    await waitFor(vm, 'a heap settle after the new goal state', () => settles() > settlesBefore, 15_000);
    assert.deepEqual(calls(vm, n), ['enable@1.0.0']);
    const dec2 = fakeLog(vm).filter((r) => r.event === 'decrypt').pop();
    assert.equal(dec2?.op, 'enable');
    assert.equal(dec2?.ok, true, 'decrypted with the certificate files written again');
    assert.ok(vm.readFile(`${L}/${tp}.prv`), 'certificate files written again');
    assert.equal(callRecords(vm)[n].env?.ConfigSequenceNumber, '1');
    assert.ok(vm.readFile(`${H}/config/1.settings`));

    // 4. update 1.0.0 → 1.1.0 (seq 2): exact order and environment of §5.4
    n = callRecords(vm).length;
    publish(vm, sc, [ext({ version: '1.1.0', seqNo: 2, fake: 'status=success mrseq=1' })]);
    await waitFor(vm, 'update to 1.1.0', () => entry(vm)?.handlerVersion === '1.1.0' && entry(vm)?.runtimeSettingsStatus?.sequenceNumber === 2 && entry(vm)?.runtimeSettingsStatus?.settingsStatus.status.status === 'success');
    assert.deepEqual(calls(vm, n), ['disable@1.0.0', 'update@1.1.0', 'uninstall@1.0.0', 'install@1.1.0', 'enable@1.1.0']);
    const [dis, upd, unin, inst2, en2] = callRecords(vm).slice(n);
    assert.equal(dis.env?.ConfigSequenceNumber, '2');
    assert.equal(dis.env?.AZURE_GUEST_AGENT_EXTENSION_VERSION, '1.0.0');
    assert.equal(upd.env?.VERSION, '1.1.0');
    assert.equal(upd.env?.AZURE_GUEST_AGENT_UPDATING_FROM_VERSION, '1.0.0');
    assert.equal(upd.env?.AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE, '0');
    assert.equal(unin.pwd, H);
    assert.equal(inst2.env?.AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE, '0');
    assert.equal(en2.env?.AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE, '0');
    assert.equal(vm.readFile(`${H}/HandlerManifest.json`), undefined, 'old directory removed');
    const H2 = `${L}/${N}-1.1.0`;
    assert.ok(vm.readFile(`${H2}/mrseq`), 'mrseq copied to the new version');

    // 5. disabled: disable runs, NotReady "Plugin disabled"
    n = callRecords(vm).length;
    publish(vm, sc, [ext({ version: '1.1.0', seqNo: 2, state: 'disabled' })]);
    await waitFor(vm, 'Plugin disabled', () => entry(vm)?.formattedMessage?.message === 'Plugin disabled' && entry(vm)?.status === 'NotReady');
    assert.deepEqual(calls(vm, n), ['disable@1.1.0']);

    // 6. uninstall: uninstall runs (no disable: already disabled), directory and entry gone
    n = callRecords(vm).length;
    publish(vm, sc, [ext({ version: '1.1.0', seqNo: 2, state: 'uninstall' })]);
    await waitFor(vm, 'handler gone from the status', () => gsAggregate(vm)?.inSvdSeqNo === String(sc.incarnation) && !entry(vm));
    assert.deepEqual(calls(vm, n), ['uninstall@1.1.0']);
    assert.equal(vm.readFile(`${H2}/HandlerManifest.json`), undefined);
    assert.equal(vm.readFile(`${H2}/config/HandlerState`), undefined);
    assert.deepEqual(vm.simulator.summary()!.failures, []);
  } finally {
    await daemon.stop();
  }
}

/** 7. Extensions.Enabled=n: a new handler is reported as not allowed (1009), nothing runs (§11.2). */
async function notAllowedStep(vm: Vm, sc: Scenario): Promise<void> {
  vm.writeFile('/etc/waagent.conf', defaultWaagentConf({ 'Extensions.GoalStatePeriod': '1', 'Extensions.Enabled': 'n' }));
  const n = callRecords(vm).length;
  publish(vm, sc, [ext({ seqNo: 5 })]);
  const d2 = startDaemon(vm);
  try {
    const e = await waitFor(vm, 'not-allowed entry', () => (entry(vm)?.code === 1009 ? entry(vm) : undefined));
    assert.equal(e.status, 'NotReady');
    assert.match(e.formattedMessage!.message, new RegExp(`^Extension '${N.replace('.', '\\.')}' will not be processed since extension processing is disabled\\. To enable extension processing, set Extensions\\.Enabled=y in '/etc/waagent\\.conf'$`));
    assert.equal(callRecords(vm).length, n, 'no command runs');
  } finally { await d2.stop(); }
}

test('-run-exthandlers drives the same extension handling (install, enable, status), and stops on SIGTERM', { skip, timeout: 300_000 }, async () => {
  const sc = defaultScenario();
  sc.extensionPackages = [fakeExtensionPackage(N, '1.0.0')];
  sc.extensions = [ext({ fake: 'status=success' })];
  const vm = await createVm({ scenario: sc, waagentConf: defaultWaagentConf({ 'Extensions.GoalStatePeriod': '1' }) });
  let stop = false;
  const run = vm.run(['-run-exthandlers'], { timeoutMs: 120_000, killWhen: () => stop, killSignal: 'SIGTERM' });
  try {
    await waitFor(vm, 'enable success', () => entry(vm)?.status === 'Ready' && entry(vm)?.runtimeSettingsStatus?.settingsStatus.status.status === 'success');
    assert.deepEqual(calls(vm), ['install@1.0.0', 'enable@1.0.0']);
    assert.equal(vm.simulator.summary()!.readyCount, 0, 'no provisioning, no health report');
  } finally {
    stop = true;
    const r = await run;
    await vm.destroy({ removeFiles: true });
    assert.equal(r.exitCode, 0, `exit ${r.exitCode} ${r.signal}`);
  }
});
