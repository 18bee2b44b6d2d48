import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHandlers, orderItems, type PlanItem } from '../../src/extensions/plan';
import { HandlerDir } from '../../src/extensions/handler-state';
import { processGoalState, type ProcessorOptions } from '../../src/extensions/processor';
import { buildHandlerEntries } from '../../src/extensions/report';
import { log } from '../../src/core/log';
import { extConfig, plugin, scSettings, makeFakeBed, hm, L, type FakeBed } from './ext-helpers';

const N = 'Test.Fake';
const H = (v: string) => `${L}/${N}-${v}`;

function item(bed: FakeBed, version: string, state = 'enabled', seq = 0, pub: unknown = { a: 1 }): PlanItem {
  void bed;
  const { handlers } = parseHandlers(extConfig([plugin(N, version, state)], [scSettings(N, version, seq, pub)]));
  return orderItems(handlers)[0];
}

function run(bed: FakeBed, ec: ReturnType<typeof extConfig>, over: Partial<ProcessorOptions> = {}) {
  const lifecycle = bed.lifecycle();
  const opts: ProcessorOptions = {
    fs: bed.fs, libDir: L, log, lifecycle, extensionsEnabled: true, confPath: '/etc/waagent.conf', supportedFeatures: [],
    extensionStatus: async () => 'success', waitPollMs: 5, waitDeadlineMs: 200, ...over,
  };
  return processGoalState(ec, '1', opts).then((r) => ({ r, lifecycle }));
}

test('install then enable: download, settings, install (NOT_RUN), enable; states and statuses (§5.3)', async () => {
  const bed = makeFakeBed();
  try {
    const lc = bed.lifecycle();
    const out = await lc.processItem(item(bed, '1.0.0', 'enabled', 2));
    assert.equal(out.ok, true);
    assert.deepEqual(bed.events, ['download@1.0.0', 'settings@1.0.0', 'install@1.0.0', 'enable@1.0.0']);
    const [inst, en] = bed.calls;
    assert.deepEqual(inst.env, {
      AZURE_GUEST_AGENT_EXTENSION_PATH: H('1.0.0'), AZURE_GUEST_AGENT_EXTENSION_VERSION: '1.0.0', AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS: '168.63.129.16',
      ConfigSequenceNumber: '2', AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: 'NOT_RUN',
    });
    assert.equal(en.env.AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE, 'NOT_RUN');
    const d = new HandlerDir(bed.fs, L, N, '1.0.0');
    assert.equal(d.state(), 'Enabled');
    assert.deepEqual(JSON.parse(bed.read(`${H('1.0.0')}/config/HandlerStatus`)), { name: N, version: '1.0.0', status: 'Ready', code: 0, message: 'Plugin enabled', supports_multi_config: false, extension_status: null });
    // again (new incarnation, same or new seq): settings rewritten, enable only
    bed.events.length = 0;
    await lc.processItem(item(bed, '1.0.0', 'enabled', 3));
    assert.deepEqual(bed.events, ['settings@1.0.0', 'enable@1.0.0']);
  } finally { bed.cleanup(); }
});

