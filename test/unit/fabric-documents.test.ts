import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseVersions, supportsWireVersion, parseGoalState, parseHostingEnv, parseSharedConfig, parseCertificatesDoc,
  parseExtensionsConfig, DocumentError,
} from '../../src/fabric/documents';
import { XmlError } from '../../src/core/xml';

test('versions: 2012-11-30 accepted as Preferred only, as Supported only; refused otherwise', () => {
  const pref = parseVersions('<?xml version="1.0"?><Versions><Preferred><Version>2012-11-30</Version></Preferred><Supported><Version>2010-12-15</Version></Supported></Versions>');
  assert.equal(pref.preferred, '2012-11-30');
  assert.deepEqual(pref.supported, ['2010-12-15']);
  assert.ok(supportsWireVersion(pref));
  const sup = parseVersions('<Versions><Preferred><Version>2015-01-01</Version></Preferred><Supported><Version>2010-12-15</Version><Version>2012-11-30</Version></Supported></Versions>');
  assert.ok(supportsWireVersion(sup));
  assert.ok(!supportsWireVersion(parseVersions('<Versions><Supported><Version>2010-12-15</Version></Supported></Versions>')));
});

const GS = (roleInstance: string, extra = ''): string => `\uFEFF<?xml version="1.0" encoding="utf-8"?>
<GoalState xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <Version>2010-12-15</Version>
  <Incarnation>7</Incarnation>
  <Machine><ExpectedState>Started</ExpectedState><LBProbePorts><Port>16001</Port><Port>x</Port></LBProbePorts></Machine>
  <Container>
    <ContainerId>c6d5526c-0000-4000-8000-000000000001</ContainerId>
    ${roleInstance}
    ${extra}
  </Container>
</GoalState>`;
const RI = `<RoleInstanceList><RoleInstance><InstanceId>dep.vm</InstanceId><State>Started</State><Configuration>
  <HostingEnvironmentConfig>http://h/machine/a?comp=config&amp;type=hostingEnvironmentConfig&amp;incarnation=7</HostingEnvironmentConfig>
  <SharedConfig>http://h/machine/a?comp=config&amp;type=sharedConfig&amp;incarnation=7</SharedConfig>
  <ExtensionsConfig>http://h/machine/a?comp=config&amp;type=extensionsConfig&amp;incarnation=7</ExtensionsConfig>
  <FullConfig>http://h/x</FullConfig>
  <Certificates>http://h/machine/a?comp=certificates&amp;incarnation=7</Certificates>
  <ConfigName>dep.0.dep.1.vm.1.xml</ConfigName></Configuration></RoleInstance></RoleInstanceList>`;

test('goal state: ids, URLs verbatim with entities decoded, LB probe ports, BOM tolerated', () => {
  const g = parseGoalState(GS(RI, '<RemoteAccessInfo>http://h/ra</RemoteAccessInfo><NewElement/>'));
  assert.equal(g.incarnation, '7');
  assert.equal(g.containerId, 'c6d5526c-0000-4000-8000-000000000001');
  assert.equal(g.roleInstanceId, 'dep.vm');
  assert.equal(g.configName, 'dep.0.dep.1.vm.1.xml');
  assert.equal(g.hostingEnvUri, 'http://h/machine/a?comp=config&type=hostingEnvironmentConfig&incarnation=7');
  assert.equal(g.certificatesUri, 'http://h/machine/a?comp=certificates&incarnation=7');
  assert.equal(g.extensionsConfigUri, 'http://h/machine/a?comp=config&type=extensionsConfig&incarnation=7');
  assert.equal(g.remoteAccessUri, 'http://h/ra');
  assert.deepEqual(g.lbProbePorts, [16001]);
});

test('goal state: no RoleInstance → not ready; no ExtensionsConfig/Certificates → absent; missing ids → error', () => {
  const noRi = parseGoalState(GS(''));
  assert.equal(noRi.roleInstanceId, undefined);
  const noExt = parseGoalState(GS(RI.replace(/<ExtensionsConfig>.*<\/ExtensionsConfig>/, '').replace(/<Certificates>.*<\/Certificates>/, '')));
  assert.equal(noExt.extensionsConfigUri, undefined);
  assert.equal(noExt.certificatesUri, undefined);
  assert.throws(() => parseGoalState('<GoalState><Container><ContainerId>x</ContainerId></Container></GoalState>'), DocumentError);
  assert.throws(() => parseGoalState('<GoalState><Incarnation>1</Incarnation></GoalState>'), DocumentError);
  assert.throws(() => parseGoalState('<GoalState><Incarnation>1</Incarnation>'), XmlError);
});

test('hosting environment and shared config values', () => {
  const he = parseHostingEnv('<HostingEnvironmentConfig version="1.0.0.0"><Deployment name="d1" guid="{g}" incarnation="0"/><Incarnation number="1" instance="_vm" guid="{g}"/><Role guid="{g}" name="_role" settleTimeSeconds="0"/></HostingEnvironmentConfig>');
  assert.deepEqual(he, { vmName: '_vm', roleName: '_role', deploymentName: 'd1' });
  const sc = parseSharedConfig('<SharedConfig><Incarnation number="1" instance="me"/><Instances><Instance id="other" address="10.0.0.9"/><Instance id="me" address="10.0.0.4" rdmaIPv4Address="172.16.1.2" rdmaMacAddress="00:15:5d:33:ff:01"/></Instances></SharedConfig>');
  assert.equal(sc.address, '10.0.0.4');
  assert.equal(sc.rdmaIPv4Address, '172.16.1.2');
  assert.equal(sc.rdmaMacAddress, '00:15:5d:33:ff:01');
});

