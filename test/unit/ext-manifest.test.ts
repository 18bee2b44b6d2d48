import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseExtensionManifest, selectVersion, selectVersionOrThrow, parseVersion, compareVersionStrings, findVersion,
} from '../../src/extensions/manifest';
import { ExtensionError } from '../../src/extensions/errors';
import { assertSafeHandlerNameAndVersion, parseEncodedSignature } from '../../src/extensions/fetch';
import { manifestXml } from '../fabric/documents';

/** The shape of WALinuxAgent's wire/manifest.xml (versions rebuilt here, not copied). */
const PUBLIC = ['1.0.0', '1.1.0', '1.1.1', '1.2.0', '2.0.0', '2.1.0', '2.1.1', '2.2.0', '3.0', '3.1', '4.0.0.0', '4.0.0.1', '4.1.0.0'];
const INTERNAL = ['1.3.0', '2.3.0', '2.4.0'];
const doc = [
  '<?xml version="1.0" encoding="utf-8"?>',
  '<PluginVersionManifest xmlns:i="http://www.w3.org/2001/XMLSchema-instance">',
  '  <Plugins>',
  ...PUBLIC.map((v) => `    <Plugin><Version>${v}</Version><Uris><Uri>http://x/p/H__${v}</Uri><Uri>http://y/p/H__${v}</Uri></Uris>${v === '2.1.0' ? '<DisallowMajorVersionUpgrade>True</DisallowMajorVersionUpgrade>' : ''}</Plugin>`),
  '  </Plugins>',
  '  <InternalPlugins>',
  ...INTERNAL.map((v) => `    <Plugin>\n      <Version> ${v} </Version>\n      <Uris>\n        <Uri>http://x/i/H__${v}</Uri>\n      </Uris>\n    </Plugin>`),
  '  </InternalPlugins>',
  '</PluginVersionManifest>',
].join('\n');

test('parseExtensionManifest: public and internal candidates, URIs in order, flags', () => {
  const m = parseExtensionManifest('\uFEFF' + doc);
  assert.equal(m.versions.length, 16);
  assert.deepEqual(m.versions[0], { version: '1.0.0', uris: ['http://x/p/H__1.0.0', 'http://y/p/H__1.0.0'], isInternal: false });
  assert.equal(m.versions.find((v) => v.version === '2.1.0')?.disallowMajorVersionUpgrade, true);
  assert.deepEqual(m.versions.filter((v) => v.isInternal).map((v) => v.version), INTERNAL);
  assert.deepEqual(parseExtensionManifest('<PluginVersionManifest/>'), { versions: [] });
  assert.throws(() => parseExtensionManifest('<html><body>502 Bad Gateway'), (e: unknown) => e instanceof ExtensionError && e.code === -1);
});

test('the simulator manifest builder round-trips', () => {
  const m = parseExtensionManifest(manifestXml([{ version: '1.0.0', uris: ['http://a/1'] }, { version: '1.1.0', uris: ['http://a/2'], internal: true }]));
  assert.deepEqual(m.versions.map((v) => [v.version, v.isInternal, v.uris[0]]), [['1.0.0', false, 'http://a/1'], ['1.1.0', true, 'http://a/2']]);
});

test('version selection: HEAD table (test_ext_handler_version_decide_between_minor_versions)', () => {
  const m = parseExtensionManifest(doc);
  const cases: [string | undefined, string, string][] = [
    [undefined, '2.0', '2.0.0'],
    [undefined, '2.0.0', '2.0.0'],
    ['1.0', '1.0.0', '1.0.0'],
    [undefined, '2.1.0', '2.1.0'],
    [undefined, '2.1.1', '2.1.1'],
    [undefined, '2.2.0', '2.2.0'],
    [undefined, '2.3.0', '2.3.0'],
    [undefined, '2.4.0', '2.4.0'],
    [undefined, '3.0', '3.0'],
    [undefined, '3.1', '3.1'],
    [undefined, '4.0', '4.0.0.1'],
    [undefined, '4.1', '4.1.0.0'],
    [undefined, '2', '2.4.0'],
    [undefined, '1', '1.3.0'],
    [undefined, '2.*', '2.4.0'],
  ];
  for (const [installed, requested, expected] of cases) {
    assert.equal(selectVersion(m, requested, installed, { state: 'enabled' }), expected, `${installed} / ${requested}`);
  }
});

