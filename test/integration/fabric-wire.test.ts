// The wire client against the fabric simulator on loopback (random ports).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as crypto from 'node:crypto';
import { startSimulator, type Simulator } from '../fabric/simulator';
import { defaultScenario, type Scenario } from '../fabric/scenario';
import { WireClient, ProtocolError } from '../../src/fabric/wire';
import { generateTransportPair } from '../../src/crypto/transport';
import { uploadStatusBlob, buildStatusJson } from '../../src/fabric/status';
import { ImdsClient } from '../../src/fabric/imds';
import { ResourceGoneError } from '../../src/core/retry';
import { testRoot, fastClock, LIB, type TestRoot } from './fabric-helpers';

const transport = generateTransportPair();

async function setup(mod?: (s: Scenario) => void, simOpts: { imdsPort?: number } = {}): Promise<{ sim: Simulator; root: TestRoot; client: WireClient }> {
  const sc = defaultScenario();
  mod?.(sc);
  const root = testRoot();
  const sim = await startSimulator(sc, { host: '127.0.0.1', port: 0, ...simOpts });
  const client = new WireClient({
    endpoint: { host: '127.0.0.1', port: sim.port }, hostFs: root.hostFs, libDir: LIB, transport,
    hostPluginPort: sim.hostPluginPort, clock: fastClock(), notReadyDelayMs: 5,
  });
  return { sim, root, client };
}

test('full goal state: documents and certificates saved under WALinuxAgent names; only changes refetched', async () => {
  const { sim, root, client } = await setup();
  try {
    await client.checkVersions();
    const { goalState, changed } = await client.updateGoalState(true);
    assert.equal(changed, true);
    assert.equal(goalState.ids.incarnation, '1');
    const files = fs.readdirSync(root.lib('.'));
    for (const f of ['GoalState.1.xml', 'HostingEnvironmentConfig.xml', 'SharedConfig.xml', 'ExtensionsConfig.1.xml', 'Certificates.xml', 'Certificates.p7m', 'Certificates.pem', 'Incarnation']) {
      assert.ok(files.includes(f), `${f} written`);
      assert.equal(fs.statSync(root.lib(f)).mode & 0o777, 0o600, f);
    }
    assert.equal(fs.readFileSync(root.lib('Incarnation'), 'utf8'), '1');
    const tenant = goalState.certificates[0];
    assert.equal(goalState.certificates.length, 1);
    assert.equal(tenant.hasPrivateKey, true);
    const crt = fs.readFileSync(root.lib(`${tenant.thumbprint}.crt`));
    assert.equal(crypto.createHash('sha1').update(Buffer.from(new crypto.X509Certificate(crt).raw)).digest('hex').toUpperCase(), tenant.thumbprint);
    assert.ok(fs.existsSync(root.lib(`${tenant.thumbprint}.prv`)));
    assert.equal(goalState.extensionsConfig?.statusUploadBlob?.type, 'BlockBlob');
    assert.ok(goalState.hostingEnv?.vmName);
    const certReq = sim.requests.find((r) => r.kind === 'certificates');
    assert.equal(certReq?.headers['x-ms-cipher-name'], 'AES128_CBC');
    assert.equal(certReq?.headers['x-ms-agent-name'], 'WALinuxAgent');
    assert.match(String(certReq?.headers['user-agent']), /^WALinuxAgent\/\d+\.\d+\.\d+\.\d+$/);
    assert.equal(certReq?.headers.connection, 'close');

    const before = { ...sim.summary().counts };
    const again = await client.updateGoalState();
    assert.equal(again.changed, false);
    const mid = sim.summary().counts;
    assert.equal(mid.goalstate, (before.goalstate ?? 0) + 1);
    assert.equal(mid.certificates, before.certificates, 'nothing refetched without a new incarnation');
    assert.equal(mid.extensionsConfig, before.extensionsConfig);

    sim.bumpIncarnation();
    const next = await client.updateGoalState();
    assert.equal(next.changed, true);
    assert.equal(next.goalState.ids.incarnation, '2');
    assert.ok(fs.existsSync(root.lib('GoalState.2.xml')) && fs.existsSync(root.lib('ExtensionsConfig.2.xml')));
    assert.equal(fs.readFileSync(root.lib('Incarnation'), 'utf8'), '2');
    assert.equal(sim.summary().counts.certificates, (before.certificates ?? 0) + 1);
    assert.deepEqual(sim.summary().failures, []);
  } finally { await sim.close(); }
});

