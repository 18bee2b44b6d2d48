// Hostile and faulty fabric answers against the wire client and the link, on loopback (issue 10 items 1, 3, 6, 7).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { WireClient, KEEP_INCARNATIONS, CERT_RETRY_BASE_MS } from '../../src/fabric/wire';
import { MAX_DOC_BYTES } from '../../src/fabric/documents';
import { generateTransportPair } from '../../src/crypto/transport';
import { startFabricLink } from '../../src/fabric/link';
import { log, memoryAppender, Level } from '../../src/core/log';
import { WarnThrottle } from '../../src/core/log-throttle';
import { realClock, type Clock } from '../../src/core/retry';
import { startSimulator } from '../fabric/simulator';
import { defaultScenario, type Scenario } from '../fabric/scenario';
import { testRoot, fastClock, LIB } from './fabric-helpers';

const transport = generateTransportPair();

/** A tiny wire server: answers each path (with query) from `routes`; unknown paths → 404. */
async function tinyServer(routes: Record<string, () => { status?: number; body: string | Buffer }>): Promise<{ port: number; hits: string[]; close: () => Promise<void> }> {
  const hits: string[] = [];
  const srv = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    const r = routes[req.url ?? ''];
    if (!r) { res.writeHead(404); res.end(); return; }
    const { status, body } = r();
    res.writeHead(status ?? 200, { 'Content-Type': 'text/xml' });
    res.end(body);
  });
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  const port = (srv.address() as AddressInfo).port;
  return { port, hits, close: () => new Promise((ok) => srv.close(() => ok())) };
}

const goalState = (inc: string, extra = ''): string => `<?xml version="1.0" encoding="utf-8"?><GoalState><Version>2010-12-15</Version>
<Incarnation>${inc}</Incarnation><Machine><ExpectedState>Started</ExpectedState></Machine><Container><ContainerId>c-1</ContainerId>
<RoleInstanceList><RoleInstance><InstanceId>i.vm</InstanceId><State>Started</State><Configuration>${extra}<ConfigName>cfg</ConfigName></Configuration>
</RoleInstance></RoleInstanceList></Container></GoalState>`;

test('a goal state whose Incarnation is a path is refused and nothing is written outside (or inside) Lib.Dir', async () => {
  const evil = '../../../../../etc/cron.d/evil';
  const srv = await tinyServer({ '/machine/?comp=goalstate': () => ({ body: goalState(evil) }) });
  const root = testRoot();
  try {
    const client = new WireClient({ endpoint: { host: '127.0.0.1', port: srv.port }, hostFs: root.hostFs, libDir: LIB, transport, clock: fastClock(), notReadyDelayMs: 1 });
    await assert.rejects(client.updateGoalState(true), /unsafe Incarnation/);
    assert.equal(fs.existsSync(path.join(root.dir, 'etc/cron.d')), false);
    assert.deepEqual(fs.readdirSync(root.lib('.')), [], 'nothing written');
    assert.equal(client.goalState, undefined);
  } finally { await srv.close(); }
});

test('WireServerEndpoint that is a directory, a FIFO or a symlink: ignored with a warning, discovery goes on, nothing blocks', () => {
  // in a child process: before the fix, opening a FIFO blocked the whole process (no writer), a directory threw
  const root = testRoot();
  const build = path.resolve(__dirname, '../../src');
  const ep = root.lib('WireServerEndpoint');
  const cases: [string, () => void][] = [
    ['directory', () => fs.mkdirSync(ep)],
    ['fifo', () => spawnSync('mkfifo', [ep])],
    ['symlink', () => { fs.writeFileSync(root.lib('target'), '10.1.2.3'); fs.symlinkSync(root.lib('target'), ep); }],
  ];
  for (const [kind, make] of cases) {
    fs.rmSync(ep, { recursive: true, force: true });
    make();
    const script = `
      const { SysRoot } = require(${JSON.stringify(build + '/core/sysroot')});
      const { HostFs } = require(${JSON.stringify(build + '/os/os')});
      const { discoverEndpoint, readCachedEndpoint } = require(${JSON.stringify(build + '/fabric/endpoint')});
      const fs = new HostFs(new SysRoot(${JSON.stringify(root.dir)}));
      const cached = readCachedEndpoint(fs, ${JSON.stringify(LIB)});
      const d = discoverEndpoint(fs, ${JSON.stringify(LIB)}, { method: 'static' });
      console.log(JSON.stringify({ cached: cached ?? null, source: d.source }));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.signal, null, `${kind}: the read did not block`);
    assert.equal(r.status, 0, `${kind}: ${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop() as string), { cached: null, source: 'default' }, kind);
  }
});

