import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHandlers, orderItems, waitsAfter, parseHandlerDirName, cleanupTargets, unsupportedFeatures } from '../../src/extensions/plan';
import { compareExtVersions, installedVersion, HandlerDir } from '../../src/extensions/handler-state';
import { parseExtensionsConfig } from '../../src/fabric/documents';
import { extConfig, plugin, scSettings, makeFakeBed, L } from './ext-helpers';

test('plan: settings matched case-insensitively, seqNo and payload parsed, protected settings kept verbatim', () => {
  const ps = scSettings('publisher.Ext', '1.0.0', 3);
  ps.runtimeSettings[0].json = JSON.stringify({ runtimeSettings: [{ handlerSettings: { publicSettings: { x: 1 }, protectedSettings: 'MIIB', protectedSettingsCertThumbprint: 'AB12' } }] });
  const { handlers } = parseHandlers(extConfig([plugin('Publisher.Ext', '1.0.0')], [ps]));
  assert.equal(handlers.length, 1);
  const h = handlers[0];
  assert.equal(h.invalidReason, undefined);
  assert.deepEqual(h.settings, [{ name: 'Publisher.Ext', seqNo: 3, state: 'enabled', dependencyLevel: 0, publicSettings: { x: 1 }, protectedSettings: 'MIIB', protectedSettingsCertThumbprint: 'AB12' }]);
});

test('plan: invalid handlers carry their reason; valid ones are untouched (§3.1)', () => {
  const bad = scSettings('B', '2.0', 1); // version mismatch
  const noSeq = scSettings('C', '1.0', 0); noSeq.runtimeSettings[0].seqNo = '';
  const badJson = scSettings('D', '1.0', 4); badJson.runtimeSettings[0].json = '{not json';
  const { handlers } = parseHandlers(extConfig(
    [plugin('A', '1.0'), plugin('B', '1.0'), plugin('C', '1.0'), plugin('D', '1.0'), plugin('E', '1.0', ''), plugin('F', '1.0', 'Enabled')],
    [scSettings('A', '1.0', 0), bad, noSeq, badJson]));
  const by = Object.fromEntries(handlers.map((h) => [h.name, h]));
  assert.equal(by.A.invalidReason, undefined);
  assert.match(by.B.invalidReason!, /^Extension PluginSettings Version Mismatch! Expected PluginSettings version: 1.0 for Extension: B but found versions: \(2.0\)/);
  assert.equal(by.C.invalidReason, 'SeqNo not specified for the Extension: C');
  assert.equal(by.D.invalidReason, undefined);
  assert.deepEqual(by.D.settings[0], { name: 'D', seqNo: 4, state: 'enabled', dependencyLevel: 0, publicSettings: null, protectedSettings: null, protectedSettingsCertThumbprint: null });
  assert.match(by.E.invalidReason!, /empty Extensions.Plugins.Plugin.state/);
  assert.equal(by.F.state, 'enabled');
});

test('plan: order of §3.3 example (C, E, A, D, B) and waits after A and D only (§3.4)', () => {
  const { handlers } = parseHandlers(extConfig(
    [plugin('A', '1.0'), plugin('B', '1.0'), plugin('C', '1.0', 'uninstall'), plugin('D', '1.0'), plugin('E', '1.0', 'uninstall')],
    [scSettings('A', '1.0', 0, {}, 0), scSettings('B', '1.0', 0, {}, 2), scSettings('C', '1.0', 0, {}, 1), scSettings('D', '1.0', 0), scSettings('E', '1.0', 0, {}, 0)]));
  const items = orderItems(handlers);
  assert.deepEqual(items.map((i) => `${i.handler.name}${i.key}`), ['C-2', 'E-1', 'A0', 'D0', 'B2']);
  assert.deepEqual(items.map((_, i) => waitsAfter(items, i)), [false, false, true, true, false]);
});

test('plan: multi-config extensions, per-extension state and names', () => {
  const xml = `<Extensions><Plugins><Plugin name="RC" version="1.0" location="http://m" state="enabled"/></Plugins><PluginSettings><Plugin name="RC" version="1.0">
    <ExtensionRuntimeSettings seqNo="1" name="one" state="Disabled">{"runtimeSettings":[{"handlerSettings":{"publicSettings":{"a":1}}}]}</ExtensionRuntimeSettings>
    <ExtensionRuntimeSettings seqNo="7" name="two">{"runtimeSettings":[{"handlerSettings":{}}]}</ExtensionRuntimeSettings>
    </Plugin></PluginSettings></Extensions>`;
  const { handlers } = parseHandlers(parseExtensionsConfig(xml));
  assert.equal(handlers[0].supportsMultiConfig, true);
  assert.deepEqual(handlers[0].settings.map((s) => [s.name, s.seqNo, s.state]), [['one', 1, 'disabled'], ['two', 7, 'enabled']]);
  assert.deepEqual(orderItems(handlers).map((i) => i.settings?.name), ['one', 'two']);
});

test('plan: handler directory names split at the last dash; non-handler directories refused (§2.2)', () => {
  assert.deepEqual(parseHandlerDirName('Microsoft.AKS.Compute.AKS-Engine.Linux.Billing-1.0.2'), { name: 'Microsoft.AKS.Compute.AKS-Engine.Linux.Billing', version: '1.0.2' });
  assert.equal(parseHandlerDirName('custom-script'), undefined);
  assert.equal(parseHandlerDirName('run-command-handler'), undefined);
  assert.equal(parseHandlerDirName('WALinuxAgent-2.15.0.1'), undefined);
  assert.equal(parseHandlerDirName('history'), undefined);
});

test('versions: numeric components, missing is 0, pre-release before release', () => {
  assert.equal(compareExtVersions('1.0', '1.0.0'), 0);
  assert.ok(compareExtVersions('1.10.0', '1.9.0') > 0);
  assert.ok(compareExtVersions('2.0.0rc1', '2.0.0') < 0);
  assert.ok(compareExtVersions('2.0.0alpha1', '2.0.0beta1') < 0);
});

test('required features: anything not supported is reported', () => {
  assert.deepEqual(unsupportedFeatures(extConfig([], [], ['MultipleExtensionsPerHandler', 'X']), ['MultipleExtensionsPerHandler']), ['X']);
});

test('installed version and clean-up targets (§5.1, §3.8)', () => {
  const bed = makeFakeBed();
  try {
    new HandlerDir(bed.fs, L, 'A', '1.0.0').setState('Enabled');
    new HandlerDir(bed.fs, L, 'A', '1.2.0').setState('FailedUpgrade');
    new HandlerDir(bed.fs, L, 'Gone', '3.0').setState('Enabled');
    bed.fs.mkdir(`${L}/custom-script`, 0o755);
    bed.fs.write(`${L}/Gone__3.0.zip`, 'z', { mode: 0o644 });
    bed.fs.write(`${L}/Old__0.9.zip`, 'z', { mode: 0o644 });
    bed.fs.write(`${L}/A__1.0.0.zip.part`, 'z', { mode: 0o644 });
    assert.equal(installedVersion(bed.fs, L, 'A'), '1.0.0');
    const { handlers } = parseHandlers(extConfig([plugin('A', '1.0.0')], []));
    const t = cleanupTargets(bed.fs, L, handlers);
    assert.deepEqual(t.dirs.map((d) => d.name), ['Gone']);
    assert.deepEqual(t.files.sort(), [`${L}/A__1.0.0.zip.part`, `${L}/Gone__3.0.zip`, `${L}/Old__0.9.zip`]);
  } finally { bed.cleanup(); }
});