test('update 1.0.0 → 1.1.0: the exact order and environment of §5.4', async () => {
  const bed = makeFakeBed();
  try {
    const lc = bed.lifecycle();
    await lc.processItem(item(bed, '1.0.0', 'enabled', 0));
    bed.fs.write(`${H('1.0.0')}/mrseq`, '0', { mode: 0o644 });
    bed.fs.write(`${H('1.0.0')}/status/0.status`, '[]', { mode: 0o644 });
    const old = new Date('2026-01-02T03:04:05Z');
    (await import('node:fs')).utimesSync(bed.p(`${H('1.0.0')}/status/0.status`), old, old);
    bed.events.length = 0; bed.calls.length = 0;
    const out = await lc.processItem(item(bed, '1.1.0', 'enabled', 4));
    assert.equal(out.ok, true);
    assert.deepEqual(bed.events, ['download@1.1.0', 'settings@1.1.0', 'disable@1.0.0', 'update@1.1.0', 'uninstall@1.0.0', 'install@1.1.0', 'enable@1.1.0']);
    const [dis, upd, unin, inst, en] = bed.calls;
    assert.equal(dis.dir, H('1.0.0')); assert.equal(dis.env.ConfigSequenceNumber, '4'); assert.equal(dis.env.AZURE_GUEST_AGENT_EXTENSION_VERSION, '1.0.0');
    assert.equal(upd.dir, H('1.1.0'));
    assert.equal(upd.env.VERSION, '1.1.0'); assert.equal(upd.env.AZURE_GUEST_AGENT_UPDATING_FROM_VERSION, '1.0.0');
    assert.equal(upd.env.AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE, '0');
    assert.equal(unin.dir, H('1.0.0')); assert.equal(unin.env.ConfigSequenceNumber, '4');
    assert.equal(inst.env.AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE, '0');
    assert.equal(en.env.AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE, '0');
    assert.equal(bed.exists(H('1.0.0')), false);
    assert.equal(bed.read(`${H('1.1.0')}/mrseq`), '0');
    assert.equal((await import('node:fs')).statSync(bed.p(`${H('1.1.0')}/status/0.status`)).mtime.toISOString(), old.toISOString(), 'timestamps kept');
    assert.equal(new HandlerDir(bed.fs, L, N, '1.1.0').state(), 'Enabled');
  } finally { bed.cleanup(); }
});

test('update: old disable fails → 1008, nothing else runs; continueOnUpdateFailure → goes on with the exit code', async () => {
  const bed = makeFakeBed();
  try {
    const lc = bed.lifecycle();
    await lc.processItem(item(bed, '1.0.0'));
    bed.react = (a) => (a.operation === 'disable' ? { exitCode: 3 } : undefined);
    bed.events.length = 0;
    const out = await lc.processItem(item(bed, '1.1.0', 'enabled', 1));
    assert.equal(out.ok, false);
    assert.equal(out.code, 1008);
    assert.match(out.message!, /^\[ExtensionUpdateError\] \[ExtensionOperationError\] Non-zero exit code: 3, .*Test.Fake-1.0.0\/bin\/fake.sh disable\n[\s\S]*; ContinueOnUpdate: False$/);
    assert.deepEqual(bed.events, ['download@1.1.0', 'settings@1.1.0', 'disable@1.0.0']);
    assert.equal(JSON.parse(bed.read(`${H('1.1.0')}/config/HandlerStatus`)).code, 1008);
    assert.equal(new HandlerDir(bed.fs, L, N, '1.0.0').state(), 'Enabled');
    // continueOnUpdateFailure in the NEW manifest
    bed.manifests.set('1.1.0', hm({ continueOnUpdateFailure: true }));
    bed.events.length = 0; bed.calls.length = 0;
    const out2 = await lc.processItem(item(bed, '1.1.0', 'enabled', 2));
    assert.equal(out2.ok, true);
    assert.deepEqual(bed.events, ['download@1.1.0', 'settings@1.1.0', 'disable@1.0.0', 'update@1.1.0', 'uninstall@1.0.0', 'install@1.1.0', 'enable@1.1.0']);
    assert.equal(bed.calls[1].env.AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE, '3');
  } finally { bed.cleanup(); }
});

test('update: failing update command → FailedUpgrade, 1008; retried next time with NOT_RUN; UpdateWithoutInstall skips install', async () => {
  const bed = makeFakeBed();
  try {
    const lc = bed.lifecycle();
    await lc.processItem(item(bed, '1.0.0'));
    bed.react = (a) => (a.operation === 'update' ? { exitCode: 1 } : undefined);
    const out = await lc.processItem(item(bed, '1.1.0', 'enabled', 1));
    assert.equal(out.code, 1008);
    assert.equal(new HandlerDir(bed.fs, L, N, '1.1.0').state(), 'FailedUpgrade');
    assert.equal(new HandlerDir(bed.fs, L, N, '1.0.0').state(), 'Installed'); // its disable succeeded
    bed.react = () => undefined;
    bed.manifests.set('1.1.0', hm({ updateMode: 'UpdateWithoutInstall' }));
    bed.events.length = 0; bed.calls.length = 0;
    const out2 = await lc.processItem(item(bed, '1.1.0', 'enabled', 1));
    assert.equal(out2.ok, true);
    assert.deepEqual(bed.events, ['download@1.1.0', 'settings@1.1.0', 'update@1.1.0', 'uninstall@1.0.0', 'enable@1.1.0']);
    assert.equal(bed.calls[0].env.AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE, 'NOT_RUN');
  } finally { bed.cleanup(); }
});

