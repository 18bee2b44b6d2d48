/**
 * Cost of installing one extension package (extensions.md §4.2–4.4): the fabric simulator runs in a child process
 * (its CPU and memory are not counted) serving a package of N MiB (half random stored data, half compressible
 * deflated text); this process downloads it (streamed to `.part`), extracts it safely and installs it. Prints wall
 * time, CPU, and the growth of this process's peak RSS over its RSS before the install (the agent's own memory while
 * an extension is set up).
 *   node build/test/bench/ext-download.js [MiB=64]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { defaultScenario } from '../fabric/scenario';
import { buildZip } from '../fabric/zip';
import { fakeHandlerManifest } from '../fabric/fake-extension';
import { testRoot, LIB } from '../integration/fabric-helpers';
import { WireClient } from '../../src/fabric/wire';
import { generateTransportPair } from '../../src/crypto/transport';
import { fetchManifest, installPackage } from '../../src/extensions/fetch';

function peakRssKiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function main(): Promise<void> {
  const mib = Number(process.argv[2] ?? 64);
  const name = 'Bench.Ext';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-extbench-'));
  const half = Math.floor((mib * 1024 * 1024) / 2);
  let zip: Buffer | undefined = buildZip([
    { name: 'HandlerManifest.json', data: fakeHandlerManifest() },
    { name: 'bin/random.bin', data: randomBytes(half), method: 0 },
    { name: 'lib/text.txt', data: Buffer.alloc(half, 'all work and no play makes jack a dull boy\n') },
  ]);
  const sc = defaultScenario();
  sc.certificates = [];
  sc.publicKeys = sc.publicKeys.filter((k) => !k.fingerprint);
  sc.extensions = [{ name, version: '1.0.0', state: 'enabled', seqNo: 0 }];
  sc.extensionPackages = [{ name, version: '1.0.0', zipBase64: zip.toString('base64') }];
  const zipMiB = zip.length / 1048576;
  zip = undefined;
  const port = 20000 + Math.floor(Math.random() * 20000);
  fs.writeFileSync(path.join(dir, 'scenario.json'), JSON.stringify(sc));
  const sim = spawn(process.execPath, [path.join(__dirname, '../fabric/run-simulator.js'), '--scenario', path.join(dir, 'scenario.json'),
    '--log-dir', path.join(dir, 'sim'), '--host', '127.0.0.1', '--port', String(port), '--host-plugin-port', String(port + 1)], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 200 && !fs.existsSync(path.join(dir, 'sim', 'ready')); i++) await new Promise((r) => setTimeout(r, 50));
    const root = testRoot(port);
    const client = new WireClient({ endpoint: { host: '127.0.0.1', port }, hostFs: root.hostFs, libDir: LIB, transport: generateTransportPair(), hostPluginPort: port + 1 });
    const { goalState } = await client.updateGoalState(true);
    const plugin = goalState.extensionsConfig!.plugins[0];
    (globalThis as { gc?: () => void }).gc?.();
    try { fs.writeFileSync('/proc/self/clear_refs', '5'); } catch { /* peak RSS not resettable: the figure includes set-up */ }
    const rssBefore = process.memoryUsage().rss / 1024;
    const c0 = process.cpuUsage(); const t0 = Date.now();
    const { manifest, uri } = await fetchManifest(client, plugin);
    const r = await installPackage(client, { uris: manifest.versions[0].uris, destDir: `${LIB}/${name}-1.0.0`, libDir: LIB, manifestUri: uri });
    const ms = Date.now() - t0; const c = process.cpuUsage(c0);
    console.log(`${zipMiB.toFixed(1)} MiB package (${r.files} files, ${((r.bytes ?? 0) / 1048576).toFixed(1)} MiB downloaded via ${r.source}): ` +
      `${ms} ms wall, ${((c.user + c.system) / 1000).toFixed(0)} ms CPU; RSS before ${(rssBefore / 1024).toFixed(1)} MiB, peak ${(peakRssKiB() / 1024).toFixed(1)} MiB ` +
      `(+${((peakRssKiB() - rssBefore) / 1024).toFixed(1)} MiB)`);
    fs.rmSync(root.dir, { recursive: true, force: true });
  } finally {
    sim.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
