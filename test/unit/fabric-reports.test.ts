import { test } from 'node:test';
import assert from 'node:assert/strict';
import { healthXml, rolePropertiesXml, escapeTruncated, MAX_DESCRIPTION_BYTES } from '../../src/fabric/reports';
import { buildStatusJson, toJson, RawJson } from '../../src/fabric/status';
import { parseXml, find, childText, attr } from '../../src/core/xml';
import { parseHealthStrict } from './fabric-reports-helper';
import { AGENT_VERSION } from '../../src/version';

const ids = { incarnation: '3', containerId: '5d2c0c3e-0000-4000-8000-000000000001', instanceId: '7f3a9b2c.myvm', configName: 'c' };

test('Ready health report is exactly the §2.7 document', () => {
  assert.equal(healthXml(ids, { state: 'Ready' }),
    '<?xml version="1.0" encoding="utf-8"?><Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">' +
    '<GoalStateIncarnation>3</GoalStateIncarnation><Container><ContainerId>5d2c0c3e-0000-4000-8000-000000000001</ContainerId>' +
    '<RoleInstanceList><Role><InstanceId>7f3a9b2c.myvm</InstanceId><Health><State>Ready</State></Health></Role></RoleInstanceList>' +
    '</Container></Health>');
});

test('NotReady report carries escaped details; description truncated to 3686 escaped UTF-8 bytes', () => {
  const xml = healthXml(ids, { state: 'NotReady', subStatus: 'ProvisioningFailed', description: 'a < b & c > "d"' });
  const h = parseHealthStrict(xml);
  assert.equal(h.state, 'NotReady');
  assert.equal(h.subStatus, 'ProvisioningFailed');
  assert.equal(h.description, 'a < b & c > "d"');
  const long = '&'.repeat(1000) + 'é'.repeat(2000) + '😀'.repeat(500);
  const cut = escapeTruncated(long);
  assert.ok(Buffer.byteLength(cut) <= MAX_DESCRIPTION_BYTES);
  assert.ok(Buffer.byteLength(cut) > MAX_DESCRIPTION_BYTES - 4);
  assert.ok(!/&(?!amp;)/.test(cut), 'never cut inside an escape');
  assert.ok(!cut.includes('\uFFFD'));
  const parsed = parseHealthStrict(healthXml(ids, { state: 'NotReady', subStatus: 'x', description: long }));
  assert.ok(long.startsWith(parsed.description ?? ''));
  assert.equal(escapeTruncated('a&b', 6), 'a&amp;');
  assert.equal(escapeTruncated('a&b', 5), 'a');
});

test('role properties document (§2.8)', () => {
  const xml = rolePropertiesXml(ids, 'SHA256Qm9n+/"x');
  const root = parseXml(xml, 'rp');
  assert.equal(root.local, 'RoleProperties');
  assert.equal(childText(root, 'ContainerId'), ids.containerId);
  assert.equal(childText(find(root, 'RoleInstance'), 'Id'), ids.instanceId);
  const p = find(root, 'Property');
  assert.equal(attr(p, 'name'), 'CertificateThumbprint');
  assert.equal(attr(p, 'value'), 'SHA256Qm9n+/"x');
});