test('downgrade 1.1.0 → 1.0.0: the old handler\'s update runs in the old directory', async () => {
  const bed = makeFakeBed();
  try {
    const lc = bed.lifecycle();
    await lc.processItem(item(bed, '1.1.0'));
    bed.events.length = 0; bed.calls.length = 0;
    await lc.processItem(item(bed, '1.0.0'));
    assert.deepEqual(bed.events, ['download@1.0.0', 'settings@1.0.0', 'disable@1.1.0', 'update@1.1.0', 'uninstall@1.1.0', 'install@1.0.0', 'enable@1.0.0']);
    const upd = bed.calls[1];
    assert.equal(upd.dir, H('1.1.0'));
    assert.equal(upd.env.VERSION, '1.0.0');
    assert.equal(upd.env.AZURE_GUEST_AGENT_UPDATING_FROM_VERSION, '1.1.0');
  } finally { bed.cleanup(); }
});

test('failure codes: install 1007 (state NotInstalled), enable 1009, timeout 1011, download 1001, manifest −1', async () => {
  const bed = makeFakeBed();
  try {
    const lc = bed.lifecycle();
    bed.react = (a) => (a.operation === 'install' ? { exitCode: 2, output: '[stdout]\nboom\n\n[stderr]\n' } : undefined);
    let out = await lc.processItem(item(bed, '1.0.0'));
    assert.equal(out.code, 1007);
    assert.equal(out.message, `[ExtensionOperationError] Non-zero exit code: 2, ${H('1.0.0')}/bin/fake.sh install\n[stdout]\nboom\n\n[stderr]\n`);
    assert.equal(new HandlerDir(bed.fs, L, N, '1.0.0').state(), 'NotInstalled');
    bed.react = (a) => (a.operation === 'enable' ? { exitCode: 5 } : undefined);
    out = await lc.processItem(item(bed, '1.0.0'));
    assert.equal(out.code, 1009);
    assert.equal(new HandlerDir(bed.fs, L, N, '1.0.0').state(), 'Installed');
    bed.react = (a) => (a.operation === 'enable' ? { exitCode: null, timedOut: true } : undefined);
    out = await lc.processItem(item(bed, '1.0.0'));
    assert.equal(out.code, 1011);
    assert.match(out.message!, /^\[ExtensionError\] Timeout\(300\): /);
    const hs = JSON.parse(bed.read(`${H('1.0.0')}/config/HandlerStatus`));
    assert.equal(hs.status, 'NotReady'); assert.equal(hs.code, 1011);
    // download and manifest failures: no directory, status held in memory and reported
    const lc2 = bed.lifecycle();
    bed.downloadFails = true;
    out = await lc2.processItem({ ...item(bed, '1.1.0'), handler: { ...item(bed, '1.1.0').handler, name: 'Other' } });
    assert.equal(out.code, 1001);
    assert.equal(lc2.memo.get('Other')?.code, 1001);
    bed.manifestFails = true;
    out = await lc2.processItem({ ...item(bed, '1.1.0'), handler: { ...item(bed, '1.1.0').handler, name: 'Third' } });
    assert.equal(out.code, -1);
    assert.match(out.message!, /^\[ExtensionError\] Failed to get ext handler pkgs\nInner error: /);
  } finally { bed.cleanup(); }
});

test('disable then uninstall: statuses, directory gone, no manifest needed (§5.5, §5.6)', async () => {
  const bed = makeFakeBed();
  try {
    const lc = bed.lifecycle();
    await lc.processItem(item(bed, '1.0.0'));
    bed.manifestFails = true;
    bed.events.length = 0;
    await lc.processItem(item(bed, '1.0.0', 'disabled'));
    assert.deepEqual(bed.events, ['disable@1.0.0']);
    assert.equal(new HandlerDir(bed.fs, L, N, '1.0.0').state(), 'Installed');
    assert.equal(JSON.parse(bed.read(`${H('1.0.0')}/config/HandlerStatus`)).message, 'Plugin disabled');
    await lc.processItem(item(bed, '1.0.0', 'disabled'));
    assert.deepEqual(bed.events, ['disable@1.0.0']);
    await lc.processItem(item(bed, '1.0.0', 'uninstall'));
    assert.deepEqual(bed.events, ['disable@1.0.0', 'uninstall@1.0.0']);
    assert.equal(bed.exists(H('1.0.0')), false);
  } finally { bed.cleanup(); }
});

