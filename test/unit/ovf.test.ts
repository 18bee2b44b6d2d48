import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOvf, redactOvf, OvfError } from '../../src/provision/ovf';
import { XmlError } from '../../src/core/xml';

const OVF = 'http://schemas.dmtf.org/ovf/environment/1';
const WA = 'http://schemas.microsoft.com/windowsazure';

interface Opts { host?: string; user?: string; password?: string; disable?: string; pga?: string | null; keys?: string; custom?: string }
/** The Azure style: default ovf ns, `wa:` prefix, the set re-declaring wa as default. */
function azureStyle(o: Opts = {}): string {
  return `<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="${OVF}" xmlns:oe="${OVF}" xmlns:wa="${WA}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <wa:ProvisioningSection>
    <wa:Version>1.0</wa:Version>
    <LinuxProvisioningConfigurationSet xmlns="${WA}">
      <ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>
      <HostName>${o.host ?? 'vm-01'}</HostName>
      <UserName>${o.user ?? 'azureuser'}</UserName>
      ${o.password !== undefined ? `<UserPassword>${o.password}</UserPassword>` : ''}
      ${o.disable !== undefined ? `<DisableSshPasswordAuthentication>${o.disable}</DisableSshPasswordAuthentication>` : ''}
      ${o.custom !== undefined ? `<CustomData>${o.custom}</CustomData>` : ''}
      <SSH>${o.keys ?? ''}</SSH>
    </LinuxProvisioningConfigurationSet>
  </wa:ProvisioningSection>
  <wa:PlatformSettingsSection><wa:Version>1.0</wa:Version><wa:PlatformSettings>
    ${o.pga === null ? '' : `<wa:ProvisionGuestAgent>${o.pga ?? 'true'}</wa:ProvisionGuestAgent>`}
    <wa:PreprovisionedVm>false</wa:PreprovisionedVm>
  </wa:PlatformSettings></wa:PlatformSettingsSection>
</Environment>`;
}

test('Azure-style document: every field', () => {
  const keys = `<PublicKeys>
    <PublicKey><Fingerprint> eb0c0ab4 </Fingerprint><Path> $HOME/azureuser/.ssh/authorized_keys </Path><Value>ssh-ed25519 AAAAC3Nza me@x</Value></PublicKey>
    <PublicKey><Fingerprint>ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12</Fingerprint><Path>/home/azureuser/.ssh/authorized_keys</Path></PublicKey>
  </PublicKeys><KeyPairs><KeyPair><Fingerprint>cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34</Fingerprint><Path>$HOME/azureuser/.ssh/id_rsa</Path></KeyPair></KeyPairs>`;
  const o = parseOvf(azureStyle({ password: ' p@ss word ', disable: 'TRUE', keys, custom: 'ZWNobyBoaQ==', pga: 'False' }));
  assert.equal(o.version, '1.0');
  assert.equal(o.hostName, 'vm-01');
  assert.equal(o.userName, 'azureuser');
  assert.equal(o.userPassword, ' p@ss word '); // not trimmed
  assert.equal(o.disableSshPasswordAuthentication, true);
  assert.equal(o.customData, 'ZWNobyBoaQ==');
  assert.equal(o.provisionGuestAgent, false);
  assert.equal(o.preprovisionedVm, 'false');
  assert.deepEqual(o.publicKeys, [
    { path: '$HOME/azureuser/.ssh/authorized_keys', fingerprint: undefined, value: 'ssh-ed25519 AAAAC3Nza me@x' },
    { path: '/home/azureuser/.ssh/authorized_keys', fingerprint: 'AB12AB12AB12AB12AB12AB12AB12AB12AB12AB12', value: undefined },
  ]);
  assert.deepEqual(o.keyPairs, [{ path: '$HOME/azureuser/.ssh/id_rsa', fingerprint: 'CD34CD34CD34CD34CD34CD34CD34CD34CD34CD34' }]);
});

test('other prefix styles: oe:/wa: everywhere, custom prefixes, default namespace only where declared', () => {
  const prefixed = `<oe:Environment xmlns:oe="${OVF}" xmlns:azure="${WA}">
    <azure:ProvisioningSection><azure:Version>1.0</azure:Version>
      <azure:LinuxProvisioningConfigurationSet>
        <azure:HostName>h1</azure:HostName><azure:UserName>u1</azure:UserName>
        <azure:UserPassword><![CDATA[a<b&c]]></azure:UserPassword>
      </azure:LinuxProvisioningConfigurationSet></azure:ProvisioningSection></oe:Environment>`;
  const o = parseOvf(prefixed);
  assert.equal(o.hostName, 'h1');
  assert.equal(o.userName, 'u1');
  assert.equal(o.userPassword, 'a<b&c');
  assert.equal(o.disableSshPasswordAuthentication, false);
  assert.equal(o.provisionGuestAgent, true); // missing → true (D20)
  assert.deepEqual(o.publicKeys, []);
  // Same local names in the wrong namespace are not found.
  const wrongNs = prefixed.replace(`xmlns:azure="${WA}"`, 'xmlns:azure="urn:other"');
  assert.throws(() => parseOvf(wrongNs), /ProvisioningSection not found/);
});

