// Hostile and faulty fabric answers against the wire client and the link, on loopback (issue 10 items 1, 3, 6, 7).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { WireClient } from '../../src/fabric/wire';
import { generateTransportPair } from '../../src/crypto/transport';
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