test('uninstall with a failing disable: 1010, directory kept, uninstall not run', async () => {
  const bed = makeFakeBed();
  try {
    const lc = bed.lifecycle();
    await lc.processItem(item(bed, '1.0.0'));
    bed.react = (a) => (a.operation === 'disable' ? { exitCode: 1 } : undefined);
    bed.events.length = 0;
    const out = await lc.processItem(item(bed, '1.0.0', 'uninstall'));
    assert.equal(out.code, 1010);
    assert.deepEqual(bed.events, ['disable@1.0.0']);
    assert.equal(bed.exists(H('1.0.0')), true);
  } finally { bed.cleanup(); }
});

test('goal state: dependency failure blocks every later item; waits poll the status (§3.4)', async () => {
  const bed = makeFakeBed();
  try {
    bed.react = (a) => (a.operation === 'install' && a.name === 'A' ? { exitCode: 1 } : undefined);
    const ec = extConfig([plugin('A', '1.0.0'), plugin('B', '1.0.0'), plugin('C', '1.0.0')],
      [scSettings('A', '1.0.0', 0, {}, 1), scSettings('B', '1.0.0', 0, {}, 2), scSettings('C', '1.0.0', 0, {}, 3)]);
    const { r } = await run(bed, ec);
    assert.equal(r.outcome?.status, 'Success');
    assert.deepEqual(bed.events.filter((e) => !e.startsWith('download') && !e.startsWith('settings')), ['install@1.0.0']);
    const hsB = new HandlerDir(bed.fs, L, 'B', '1.0.0');
    assert.equal(hsB.exists(), false);
    // B and C have no directory: their status is in memory
    const { r: r2, lifecycle } = await run(bed, ec);
    const entries = await buildHandlerEntries(bed.fs, L, { handlers: r2.handlers, versions: r2.versions, memo: lifecycle.memo, notAllowed: r2.notAllowed, now: new Date() }, {
      readExtensionStatus: async () => ({ status: 'transitioning', code: 0 }),
    });
    const byName = Object.fromEntries(entries.map((e) => [e.handlerName, e]));
    assert.equal(byName.A.code, 1007);
    assert.equal(byName.B.message, 'Skipping processing of extensions since execution of dependent extension A failed');
    assert.equal(byName.C.code, -1);
    // status stays transitioning → deadline message
    bed.react = () => undefined;
    const bed2 = makeFakeBed();
    try {
      const { lifecycle: lc3 } = await run(bed2, ec, { extensionStatus: async () => 'transitioning' });
      assert.equal(lc3.memo.get('B')?.message, 'Dependent Extension A did not reach a terminal state within the allowed timeout. Last status was transitioning');
    } finally { bed2.cleanup(); }
  } finally { bed.cleanup(); }
});

test('goal state: unsupported required feature → 2001, nothing runs, nothing cleaned (§3.2)', async () => {
  const bed = makeFakeBed();
  try {
    new HandlerDir(bed.fs, L, 'Gone', '1.0').setState('Enabled');
    const { r } = await run(bed, extConfig([plugin(N, '1.0.0')], [scSettings(N, '1.0.0', 0)], ['MultipleExtensionsPerHandler']));
    assert.deepEqual(r.outcome && { s: r.outcome.status, c: r.outcome.code, m: r.outcome.message }, { s: 'Failed', c: 2001, m: 'Failing GS incarnation_1 as Unsupported features found: MultipleExtensionsPerHandler' });
    assert.equal(bed.calls.length, 0);
    assert.equal(bed.exists(`${L}/Gone-1.0`), true);
    // processed normally: the handler that left the goal state is removed without any command
    await run(bed, extConfig([plugin(N, '1.0.0')], [scSettings(N, '1.0.0', 0)]));
    assert.equal(bed.exists(`${L}/Gone-1.0`), false);
    assert.ok(!bed.calls.some((c) => c.dir.includes('Gone')));
  } finally { bed.cleanup(); }
});

