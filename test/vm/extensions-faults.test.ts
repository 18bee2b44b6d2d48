// Extension failures end to end (extensions.md §5.2, §5.10, §6.6, §8.5, §4.4; issue 8): a failing enable reported
// with 1009 while the agent keeps polling and the next incarnation retries; the agent killed with SIGKILL in the
// middle of an install, restarted, reaching the same final state; a hostile package (a zip bomb with traversal names)
// refused without a file written outside Lib.Dir and without stopping a valid handler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { agentCommand, createVm, defaultWaagentConf, vmUnavailableReason } from './vm';
import { defaultScenario } from '../fabric/scenario';
import { fakeExtensionPackage, fakeExtensionEntries } from '../fabric/fake-extension';
import { buildZip } from '../fabric/zip';
import { N, L, ext, entry, gsAggregate, calls, callRecords, waitFor, publish, startDaemon, sleep, agentLog } from './ext-helpers';

let skip = vmUnavailableReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (skip) console.log(`# skipping VM extension fault tests: ${skip}`);

const CONF = defaultWaagentConf({ 'Extensions.GoalStatePeriod': '1' });

test('failing enable → NotReady 1009 with the output, polling goes on, the next incarnation retries', { skip, timeout: 300_000 }, async () => {
  const sc = defaultScenario();
  sc.extensionPackages = [fakeExtensionPackage(N, '1.0.0')];
  sc.extensions = [ext({ fake: 'enable.exit=3 out=20 status=none' })];
  const vm = await createVm({ scenario: sc, waagentConf: CONF });
  const daemon = startDaemon(vm);
  try {
    const e = await waitFor(vm, 'enable failure', () => (entry(vm)?.code === 1009 ? entry(vm) : undefined));
    assert.equal(e.status, 'NotReady');
    assert.match(e.formattedMessage!.message, new RegExp(`^\\[ExtensionOperationError\\] Non-zero exit code: 3, ${L}/${N}-1\\.0\\.0/bin/fake\\.sh enable\\n\\[stdout\\]\\n`));
    assert.equal(vm.readFile(`${L}/${N}-1.0.0/config/HandlerState`)?.toString(), 'Installed');
    // polling and status uploads go on; nothing is retried within the same incarnation (§6.8)
    const before = vm.simulator.summary()!;
    await sleep(3000);
    const after = vm.simulator.summary()!;
    assert.ok((after.counts.goalstate ?? 0) >= (before.counts.goalstate ?? 0) + 2, 'the agent keeps polling');
    assert.ok(after.statusUploads >= before.statusUploads + 2, 'and uploading');
    assert.deepEqual(calls(vm), ['install@1.0.0', 'enable@1.0.0']);
    // fixed settings in a new incarnation: enable again (no install), success
    publish(vm, sc, [ext({ seqNo: 1, fake: 'status=success' })]);
    await waitFor(vm, 'success after the fix', () => entry(vm)?.status === 'Ready' && entry(vm)?.runtimeSettingsStatus?.settingsStatus.status.status === 'success');
    assert.deepEqual(calls(vm), ['install@1.0.0', 'enable@1.0.0', 'enable@1.0.0']);
  } finally {
    await daemon.stop();
    await vm.destroy({ removeFiles: true });
  }
});

