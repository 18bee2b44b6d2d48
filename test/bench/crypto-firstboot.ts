/**
 * Cold-process benchmark of the first-boot crypto path: `startTransportPair` on an empty Lib.Dir plus decrypting a
 * Certificates document (two tenant certificates, one key, 3DES bags) made by certgen. Not a test.
 *
 *   node build/test/bench/crypto-firstboot.js prepare <dir> [aes|3des]   # writes <dir>/pair.json + <dir>/cms.der (loads forge)
 *   node build/test/bench/crypto-firstboot.js run <dir>                   # one cold run: prints JSON timings
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';

async function prepare(dir: string, cipher: string): Promise<void> {
  const { generateTransportPair } = await import('../../src/crypto/transport');
  const { makeTenantCertificate, makePfx, envelopePkcs7 } = await import('../fabric/certgen');
  const pair = await Promise.resolve(generateTransportPair());
  const a = makeTenantCertificate({ cn: 'tenant-a' });
  const b = makeTenantCertificate({ cn: 'tenant-b' });
  const pfx = makePfx([{ certPem: a.certPem, keyPem: a.keyPem }, { certPem: b.certPem }]);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'pair.json'), JSON.stringify({ keyPem: pair.keyPem, certPem: pair.certPem }));
  fs.writeFileSync(path.join(dir, 'cms.der'), envelopePkcs7(pfx, pair.certPem, cipher === 'aes' ? 'AES128_CBC' : 'DES_EDE3_CBC'));
}

async function run(dir: string): Promise<void> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const { SysRoot } = await import('../../src/core/sysroot');
  const { HostFs } = await import('../../src/os/os');
  const { startTransportPair } = await import('../../src/crypto/transport');
  const { decryptCertificates } = await import('../../src/crypto/certificates');
  const tLoad = performance.now();
  const root = fs.mkdtempSync(path.join(dir, 'root-'));
  const hostFs = new HostFs(new SysRoot(root));
  const pair = await Promise.resolve(startTransportPair(hostFs, '/var/lib/waagent'));
  const tPair = performance.now();
  const cpuPair = process.cpuUsage(cpu0);
  const me = JSON.parse(fs.readFileSync(path.join(dir, 'pair.json'), 'utf8')) as { keyPem: string; certPem: string };
  const certs = decryptCertificates(fs.readFileSync(path.join(dir, 'cms.der')), me);
  const tCerts = performance.now();
  const cpu = process.cpuUsage(cpu0);
  fs.rmSync(root, { recursive: true, force: true });
  if (certs.length !== 2 || !pair.certHeader) throw new Error('unexpected result');
  const forgeLoaded = Object.keys(require.cache).filter((k) => k.includes('node-forge')).length;
  console.log(JSON.stringify({
    processStartToT0Ms: +t0.toFixed(1),
    loadMs: +(tLoad - t0).toFixed(1),
    pairMs: +(tPair - tLoad).toFixed(1),
    certsMs: +(tCerts - tPair).toFixed(1),
    totalMs: +(tCerts - t0).toFixed(1),
    cpuPairMs: +((cpuPair.user + cpuPair.system) / 1000).toFixed(1),
    cpuTotalMs: +((cpu.user + cpu.system) / 1000).toFixed(1),
    forgeModulesLoaded: forgeLoaded,
  }));
}

const [mode, dir, cipher] = process.argv.slice(2);
(mode === 'prepare' ? prepare(dir, cipher ?? '3des') : run(dir)).catch((e) => { console.error(e); process.exit(1); });
