import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseXml, find, findAll, findPath, findNs, findAllNs, textOf, childText, attr, escapeXml, decodeEntities, XmlError } from '../../src/core/xml';

const OVF = `<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1">
  <wa:ProvisioningSection>
    <wa:Version>1.0</wa:Version>
    <LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure">
      <HostName>vm&amp;1</HostName>
      <UserName>azure user</UserName>
      <UserPassword>  p&lt;a&#x41;&#66;ss  </UserPassword>
      <CustomData><![CDATA[#!/bin/sh
echo "<hi>" & done]]></CustomData>
      <Empty></Empty>
    </LinuxProvisioningConfigurationSet>
  </wa:ProvisioningSection>
  <PlatformSettingsSection xmlns="http://schemas.microsoft.com/windowsazure">
    <PlatformSettings a:type="x" xmlns:a="urn:a" name="n&quot;1"><ProvisionGuestAgent>true</ProvisionGuestAgent></PlatformSettings>
  </PlatformSettingsSection>
</Environment>`;

test('entities (named and numeric) decoded in text and attributes; whitespace kept', () => {
  const root = parseXml(OVF, 'ovf-env.xml');
  assert.equal(root.local, 'Environment');
  assert.equal(childText(root, 'HostName'), 'vm&1');
  assert.equal(childText(root, 'UserName'), 'azure user');
  assert.equal(childText(root, 'UserPassword'), '  p<aABss  ');
  assert.equal(attr(find(root, 'PlatformSettings'), 'name'), 'n"1');
  assert.equal(attr(find(root, 'PlatformSettings'), 'type'), 'x'); // by local name
  assert.equal(attr(find(root, 'PlatformSettings'), 'missing'), '');
  assert.equal(decodeEntities('&unknown; &#0; &#xZZ;'), '&unknown; \0 &#xZZ;');
});

test('CDATA is literal (no entity decoding, markup kept)', () => {
  const root = parseXml(OVF, 'ovf-env.xml');
  assert.equal(childText(root, 'CustomData'), '#!/bin/sh\necho "<hi>" & done');
});

test('lookup by local name (prefix-blind) and by namespace URI', () => {
  const root = parseXml(OVF, 'ovf-env.xml');
  assert.equal(textOf(findPath(root, 'ProvisioningSection', 'Version')), '1.0');
  assert.equal(find(root, 'ProvisioningSection')!.tag, 'wa:ProvisioningSection');
  const WA = 'http://schemas.microsoft.com/windowsazure';
  assert.ok(findNs(root, WA, 'ProvisioningSection'));
  assert.equal(findNs(root, 'http://schemas.dmtf.org/ovf/environment/1', 'ProvisioningSection'), undefined);
  assert.equal(findNs(root, WA, 'HostName')?.local, 'HostName'); // default namespace inherited
  assert.equal(findAllNs(root, WA, 'ProvisionGuestAgent').length, 1);
  assert.equal(findAll(root, 'Nothing').length, 0);
  assert.equal(textOf(find(root, 'Empty')), undefined);
  assert.equal(textOf(undefined), undefined);
});

test('malformed documents are rejected with the document name', () => {
  assert.throws(() => parseXml('<a><b></a>', 'goal state'), (e: Error) => e instanceof XmlError && /Malformed goal state: .*<\/a> closes <b>/.test(e.message));
  assert.throws(() => parseXml('<a><b>text</b>', 'goal state'), /<a> is not closed/);
  assert.throws(() => parseXml('no xml here', 'x'), /no XML content/);
  assert.throws(() => parseXml('<a/><b/>', 'x'), /more than one root/);
  assert.throws(() => parseXml('</a>', 'x'), /unexpected <\/a>/);
});

test('BOM, NUL bytes and leading junk are tolerated; escapeXml round-trips', () => {
  const root = parseXml('\uFEFFjunk\0<r x="1">a &lt; b</r>', 'x');
  assert.equal(textOf(root), 'a < b');
  const s = `<&>"' x`;
  assert.equal(textOf(parseXml(`<r>${escapeXml(s)}</r>`, 'x')), s);
  assert.equal(attr(parseXml(`<r v="${escapeXml(s)}"/>`, 'x'), 'v'), s);
});