test('Extensions.Enabled=n: 1009/1010, status file overwritten, no command (§11.2)', async () => {
  const bed = makeFakeBed();
  try {
    const lc = bed.lifecycle();
    await lc.processItem(item(bed, '1.0.0', 'enabled', 5));
    bed.calls.length = 0;
    const ec = extConfig([plugin(N, '1.0.0'), plugin('U', '1.0', 'uninstall')], [scSettings(N, '1.0.0', 5)]);
    const { r, lifecycle } = await run(bed, ec, { extensionsEnabled: false });
    assert.equal(bed.calls.length, 0);
    const st = JSON.parse(bed.read(`${H('1.0.0')}/status/5.status`));
    assert.equal(st[0].status.status, 'error');
    assert.equal(st[0].status.code, 1009);
    assert.equal(st[0].status.formattedMessage.message, `Extension '${N}' will not be processed since extension processing is disabled. To enable extension processing, set Extensions.Enabled=y in '/etc/waagent.conf'`);
    assert.equal(lifecycle.memo.get('U')?.code, 1010);
    const entries = await buildHandlerEntries(bed.fs, L, { handlers: r.handlers, versions: r.versions, memo: lifecycle.memo, notAllowed: r.notAllowed, now: new Date() }, {
      readExtensionStatus: async () => ({ status: 'error', code: 1009 }),
    });
    assert.deepEqual(entries.map((e) => [e.handlerName, e.status, e.code]), [[N, 'NotReady', 1009], ['U', 'NotReady', 1010]]);
  } finally { bed.cleanup(); }
});

test('multi-config: per-extension enable, a failing one gets a placeholder, a deleted one loses its files (§9.3)', async () => {
  const bed = makeFakeBed();
  try {
    bed.manifests.set('1.0.0', hm({ supportsMultipleExtensions: true }));
    const mcSettings = (exts: [string, number, string][]) => ({
      name: 'RC', version: '1.0.0', runtimeSettings: [], dependsOn: [],
      extensionRuntimeSettings: exts.map(([name, seq, state]) => ({ name, seqNo: String(seq), state, json: '{"runtimeSettings":[{"handlerSettings":{"publicSettings":{}}}]}' })),
    });
    bed.react = (a) => (a.operation === 'enable' && a.extensionName === 'bad' ? { exitCode: 4 } : undefined);
    const ec1 = extConfig([plugin('RC', '1.0.0')], [mcSettings([['one', 1, 'enabled'], ['bad', 2, 'enabled'], ['gone', 3, 'enabled']])]);
    const { r, lifecycle } = await run(bed, ec1);
    assert.deepEqual(bed.events.filter((e) => /^(install|enable)/.test(e)), ['install@1.0.0:one', 'enable@1.0.0:one', 'enable@1.0.0:bad', 'enable@1.0.0:gone']);
    const enableOne = bed.calls.find((c) => c.op === 'enable' && c.env.ConfigExtensionName === 'one')!;
    assert.equal(enableOne.env.ConfigSequenceNumber, '1');
    const d = `${L}/RC-1.0.0`;
    const ph = JSON.parse(bed.read(`${d}/status/bad.2.status`));
    assert.equal(ph[0].status.name, 'RC.bad');
    assert.equal(ph[0].status.code, 1009);
    assert.match(ph[0].status.formattedMessage.message, /^Error processing MultiConfig extension RC.bad: \[MultiConfigExtensionEnableError\] \[ExtensionOperationError\] Non-zero exit code: 4/);
    const hs = JSON.parse(bed.read(`${d}/config/HandlerStatus`));
    assert.equal(hs.status, 'Ready');
    const entries = await buildHandlerEntries(bed.fs, L, { handlers: r.handlers, versions: r.versions, memo: lifecycle.memo, notAllowed: r.notAllowed, now: new Date() }, {
      readExtensionStatus: async (_h, s) => ({ status: s.name === 'bad' ? 'error' : 'success', code: 0 }),
    });
    assert.deepEqual(entries.map((e) => [e.runtimeSettings?.extensionName, e.runtimeSettings?.sequenceNumber, e.runtimeSettings?.status.status]), [['one', 1, 'success'], ['bad', 2, 'error'], ['gone', 3, 'success']]);
    // "gone" deleted by the user: disabled, files removed, entry gone
    bed.events.length = 0;
    const ec2 = extConfig([plugin('RC', '1.0.0')], [mcSettings([['one', 1, 'enabled'], ['gone', 3, 'disabled']])]);
    const { r: r2, lifecycle: lc2 } = await run(bed, ec2);
    assert.deepEqual(bed.events.filter((e) => /^(disable|enable)/.test(e)), ['disable@1.0.0:gone', 'enable@1.0.0:one']);
    assert.equal(bed.exists(`${d}/config/gone.3.settings`), false);
    assert.equal(bed.exists(`${d}/config/gone.HandlerState`), false);
    const e2 = await buildHandlerEntries(bed.fs, L, { handlers: r2.handlers, versions: r2.versions, memo: lc2.memo, notAllowed: r2.notAllowed, now: new Date() }, {
      readExtensionStatus: async () => ({ status: 'success', code: 0 }),
    });
    assert.deepEqual(e2.map((e) => e.runtimeSettings?.extensionName), ['one']);
  } finally { bed.cleanup(); }
});