test('certificates: AES128_CBC refused → DES_EDE3_CBC; both refused → goal state without certificates', async () => {
  const { sim, root, client } = await setup((s) => { s.faults = [{ kind: 'certificates', attempts: [1], status: 404 }]; });
  try {
    const { goalState } = await client.updateGoalState(true);
    assert.equal(goalState.certificatesOk, true);
    const ciphers = sim.requests.filter((r) => r.kind === 'certificates').map((r) => r.headers['x-ms-cipher-name']);
    assert.deepEqual(ciphers, ['AES128_CBC', 'DES_EDE3_CBC']);
    assert.ok(fs.existsSync(root.lib(`${goalState.certificates[0].thumbprint}.prv`)));
  } finally { await sim.close(); }
  const b = await setup((s) => { s.faults = [{ kind: 'certificates', status: 404 }]; });
  try {
    const { goalState } = await b.client.updateGoalState(true);
    assert.equal(goalState.certificatesOk, false);
    assert.deepEqual(goalState.certificates, []);
    assert.equal(goalState.ids.incarnation, '1');
  } finally { await b.sim.close(); }
});

test('goal state without RoleInstance is re-requested; transient 503/drops are retried; 410 surfaces', async () => {
  const noRole = (inc: number): string => `<?xml version="1.0" encoding="utf-8"?><GoalState><Incarnation>${inc}</Incarnation><Container><ContainerId>x</ContainerId></Container></GoalState>`;
  const { sim, client } = await setup((s) => {
    s.faults = [
      { kind: 'goalstate', attempts: [1, 2], status: 200, body: noRole(1) },
      { kind: 'goalstate', attempts: [3], status: 503, retryAfter: 0 },
      { kind: 'goalstate', attempts: [4], drop: true },
    ];
  });
  try {
    const { goalState } = await client.updateGoalState(true);
    assert.ok(goalState.ids.instanceId);
    assert.equal(sim.summary().counts.goalstate, 5);
  } finally { await sim.close(); }
  const never = await setup((s) => { s.faults = [{ kind: 'goalstate', status: 200, body: noRole(1) }]; });
  try {
    await assert.rejects(never.client.updateGoalState(true), ProtocolError);
    assert.equal(never.sim.summary().counts.goalstate, 6);
  } finally { await never.sim.close(); }
  const gone = await setup((s) => { s.faults = [{ kind: 'extensionsConfig', status: 410 }]; });
  try {
    await assert.rejects(gone.client.updateGoalState(true), ResourceGoneError);
    assert.equal(gone.client.goalState, undefined, 'a failed update holds nothing new');
  } finally { await gone.sim.close(); }
});

test('unsupported protocol version is refused', async () => {
  const { sim, client } = await setup((s) => {
    s.faults = [{ kind: 'versions', status: 200, body: '<Versions><Preferred><Version>2099-01-01</Version></Preferred></Versions>' }];
  });
  try { await assert.rejects(client.checkVersions(), ProtocolError); } finally { await sim.close(); }
});

for (const type of ['BlockBlob', 'PageBlob'] as const) {
  test(`status upload (${type}): host plugin first, direct when the host plugin fails`, async () => {
    const { sim, client } = await setup((s) => { s.statusBlobType = type; });
    try {
      await client.updateGoalState(true);
      const json = buildStatusJson({ now: new Date(), computerName: 'vm', osName: 'ubuntu', osVersion: '24.04' });
      assert.equal(await uploadStatusBlob(client, json), 'hostplugin');
      assert.deepEqual(sim.summary().latestStatus, JSON.parse(json));
    } finally { await sim.close(); }
    const b = await setup((s) => { s.statusBlobType = type; s.faults = [{ kind: 'hgStatus', status: 500 }]; });
    try {
      await b.client.updateGoalState(true);
      const json = buildStatusJson({ now: new Date(), computerName: 'vm2', osName: 'ubuntu', osVersion: '24.04' });
      assert.equal(await uploadStatusBlob(b.client, json), 'direct');
      assert.deepEqual(b.sim.summary().latestStatus, JSON.parse(json));
      assert.deepEqual(b.sim.summary().failures, []);
    } finally { await b.sim.close(); }
  });
}

