// Child of the disk-full test (ext-fetch.test.ts): runs inside `unshare -m` (a private mount namespace, so the host's
// mount table is never touched), mounts a 1 MiB tmpfs on Lib.Dir and installs a 2 MiB package from the simulator.
// Prints one JSON line with the outcomes.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { startSimulator } from '../fabric/simulator';
import { defaultScenario } from '../fabric/scenario';
import { buildZip } from '../fabric/zip';
import { fakeHandlerManifest } from '../fabric/fake-extension';
import { WireClient } from '../../src/fabric/wire';
import { generateTransportPair } from '../../src/crypto/transport';
import { installPackage } from '../../src/extensions/fetch';
import { ExtensionError } from '../../src/extensions/errors';
import { testRoot, fastClock, LIB } from './fabric-helpers';

async function main(): Promise<void> {
  const name = 'Test.DiskFull';
  const sc = defaultScenario();
  sc.certificates = [];
  sc.publicKeys = sc.publicKeys.filter((k) => !k.fingerprint);
  sc.extensions = [{ name, version: '1.0.0', state: 'enabled', seqNo: 0 }];
  sc.extensionPackages = [{ name, version: '1.0.0', zipBase64: buildZip([{ name: 'HandlerManifest.json', data: fakeHandlerManifest() }, { name: 'blob', data: randomBytes(2 * 1024 * 1024), method: 0 }]).toString('base64') }];
  const root = testRoot();
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', root.lib('.')]);
  const sim = await startSimulator(sc, { host: '127.0.0.1', port: 0 });
  const out: Record<string, unknown> = {};
  try {
    const client = new WireClient({ endpoint: { host: '127.0.0.1', port: sim.port }, hostFs: root.hostFs, libDir: LIB, transport: generateTransportPair(), hostPluginPort: sim.hostPluginPort, clock: fastClock(), notReadyDelayMs: 5 });
    const { goalState } = await client.updateGoalState(true);
    void goalState;
    const uris = [`${sim.url}/storage/packages/m0/${name}__1.0.0.zip`];
    const attempt = async (key: string, extra: object): Promise<void> => {
      const before = sim.requests.filter((r) => r.kind === 'extPackage' || r.kind === 'hgArtifact').length;
      try {
        await installPackage(client, { uris, destDir: `${LIB}/${name}-1.0.0`, libDir: LIB, fallback: { shuffle: false }, ...extra });
        out[key] = { ok: true };
      } catch (e) {
        out[key] = { code: e instanceof ExtensionError ? e.code : 'not ExtensionError', message: (e as Error).message };
      }
      (out[key] as Record<string, unknown>).requests = sim.requests.filter((r) => r.kind === 'extPackage' || r.kind === 'hgArtifact').length - before;
      (out[key] as Record<string, unknown>).left = fs.readdirSync(root.lib('.')).filter((n) => n.includes(name));
    };
    await attempt('precheck', {});
    await attempt('enospc', { freeBytes: () => 1e12 });
  } finally {
    await sim.close();
    execFileSync('umount', [root.lib('.')]);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e: unknown) => { process.stderr.write(`${(e as Error).stack}\n`); process.exit(1); });