test('version selection: not found, uninstall/disabled use the installed version, bad requested version', () => {
  const m = parseExtensionManifest(doc);
  assert.equal(selectVersion(m, '5.0', undefined, { state: 'enabled' }), undefined);
  assert.throws(() => selectVersionOrThrow(m, '5.0', undefined, { state: 'enabled', name: 'OSTC.Ex' }),
    (e: unknown) => e instanceof ExtensionError && e.code === -1 && e.message === 'Unable to find version 5.0 in manifest for extension OSTC.Ex');
  assert.equal(selectVersion(m, '2.2.0', '1.1.0', { state: 'uninstall' }), '1.1.0');
  assert.equal(selectVersion(m, '2.2.0', '1.1', { state: 'disabled' }), '1.1.0', 'manifest spelling of the installed version');
  assert.equal(selectVersion(m, '2.2.0', '0.9.9', { state: 'uninstall' }), '0.9.9', 'withdrawn version: not an error');
  assert.equal(selectVersion({ versions: [] }, '1.0', undefined, { state: 'uninstall' }), '1.0');
  assert.throws(() => selectVersion(m, '1.*.0', undefined, { state: 'enabled' }), /Invalid version/);
  assert.equal(findVersion(m, '3.0.0')?.version, '3.0');
});

test('version comparison: numeric, missing components are 0, pre-releases sort before the release', () => {
  assert.equal(compareVersionStrings('1.0', '1.0.0'), 0);
  assert.equal(compareVersionStrings('1.10', '1.9'), 1);
  assert.equal(compareVersionStrings('2.0.0rc1', '2.0.0'), -1);
  assert.equal(compareVersionStrings('2.0.0-alpha', '2.0.0beta1'), -1);
  assert.equal(compareVersionStrings('2.0.0rc2', '2.0.0rc10'), -1);
  assert.equal(parseVersion('1.0.x'), undefined);
});

test('handler names and versions used in paths pass a strict check', () => {
  for (const [n, v] of [['Microsoft.Azure.Extensions.CustomScript', '2.1.10'], ['Test.Fake-Ext', '1.0.0'], ['A', '1']]) {
    assert.doesNotThrow(() => assertSafeHandlerNameAndVersion(n, v));
  }
  for (const [n, v] of [['../etc', '1.0'], ['a/b', '1.0'], ['.hidden', '1.0'], ['', '1.0'], ['A', '1.0/..'], ['A', '1.0 '], ['A__B', '1.0'], ['A', '']]) {
    assert.throws(() => assertSafeHandlerNameAndVersion(n, v), (e: unknown) => e instanceof ExtensionError && e.code === -1, `${n} ${v}`);
  }
});

test('encodedSignature: parsed and checked for form only', () => {
  assert.equal(parseEncodedSignature(undefined), undefined);
  assert.deepEqual(parseEncodedSignature('not base64!'), { wellFormed: false, problem: 'not base64' });
  // ContentInfo { signedData OID, [0] {} }
  const ci = Buffer.from('3011' + '0609' + '2a864886f70d010702' + 'a004' + '3002' + '0500', 'hex');
  assert.equal(parseEncodedSignature(ci.toString('base64'))?.wellFormed, true);
  const other = Buffer.from('300b' + '0609' + '2a864886f70d010701', 'hex');
  assert.equal(parseEncodedSignature(other.toString('base64'))?.problem, 'not a CMS SignedData');
});