test('status upload: stale container at the host plugin → goal state refreshed, round ends', async () => {
  const { sim, client } = await setup((s) => { s.faults = [{ kind: 'hgStatus', attempts: [1], status: 410 }]; });
  try {
    await client.updateGoalState(true);
    const n = sim.summary().counts.goalstate ?? 0;
    await assert.rejects(uploadStatusBlob(client, '{}'), ResourceGoneError);
    assert.equal(sim.summary().counts.goalstate, n + 1);
    assert.equal(sim.summary().counts.blob ?? 0, 0, 'no direct attempt after 410');
    assert.equal(await uploadStatusBlob(client, '{"a":1}'), 'hostplugin');
  } finally { await sim.close(); }
});

test('health and role properties posts reach the simulator in the exact shape', async () => {
  const { sim, client } = await setup();
  try {
    await client.updateGoalState(true);
    await client.postHealth({ state: 'NotReady', subStatus: 'Provisioning', description: 'Starting' });
    await client.postHealth({ state: 'Ready' });
    await client.postRoleProperties('SHA256abc');
    const s = sim.summary();
    assert.deepEqual(s.failures, []);
    assert.equal(s.readyCount, 1);
    assert.equal(s.notReady[0].subStatus, 'Provisioning');
    assert.equal(s.roleProperties.length, 1);
  } finally { await sim.close(); }
});

test('IMDS public keys: Metadata header, retries on 500, bounded attempts', async () => {
  const keys = [{ keyData: 'ssh-ed25519 AAAAC3Nza test', path: '/home/u/.ssh/authorized_keys' }];
  const { sim } = await setup((s) => { s.imdsPublicKeys = keys; s.faults = [{ kind: 'imds', attempts: [1], status: 500 }]; }, { imdsPort: 0 });
  try {
    const imds = new ImdsClient(`http://127.0.0.1:${sim.imdsPort}`, { clock: fastClock() });
    assert.deepEqual(await imds.getPublicKeys(), keys);
    const reqs = sim.requests.filter((r) => r.kind === 'imds');
    assert.equal(reqs.length, 2);
    assert.equal(reqs[1].headers.metadata, 'true');
    assert.match(reqs[1].path, /^\/metadata\/instance\/compute\/publicKeys\?api-version=2021-02-01$/);
  } finally { await sim.close(); }
  const bad = await setup((s) => { s.faults = [{ kind: 'imds', status: 500 }]; }, { imdsPort: 0 });
  try {
    await assert.rejects(new ImdsClient(`http://127.0.0.1:${bad.sim.imdsPort}`, { clock: fastClock(), maxAttempts: 3 }).getPublicKeys());
    assert.equal(bad.sim.requests.filter((r) => r.kind === 'imds').length, 3);
  } finally { await bad.sim.close(); }
});

test('host plugin unavailable → direct upload; the negative answer is remembered for a minute', async () => {
  const { sim, client } = await setup((s) => { s.faults = [{ kind: 'hgVersions', status: 500 }]; });
  try {
    await client.updateGoalState(true);
    assert.equal(await uploadStatusBlob(client, '{"n":1}'), 'direct');
    assert.equal(await uploadStatusBlob(client, '{"n":2}'), 'direct');
    assert.equal(sim.summary().counts.hgVersions, 1);
    assert.equal(sim.summary().counts.hgStatus ?? 0, 0);
    assert.deepEqual(sim.summary().latestStatus, { n: 2 });
  } finally { await sim.close(); }
});