test('status JSON: HEAD shape, literal 1.0, our version, no update status, no features by default', () => {
  const now = new Date('2026-01-15T10:20:30.123Z');
  const json = buildStatusJson({
    now, computerName: 'vm', osName: 'ubuntu', osVersion: '24.04',
    handlers: [{
      handlerName: 'Pub.Ext', handlerVersion: '1.0', status: 'Ready', code: 0, message: 'Plugin enabled',
      runtimeSettings: { sequenceNumber: 2, timestamp: now, status: { name: 'Pub.Ext', operation: 'Enable', status: 'success', code: 0, formattedMessage: { lang: 'en-US', message: 'ok' } } },
    }],
    goalState: { inSvdSeqNo: '3', status: 'Success', code: 0, message: 'GoalState executed successfully', finished: now },
  });
  assert.match(json, /"settingsStatus":\{"status":\{[^}]*\}[^}]*\},"version":1\.0,"timestampUTC":"2026-01-15T10:20:30Z"\}/);
  const v = JSON.parse(json);
  assert.equal(v.version, '1.1');
  assert.equal(v.timestampUTC, '2026-01-15T10:20:30Z');
  assert.deepEqual(v.aggregateStatus.guestAgentStatus, { version: AGENT_VERSION, status: 'Ready', formattedMessage: { lang: 'en-US', message: 'Guest Agent is running' } });
  assert.equal(v.aggregateStatus.handlerAggregateStatus[0].useExactVersion, true);
  assert.equal(v.aggregateStatus.handlerAggregateStatus[0].runtimeSettingsStatus.sequenceNumber, 2);
  assert.equal(v.aggregateStatus.handlerAggregateStatus[0].runtimeSettingsStatus.settingsStatus.status.substatus, undefined);
  assert.equal(v.aggregateStatus.vmArtifactsAggregateStatus.goalStateAggregateStatus.inSvdSeqNo, '3');
  assert.deepEqual(v.guestOSInfo, { computerName: 'vm', osName: 'ubuntu', osVersion: '24.04', version: AGENT_VERSION });
  assert.equal(v.supportedFeatures, undefined);
  const bare = JSON.parse(buildStatusJson({ now, computerName: 'vm', osName: 'x', osVersion: '1' }));
  assert.deepEqual(bare.aggregateStatus.handlerAggregateStatus, []);
  assert.equal(bare.aggregateStatus.vmArtifactsAggregateStatus, undefined);
  assert.equal(toJson({ a: new RawJson('1.0'), b: undefined, c: [1, 'x'] }), '{"a":1.0,"c":[1,"x"]}');
});

test('characters XML 1.0 forbids (e.g. ANSI escapes in command output) are dropped from the report text', () => {
  const description = 'Failed to provision: useradd: \u001b[31mbad\u001b[0m\u0000 tab\there\nnext \uD800 \uFFFF 😀';
  const xml = healthXml(ids, { state: 'NotReady', subStatus: 'Provisioning\u0007Failed', description });
  assert.ok(!/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(xml), 'no forbidden control characters');
  assert.ok(!/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/.test(xml), 'no lone surrogates');
  const h = parseHealthStrict(xml);
  assert.equal(h.subStatus, 'ProvisioningFailed');
  assert.equal(h.description, 'Failed to provision: useradd: [31mbad[0m tab\there\nnext   😀');
});

test('status JSON: SAS signatures are redacted from every formattedMessage (§4.8)', () => {
  const url = 'https://acct.blob.core.windows.net/c/x.zip?sv=2018-03-28&sr=b&sig=SeCrEtSiGnAtUrE%3D&se=2026';
  const now = new Date('2026-01-15T10:20:30Z');
  const json = buildStatusJson({
    now, computerName: 'vm', osName: 'ubuntu', osVersion: '24.04',
    handlers: [{
      handlerName: 'Pub.Ext', handlerVersion: '1.0', status: 'NotReady', code: 1, message: `Download of ${url} failed`,
      runtimeSettings: { sequenceNumber: 0, timestamp: now, status: { status: 'error', code: 1, formattedMessage: { lang: 'en-US', message: `get ${url}` },
        substatus: [{ name: 'StdErr', status: 'error', code: 1, formattedMessage: { lang: 'en-US', message: `curl ${url}` } }] } },
    }],
    goalState: { inSvdSeqNo: '1', status: 'Failed', code: -1, message: `failed: ${url}`, finished: now },
  });
  assert.ok(!json.includes('SeCrEtSiGnAtUrE'), json);
  const v = JSON.parse(json);
  const h = v.aggregateStatus.handlerAggregateStatus[0];
  assert.match(h.formattedMessage.message, /&sig=\*{5}&se=2026 failed$/);
  assert.equal(h.runtimeSettingsStatus.settingsStatus.status.substatus[0].name, 'StdErr');
  assert.match(h.runtimeSettingsStatus.settingsStatus.status.substatus[0].formattedMessage.message, /^curl https:\/\/acct/);
});