test('each fabric document is capped at its own size: an oversized goal state is refused, not buffered to 64 MiB', async () => {
  const big = goalState('1', `<Pad>${'x'.repeat(MAX_DOC_BYTES.goalState)}</Pad>`);
  const srv = await tinyServer({ '/machine/?comp=goalstate': () => ({ body: big }), '/?comp=versions': () => ({ body: `<Versions><Preferred><Version>2012-11-30</Version></Preferred><Pad>${'x'.repeat(MAX_DOC_BYTES.versions)}</Pad></Versions>` }) });
  const root = testRoot();
  try {
    const client = new WireClient({ endpoint: { host: '127.0.0.1', port: srv.port }, hostFs: root.hostFs, libDir: LIB, transport, clock: fastClock(1), notReadyDelayMs: 1 });
    await assert.rejects(client.updateGoalState(true), /larger than 1048576 bytes/);
    await assert.rejects(client.checkVersions(), /larger than 65536 bytes/);
  } finally { await srv.close(); }
});

async function simSetup(mod?: (s: Scenario) => void): Promise<{ sim: Awaited<ReturnType<typeof startSimulator>>; root: ReturnType<typeof testRoot>; sc: Scenario }> {
  const sc = defaultScenario();
  mod?.(sc);
  const sim = await startSimulator(sc, { host: '127.0.0.1', port: 0 });
  return { sim, root: testRoot(sim.port), sc };
}

test('a failed cache write (disk full) never keeps the link from connecting and Ready from being sent', async () => {
  const { sim, root } = await simSetup();
  const write = root.hostFs.write.bind(root.hostFs);
  root.hostFs.write = (abs, data, opts): void => {
    if (/\/(GoalState\.|HostingEnvironmentConfig|SharedConfig|ExtensionsConfig\.|Incarnation|WireServerEndpoint|Protocol)/.test(abs)) {
      throw Object.assign(new Error(`ENOSPC: no space left on device, write ${abs}`), { code: 'ENOSPC' });
    }
    write(abs, data, opts);
  };
  const link = startFabricLink(root.ctx, { hostPluginPort: sim.hostPluginPort, clock: fastClock(), connectRetryMs: 20, healthBaseMs: 10, healthCapMs: 40, notReadyDelayMs: 5 });
  try {
    const ids = await link.connected();
    assert.equal(ids.incarnation, '1');
    link.reportHealth({ state: 'Ready' });
    await link.healthAccepted();
    assert.equal(sim.summary().readyCount, 1);
    assert.equal(fs.existsSync(root.lib('GoalState.1.xml')), false, 'the write really failed');
    sim.bumpIncarnation();
    const r = await link.pollOnce({ status: false });
    assert.equal(r.changed, true, 'later incarnations still processed');
  } finally { link.close(); await sim.close(); }
});

