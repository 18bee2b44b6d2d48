// The FabricLink (background connect, health reports D6, role properties D5, polling) against the simulator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { startSimulator, type Simulator } from '../fabric/simulator';
import { defaultScenario, type Scenario } from '../fabric/scenario';
import { startFabricLink, type FabricLinkHandle, type FabricLinkOptions } from '../../src/fabric/link';
import type { GoalState } from '../../src/fabric/wire';
import { testRoot, fastClock, type TestRoot } from './fabric-helpers';

async function setup(mod?: (s: Scenario) => void, opts: FabricLinkOptions = {}): Promise<{ sim: Simulator; root: TestRoot; link: FabricLinkHandle }> {
  const sc = defaultScenario();
  mod?.(sc);
  const sim = await startSimulator(sc, { host: '127.0.0.1', port: 0 });
  const root = testRoot(sim.port);
  const link = startFabricLink(root.ctx, {
    hostPluginPort: sim.hostPluginPort, clock: fastClock(), connectRetryMs: 20, healthBaseMs: 10, healthCapMs: 40, notReadyDelayMs: 5, ...opts,
  });
  return { sim, root, link };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_r, rej) => { timer = setTimeout(() => rej(new Error(`${what}: timed out`)), ms); })]);
  } finally { clearTimeout(timer); }
}

test('connects in the background; endpoint, transport pair and certificates on disk; Ready then role properties', async () => {
  const { sim, root, link } = await setup();
  try {
    assert.equal(link.isConnected, false, 'startFabricLink returns before connecting');
    link.reportHealth({ state: 'NotReady', subStatus: 'Provisioning', description: 'Starting' });
    const ids = await withTimeout(link.connected(), 10_000, 'connected');
    assert.equal(link.isConnected, true);
    assert.equal(ids.incarnation, '1');
    assert.equal(fs.readFileSync(root.lib('WireServerEndpoint'), 'utf8'), `127.0.0.1:${sim.port}`);
    assert.equal(fs.readFileSync(root.lib('Protocol'), 'utf8'), 'WireProtocol');
    for (const f of ['TransportPrivate.pem', 'TransportCert.pem']) assert.equal(fs.existsSync(root.lib(f)), false, `${f}: the transport pair stays in memory`);
    const tp = link.goalState?.certificates[0]?.thumbprint;
    assert.ok(tp && fs.existsSync(root.lib(`${tp}.crt`)) && fs.existsSync(root.lib(`${tp}.prv`)));
    await withTimeout(link.healthAccepted(), 10_000, 'NotReady accepted');
    link.reportRoleProperties('SHA256abcdef');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(sim.summary().roleProperties.length, 0, 'role properties wait for Ready (D5)');
    link.reportHealth({ state: 'Ready' });
    await withTimeout(link.healthAccepted(), 10_000, 'Ready accepted');
    await withTimeout(sim.waitFor((s) => s.roleProperties.length === 1, 5000), 6000, 'role properties');
    const s = sim.summary();
    assert.equal(s.notReady.length, 1);
    assert.equal(s.readyCount, 1);
    assert.ok((s.readyAt ?? 0) <= s.roleProperties[0].at);
    assert.deepEqual(s.failures, []);
  } finally { link.close(); await sim.close(); }
});

test('a newer report replaces a pending one: only Ready is sent when it was queued before connecting', async () => {
  const { sim, link } = await setup((s) => { s.faults = [{ kind: 'versions', attempts: [1, 2, 3, 4, 5, 6], status: 500 }]; });
  try {
    link.reportHealth({ state: 'NotReady', subStatus: 'Provisioning', description: 'Starting' });
    link.reportHealth({ state: 'Ready' });
    await withTimeout(link.healthAccepted(), 15_000, 'Ready accepted');
    const s = sim.summary();
    assert.equal(s.notReady.length, 0);
    assert.equal(s.readyCount, 1);
    assert.ok((s.counts.versions ?? 0) >= 7, 'the first connection attempt failed and was repeated');
  } finally { link.close(); await sim.close(); }
});

test('health retries with backoff on 503/drops, and refreshes the goal state after 410', async () => {
  const { sim, link } = await setup((s) => {
    s.faults = [
      { kind: 'health', attempts: [1], status: 503 },
      { kind: 'health', attempts: [2], drop: true },
      { kind: 'health', attempts: [3], status: 410 },
    ];
  });
  try {
    await withTimeout(link.connected(), 10_000, 'connected');
    const gsBefore = sim.summary().counts.goalstate ?? 0;
    sim.bumpIncarnation();
    link.reportHealth({ state: 'Ready' });
    await withTimeout(link.healthAccepted(), 15_000, 'Ready accepted');
    const s = sim.summary();
    assert.equal(s.counts.health, 4);
    assert.ok((s.counts.goalstate ?? 0) > gsBefore, 'goal state re-read after 410');
    assert.equal(s.healthReports[0].incarnation, '2', 'report rebuilt with the refreshed incarnation');
  } finally { link.close(); await sim.close(); }
});

test('pollOnce: new incarnation → documents refetched, listeners told, status uploaded', async () => {
  const { sim, root, link } = await setup();
  try {
    assert.deepEqual(await link.pollOnce(), { connected: false, changed: false });
    await withTimeout(link.connected(), 10_000, 'connected');
    const seen: GoalState[] = [];
    link.onGoalState((gs) => seen.push(gs));
    const p1 = await link.pollOnce();
    assert.equal(p1.changed, false);
    assert.equal(p1.status, 'hostplugin');
    const status = sim.summary().latestStatus as { version: string; guestOSInfo: { computerName: string; osName: string } };
    assert.equal(status.version, '1.1');
    assert.equal(status.guestOSInfo.computerName, 'testvm');
    assert.equal(status.guestOSInfo.osName, 'ubuntu');
    sim.bumpIncarnation();
    const p2 = await link.pollOnce({ status: '{"custom":true}' });
    assert.equal(p2.changed, true);
    assert.equal(p2.goalState?.ids.incarnation, '2');
    assert.equal(seen.length, 1);
    assert.ok(fs.existsSync(root.lib('GoalState.2.xml')));
    assert.deepEqual(sim.summary().latestStatus, { custom: true });
    sim.setScenario({ ...defaultScenario(), faults: [{ kind: 'goalstate', status: 200, body: '<GoalState><Incarn' }] });
    const p3 = await link.pollOnce({ status: false });
    assert.match(p3.error ?? '', /goal state/);
    assert.equal(p3.goalState?.ids.incarnation, '2', 'previous goal state stays in force');
    assert.equal(p3.status, 'skipped');
  } finally { link.close(); await sim.close(); }
});

test('an unreachable fabric keeps retrying without blocking; close() rejects the waiters', async () => {
  const root = testRoot(1); // port 1 on loopback: connection refused
  // cachedEndpointAttempts: never fall back to discovery here, which could name 168.63.129.16
  const link = startFabricLink(root.ctx, { clock: fastClock(), connectRetryMs: 10, cachedEndpointAttempts: Infinity });
  link.reportHealth({ state: 'Ready' });
  const accepted = link.healthAccepted();
  const connected = link.connected();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(link.isConnected, false);
  link.close();
  await assert.rejects(connected, /closed/);
  await assert.rejects(accepted, /closed/);
  assert.equal(fs.readFileSync(root.lib('WireServerEndpoint'), 'utf8'), '127.0.0.1:1', 'the test endpoint is never replaced');
});