test('kill -9 of the agent mid-install, restart: install again, enable, the same final state', { skip, timeout: 300_000 }, async () => {
  const sc = defaultScenario();
  sc.extensionPackages = [fakeExtensionPackage(N, '1.0.0')];
  sc.extensions = [ext({ fake: 'install.sleep=30 status=success' })];
  const vm = await createVm({ scenario: sc, waagentConf: CONF });
  try {
    const first = startDaemon(vm);
    await waitFor(vm, 'install started', () => callRecords(vm).some((r) => r.op === 'install'));
    await first.kill();
    assert.equal(vm.readFile(`${L}/${N}-1.0.0/config/HandlerState`)?.toString(), 'NotInstalled', 'state persisted before the command');
    assert.deepEqual(calls(vm), ['install@1.0.0']);
    // restart with a quick install: the same goal state is processed again from disk state (§5.10)
    sc.extensions = [ext({ fake: 'status=success' })];
    vm.simulator.setScenario(sc); // same incarnation: only the directives change
    const second = startDaemon(vm);
    try {
      await waitFor(vm, 'success after the restart', () => entry(vm)?.status === 'Ready' && entry(vm)?.runtimeSettingsStatus?.settingsStatus.status.status === 'success');
      assert.deepEqual(calls(vm), ['install@1.0.0', 'install@1.0.0', 'enable@1.0.0']);
      assert.equal(vm.readFile(`${L}/${N}-1.0.0/config/HandlerState`)?.toString(), 'Enabled');
      assert.equal((vm.readFile(`${L}/${N}__1.0.0.zip`)), undefined, 'no zip left behind');
    } finally { await second.stop(); }
    // and again: enable at every start, nothing downloaded
    const pkgs = vm.simulator.summary()!.counts.extPackage ?? 0;
    const third = startDaemon(vm);
    try {
      await waitFor(vm, 'enable at start', () => calls(vm).length === 4);
      assert.deepEqual(calls(vm).slice(3), ['enable@1.0.0']);
      await sleep(500);
      assert.equal(vm.simulator.summary()!.counts.extPackage ?? 0, pkgs, 'nothing downloaded again');
    } finally { await third.stop(); }
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});

test('hostile package refused (zip bomb, traversal names); a valid handler beside it still succeeds', { skip, timeout: 300_000 }, async () => {
  const sc = defaultScenario();
  const H = 'Test.Hostile';
  const hostile = buildZip([
    ...fakeExtensionEntries(),
    { name: '../../../etc/evil-from-zip', data: 'x' },
    { name: 'bomb', data: Buffer.alloc(8 * 1024 * 1024, 0x41), declaredSize: 1024 },
  ]);
  sc.extensionPackages = [fakeExtensionPackage(N, '1.0.0'), { name: H, version: '1.0.0', zipBase64: hostile.toString('base64') }];
  sc.extensions = [ext({ name: H, fake: 'status=success' }), ext({ fake: 'status=success' })];
  const vm = await createVm({ scenario: sc, waagentConf: CONF });
  const daemon = startDaemon(vm);
  try {
    await waitFor(vm, 'goal state processed', () => gsAggregate(vm)?.status === 'Success' && entry(vm, H) && entry(vm)?.status === 'Ready');
    const bad = entry(vm, H)!;
    assert.equal(bad.status, 'NotReady');
    assert.equal(bad.code, 1001);
    assert.match(bad.formattedMessage!.message, /^Failed to download artifacts: \[ExtensionDownloadError\]/);
    assert.equal(vm.readFile('/etc/evil-from-zip'), undefined);
    assert.equal(vm.readFile(`${L}/${H}-1.0.0/HandlerManifest.json`), undefined, 'no partial handler directory');
    assert.equal(vm.readFile('/var/lib/evil-from-zip'), undefined);
    assert.ok(!calls(vm).some((c) => c.includes('Hostile')));
    assert.deepEqual(calls(vm), ['install@1.0.0', 'enable@1.0.0']);
    assert.match(agentLog(vm), /Test\.Hostile/);
  } finally {
    await daemon.stop();
    await vm.destroy({ removeFiles: true });
  }
});

test('multi-config handler (RunCommand v2 style): per-extension commands, statuses and deletion (§9)', { skip, timeout: 300_000 }, async () => {
  const sc = defaultScenario();
  const MC = 'Test.FakeMC';
  sc.extensionPackages = [fakeExtensionPackage(MC, '1.0.0', { supportsMultipleExtensions: 'true' })];
  const mcExt = (exts: { name: string; seqNo: number; state?: 'enabled' | 'disabled'; publicSettings?: unknown }[]) =>
    ext({ name: MC, multiConfig: exts });
  sc.extensions = [mcExt([
    { name: 'first', seqNo: 1, publicSettings: { fake: 'status=success' } },
    { name: 'second', seqNo: 4, publicSettings: { fake: 'enable.exit=7 status=none' } },
  ])];
  sc.requiredFeatures = ['MultipleExtensionsPerHandler'];
  const vm = await createVm({ scenario: sc, waagentConf: CONF });
  const daemon = startDaemon(vm);
  const entries = () => (vm.simulator.summary()?.latestStatus as { aggregateStatus?: { handlerAggregateStatus?: (HandlerEntryMc)[] } } | undefined)
    ?.aggregateStatus?.handlerAggregateStatus?.filter((h) => h.handlerName === MC) ?? [];
  try {
    await waitFor(vm, 'two MC entries', () => gsAggregate(vm)?.status === 'Success' && entries().length === 2
      && entries().every((e) => ['success', 'error'].includes(e.runtimeSettingsStatus?.settingsStatus.status.status ?? '')));
    const byName = Object.fromEntries(entries().map((e) => [e.runtimeSettingsStatus!.extensionName, e]));
    assert.equal(byName.first.runtimeSettingsStatus!.sequenceNumber, 1);
    assert.equal(byName.first.runtimeSettingsStatus!.settingsStatus.status.status, 'success');
    assert.equal(byName.second.runtimeSettingsStatus!.settingsStatus.status.status, 'error');
    assert.equal(byName.second.runtimeSettingsStatus!.settingsStatus.status.code, 1009);
    assert.match(byName.second.runtimeSettingsStatus!.settingsStatus.status.formattedMessage!.message, /^Error processing MultiConfig extension Test\.FakeMC\.second: \[MultiConfigExtensionEnableError\] \[ExtensionOperationError\] Non-zero exit code: 7/);
    const recs = callRecords(vm).filter((r) => r.op === 'enable');
    assert.deepEqual(recs.map((r) => [r.env?.ConfigExtensionName, r.env?.ConfigSequenceNumber]), [['first', '1'], ['second', '4']]);
    const supported = (vm.simulator.summary()?.latestStatus as { supportedFeatures?: { Key: string }[] }).supportedFeatures;
    assert.deepEqual(supported?.map((f) => f.Key), ['MultipleExtensionsPerHandler']);
    // the user deletes "second": disabled state → its files go and so does its entry
    publish(vm, sc, [mcExt([{ name: 'first', seqNo: 1, publicSettings: { fake: 'status=success' } }, { name: 'second', seqNo: 4, state: 'disabled' }])]);
    await waitFor(vm, 'second gone', () => gsAggregate(vm)?.inSvdSeqNo === String(sc.incarnation) && entries().length === 1);
    assert.equal(entries()[0].runtimeSettingsStatus!.extensionName, 'first');
    assert.equal(vm.readFile(`${L}/${MC}-1.0.0/config/second.4.settings`), undefined);
  } finally {
    await daemon.stop();
    await vm.destroy({ removeFiles: true });
  }
});

interface HandlerEntryMc {
  handlerName: string;
  runtimeSettingsStatus?: { extensionName?: string; sequenceNumber: number; settingsStatus: { status: { status: string; code: number | string; formattedMessage?: { message: string } } } };
}