test('certificates that failed are asked again on a later poll of the same incarnation, with backoff', async () => {
  // both ciphers refused on the first fetch (attempts 1, 2), and on the first retry (3, 4); the second retry works
  const { sim, root } = await simSetup((s) => { s.faults = [{ kind: 'certificates', attempts: [1, 2, 3, 4], status: 404 }]; });
  let now = 1_000_000;
  const clock: Clock = { now: () => now, random: () => 1, sleep: (ms, signal) => realClock.sleep(Math.min(ms, 5), signal) };
  try {
    const client = new WireClient({ endpoint: { host: '127.0.0.1', port: sim.port }, hostFs: root.hostFs, libDir: LIB, transport, hostPluginPort: sim.hostPluginPort, clock, notReadyDelayMs: 1 });
    const first = await client.updateGoalState(true);
    assert.equal(first.goalState.certificatesOk, false);
    const certs = (): number => sim.summary().counts.certificates ?? 0;
    assert.equal(certs(), 2);
    await client.updateGoalState();
    assert.equal(certs(), 2, 'not before the backoff ends');
    now += CERT_RETRY_BASE_MS;
    const second = await client.updateGoalState();
    assert.equal(certs(), 4, 'retried once the backoff ended');
    assert.equal(second.goalState.certificatesOk, false);
    now += CERT_RETRY_BASE_MS;
    await client.updateGoalState();
    assert.equal(certs(), 4, 'the backoff doubled');
    now += CERT_RETRY_BASE_MS;
    const third = await client.updateGoalState();
    assert.equal(certs(), 5);
    assert.equal(third.changed, true, 'the arrival of the certificates is announced');
    assert.equal(third.goalState.certificatesOk, true);
    const tp = third.goalState.certificates[0].thumbprint;
    assert.ok(fs.existsSync(root.lib(`${tp}.prv`)));
    await client.updateGoalState();
    assert.equal(certs(), 5, 'no more fetches once they arrived');
  } finally { await sim.close(); }
});

test('per-incarnation documents are pruned to the last KEEP_INCARNATIONS', async () => {
  const { sim, root } = await simSetup();
  try {
    const old = Date.now() / 1000 - 3600;
    for (let i = 100; i < 100 + KEEP_INCARNATIONS + 10; i++) {
      for (const n of [`GoalState.${i}.xml`, `ExtensionsConfig.${i}.xml`]) {
        fs.writeFileSync(root.lib(n), '<x/>');
        fs.utimesSync(root.lib(n), old + i, old + i);
      }
    }
    fs.writeFileSync(root.lib('GoalState.xml.bak'), 'kept: not ours');
    const client = new WireClient({ endpoint: { host: '127.0.0.1', port: sim.port }, hostFs: root.hostFs, libDir: LIB, transport, hostPluginPort: sim.hostPluginPort, clock: fastClock(), notReadyDelayMs: 1 });
    await client.updateGoalState(true);
    const files = fs.readdirSync(root.lib('.'));
    const gs = files.filter((f) => /^GoalState\..+\.xml$/.test(f));
    const ec = files.filter((f) => /^ExtensionsConfig\..+\.xml$/.test(f));
    assert.equal(gs.length, KEEP_INCARNATIONS);
    assert.equal(ec.length, KEEP_INCARNATIONS);
    assert.ok(gs.includes('GoalState.1.xml') && ec.includes('ExtensionsConfig.1.xml'), 'the current one is kept');
    assert.ok(gs.includes(`GoalState.${100 + KEEP_INCARNATIONS + 9}.xml`) && !gs.includes('GoalState.100.xml'), 'the newest are kept');
    assert.ok(files.includes('GoalState.xml.bak'));
  } finally { await sim.close(); }
});

test('WarnThrottle: the first 3 failures warn, then one summary every 6 h; a success resets', () => {
  let now = 0;
  const t = new WarnThrottle(() => now);
  const warned: (string | undefined)[] = [];
  for (let i = 0; i < 10; i++) { warned.push(t.failure('x')); now += 6_000; }
  assert.deepEqual(warned.map((w) => w !== undefined), [true, true, true, false, false, false, false, false, false, false]);
  now += 6 * 3600_000;
  assert.match(t.failure('x') ?? '', /still failing: 8 failures/);
  assert.equal(t.failure('x'), undefined);
  assert.equal(t.success(), 12);
  assert.equal(t.failure('x'), 'x');
});

test('a poll that keeps failing warns 3 times, not at every poll', async () => {
  const { sim, root, sc } = await simSetup();
  const mem = memoryAppender(Level.WARNING);
  const link = startFabricLink(root.ctx, { hostPluginPort: sim.hostPluginPort, clock: fastClock(1), connectRetryMs: 20, notReadyDelayMs: 1, requestBudgetMs: 50 });
  try {
    await link.connected();
    log.addAppender(mem);
    sc.faults.push({ kind: 'goalstate', status: 500 });
    for (let i = 0; i < 8; i++) await link.pollOnce({ status: false });
    assert.equal(mem.lines.filter((l) => l.includes('Goal state update failed')).length, 3, mem.lines.join(''));
  } finally { log.removeAppender(mem); link.close(); await sim.close(); }
});