test('certificates document: data decoded across line breaks; no Data; foreign Format ignored; bad base64', () => {
  const d = parseCertificatesDoc('<CertificateFile><Version>2012-11-30</Version><Incarnation>3</Incarnation><Format>Pkcs7BlobWithPfxContents</Format><Data>AAEC\nAwQF\r\nBg==</Data></CertificateFile>');
  assert.equal(d.incarnation, '3');
  assert.deepEqual(d.data, Buffer.from([0, 1, 2, 3, 4, 5, 6]));
  assert.equal(parseCertificatesDoc('<CertificateFile><Incarnation>3</Incarnation></CertificateFile>').data, undefined);
  assert.equal(parseCertificatesDoc('<CertificateFile><Format>Other</Format><Data>AAEC</Data></CertificateFile>').data, undefined);
  assert.ok(parseCertificatesDoc('<CertificateFile><Format></Format><Data>AAEC</Data></CertificateFile>').data);
  assert.throws(() => parseCertificatesDoc('<CertificateFile><Data>not*base64</Data></CertificateFile>'), DocumentError);
});

test('extensions config: status blob (URL verbatim, type default), plugins, settings, artifacts profile', () => {
  const x = parseExtensionsConfig(`<Extensions version="1.0.0.0" goalStateIncarnation="3">
  <GuestAgentExtension><GAFamilies><GAFamily><Name>Prod</Name><Version>2.15.0.1</Version><Uris><Uri>https://s/m.xml</Uri></Uris></GAFamily></GAFamilies></GuestAgentExtension>
  <RequiredFeatures><RequiredFeature><Name>MultipleExtensionsPerHandler</Name></RequiredFeature></RequiredFeatures>
  <StatusUploadBlob statusBlobType="PageBlob">https://acct.blob/$system/vm.status?sv=1&amp;sr=b&amp;sig=x%2By</StatusUploadBlob>
  <Plugins><Plugin name="Pub.Ext" version="2.1.10" state="enabled" location="https://a/m.xml" failoverlocation="https://b/m.xml" autoUpgrade="true">
    <additionalLocations><additionalLocation>https://c/m.xml</additionalLocation></additionalLocations></Plugin>
    <Plugin name="Pub.Other" version="1.0" state="uninstall" location="https://d/m.xml"/></Plugins>
  <PluginSettings><Plugin name="Pub.Ext" version="2.1.10"><DependsOn dependencyLevel="1"><DependsOnExtension handler="Pub.Dep"/></DependsOn>
    <RuntimeSettings seqNo="2">{"runtimeSettings":[{"handlerSettings":{"publicSettings":{"a":"&lt;b&gt;"}}}]}</RuntimeSettings></Plugin></PluginSettings>
  <InVMArtifactsProfileBlob>https://acct.blob/$system/vm.vmSettings?sv=1&amp;sig=abc</InVMArtifactsProfileBlob>
  <InVMGoalStateMetaData inSvdSeqNo="3" createdOnTicks="638700000000000000" activityId="a" correlationId="c"/>
</Extensions>`);
  assert.deepEqual(x.statusUploadBlob, { url: 'https://acct.blob/$system/vm.status?sv=1&sr=b&sig=x%2By', type: 'PageBlob' });
  assert.equal(x.artifactsProfileBlob, 'https://acct.blob/$system/vm.vmSettings?sv=1&sig=abc');
  assert.deepEqual(x.plugins.map((p) => [p.name, p.version, p.state, p.manifestUris]), [
    ['Pub.Ext', '2.1.10', 'enabled', ['https://a/m.xml', 'https://b/m.xml', 'https://c/m.xml']],
    ['Pub.Other', '1.0', 'uninstall', ['https://d/m.xml']],
  ]);
  assert.equal(x.plugins[0].attrs.autoUpgrade, 'true');
  assert.equal(x.pluginSettings[0].runtimeSettings[0].seqNo, '2');
  assert.deepEqual(JSON.parse(x.pluginSettings[0].runtimeSettings[0].json).runtimeSettings[0].handlerSettings.publicSettings, { a: '<b>' });
  assert.equal(x.pluginSettings[0].dependencyLevel, '1');
  assert.deepEqual(x.pluginSettings[0].dependsOn, [{ handler: 'Pub.Dep', extension: '' }]);
  assert.deepEqual(x.requiredFeatures, ['MultipleExtensionsPerHandler']);
  assert.deepEqual(x.gaFamilies, [{ name: 'Prod', version: '2.15.0.1', uris: ['https://s/m.xml'] }]);
  assert.equal(x.inSvdSeqNo, '3');
  const y = parseExtensionsConfig('<Extensions><StatusUploadBlob statusBlobType="Weird">https://s/b</StatusUploadBlob></Extensions>');
  assert.equal(y.statusUploadBlob?.type, 'BlockBlob');
  assert.equal(parseExtensionsConfig('<Extensions/>').statusUploadBlob, undefined);
});