test('DisableSshPasswordAuthentication: only "true" disables', () => {
  for (const [v, want] of [['true', true], ['True', true], ['false', false], ['yes', false], ['1', false]] as [string, boolean][]) {
    assert.equal(parseOvf(azureStyle({ disable: v })).disableSshPasswordAuthentication, want, v);
  }
  assert.equal(parseOvf(azureStyle()).disableSshPasswordAuthentication, false);
});

test('ProvisionGuestAgent: empty or missing → true, false (any case) → false', () => {
  assert.equal(parseOvf(azureStyle({ pga: '' })).provisionGuestAgent, true);
  assert.equal(parseOvf(azureStyle({ pga: null })).provisionGuestAgent, true);
  assert.equal(parseOvf(azureStyle({ pga: 'FALSE' })).provisionGuestAgent, false);
});

test('missing required elements and hostile names are refused', () => {
  assert.throws(() => parseOvf(`<Environment xmlns="urn:x"/>`), (e: Error) => e instanceof OvfError && /Environment not found/.test(e.message));
  assert.throws(() => parseOvf(azureStyle({ host: '' })), /HostName not found/);
  assert.throws(() => parseOvf(azureStyle({ user: '   ' })), /UserName not found/);
  for (const host of ['-oops', 'a;reboot', 'a b', 'vm_1', '$(id)']) assert.throws(() => parseOvf(azureStyle({ host })), /Invalid HostName/, host);
  for (const user of ['-r', 'root;x', 'a/b', 'x'.repeat(33), '..', 'bad user', 'ünï']) assert.throws(() => parseOvf(azureStyle({ user })), /Invalid UserName/, user);
  assert.equal(parseOvf(azureStyle({ host: ' vm.example.com ', user: ' a.b_c-d ' })).userName, 'a.b_c-d');
});

test('malformed XML gives an XmlError, not a crash', () => {
  assert.throws(() => parseOvf('not xml at all'), XmlError);
  assert.throws(() => parseOvf(azureStyle().replace('</Environment>', '')), XmlError);
  assert.throws(() => parseOvf(''), XmlError);
});

test('BOM, NUL bytes and junk before the declaration are tolerated', () => {
  const o = parseOvf(`\uFEFFjunk\0${azureStyle()}`);
  assert.equal(o.hostName, 'vm-01');
});

test('redactOvf replaces every UserPassword (any prefix, CDATA, multi-line) and keeps the rest parseable', () => {
  const doc = azureStyle({ password: '<![CDATA[s3cr3t\nline2 </UserPassword>]]>' })
    .replace('<ConfigurationSetType>', `<wa:UserPassword xmlns:wa="${WA}">other&amp;secret</wa:UserPassword><ConfigurationSetType>`);
  const red = redactOvf(doc);
  assert.ok(!red.includes('s3cr3t') && !red.includes('line2') && !red.includes('other'), red);
  assert.equal((red.match(/>\*<\/(?:\w+:)?UserPassword>/g) ?? []).length, 2);
  const o = parseOvf(red);
  assert.equal(o.userPassword, '*');
  assert.equal(o.hostName, 'vm-01');
  assert.throws(() => redactOvf('<a><b></a>'), XmlError);
});

test('Fingerprint: a path in a key without Value or in a key pair is refused; with a Value it is dropped (issue 10)', () => {
  for (const bad of ['../../../../etc/cron.d/evil', 'AB12', '/etc/shadow', 'EB0C0AB4B2D5FC35F2F0658D19F44C8283E2DD6/', '']) {
    if (!bad) continue;
    const pk = `<PublicKeys><PublicKey><Fingerprint>${bad}</Fingerprint><Path>/home/azureuser/.ssh/authorized_keys</Path></PublicKey></PublicKeys>`;
    assert.throws(() => parseOvf(azureStyle({ keys: pk })), /Invalid Fingerprint/, bad);
    const kp = `<KeyPairs><KeyPair><Fingerprint>${bad}</Fingerprint><Path>$HOME/azureuser/.ssh/id_rsa</Path></KeyPair></KeyPairs>`;
    assert.throws(() => parseOvf(azureStyle({ keys: kp })), /Invalid Fingerprint/, bad);
  }
  const withValue = `<PublicKeys><PublicKey><Fingerprint>../x</Fingerprint><Path>/home/azureuser/.ssh/authorized_keys</Path><Value>ssh-ed25519 AAAA</Value></PublicKey></PublicKeys>`;
  assert.equal(parseOvf(azureStyle({ keys: withValue })).publicKeys[0].fingerprint, undefined);
  const good = `<KeyPairs><KeyPair><Fingerprint>EB0C0AB4B2D5FC35F2F0658D19F44C8283E2DD62</Fingerprint><Path>$HOME/azureuser/.ssh/id_rsa</Path></KeyPair></KeyPairs>`;
  assert.equal(parseOvf(azureStyle({ keys: good })).keyPairs[0].fingerprint, 'EB0C0AB4B2D5FC35F2F0658D19F44C8283E2DD62');
});