test('events folder pruning keeps VMAccess working: ≤ 500 entries, old .tld first, fresh .tmp kept (§10.3)', async () => {
  const { pruneLegacyEvents } = await import('../../src/extensions/telemetry');
  const fsm = await import('node:fs');
  const bed = makeFakeBed();
  try {
    bed.fs.mkdir(`${L}/events`, 0o700);
    const now = Date.now();
    for (let i = 0; i < 1200; i++) {
      const f = bed.p(`${L}/events/${1000 + i}.tld`);
      fsm.writeFileSync(f, 'x');
      const t = (now - (i < 100 ? 2 * 86400_000 : (1200 - i) * 1000)) / 1000;
      fsm.utimesSync(f, t, t);
    }
    fsm.writeFileSync(bed.p(`${L}/events/1.tmp`), 'x');
    const removed = pruneLegacyEvents(bed.fs, L, now);
    const left = fsm.readdirSync(bed.p(`${L}/events`));
    assert.equal(left.length, 500);
    assert.equal(removed, 701);
    assert.ok(left.includes('1.tmp'));
    assert.ok(left.includes('2199.tld'));
    assert.ok(!left.includes('1000.tld'));
  } finally { bed.cleanup(); }
});

test('report: heartbeat replaces the status word and message, Unresponsive keeps the code, a missing one is recorded (§8.3)', async () => {
  const bed = makeFakeBed();
  try {
    const lc = bed.lifecycle();
    const it = item(bed, '1.0.0', 'enabled', 3);
    await lc.processItem(it);
    const input = { handlers: [it.handler], versions: new Map([[N, '1.0.0']]), memo: lc.memo, notAllowed: new Set<string>(), now: new Date() };
    const deps = (hb: 'ok' | 'unresponsive' | 'error') => ({
      readExtensionStatus: async () => ({ status: 'success', code: 0 }),
      reportsHeartbeat: () => true,
      readHeartbeat: () => (hb === 'ok' ? { kind: 'ok' as const, status: 'ready', message: 'hb says hi' } : hb === 'unresponsive' ? { kind: 'unresponsive' as const } : { kind: 'error' as const, message: '[ExtensionError] Failed to get heart beat file' }),
    });
    let [e] = await buildHandlerEntries(bed.fs, L, input, deps('ok'));
    assert.deepEqual([e.status, e.code, e.message], ['ready', 0, 'hb says hi']);
    [e] = await buildHandlerEntries(bed.fs, L, input, deps('unresponsive'));
    assert.deepEqual([e.status, e.code, e.message], ['Unresponsive', 0, 'Plugin enabled']);
    [e] = await buildHandlerEntries(bed.fs, L, input, deps('error'));
    assert.deepEqual([e.status, e.code, e.message], ['NotReady', -1, '[ExtensionError] Failed to get heart beat file']);
    assert.equal(JSON.parse(bed.read(`${H('1.0.0')}/config/HandlerStatus`)).code, -1, 'written into HandlerStatus');
    assert.equal(e.runtimeSettings?.sequenceNumber, 3);
  } finally { bed.cleanup(); }
});
