// Extension manifest and package download + install against the fabric simulator on loopback (extensions.md §4,
// fabric-protocol.md §4.2–4.5), with the simulator's download faults.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { startSimulator, type Simulator } from '../fabric/simulator';
import { defaultScenario, type Scenario, type ExtensionSpec } from '../fabric/scenario';
import { fakeExtensionPackage, fakeExtensionZip } from '../fabric/fake-extension';
import { packageCorpus } from '../fabric/zip';
import { WireClient } from '../../src/fabric/wire';
import { generateTransportPair } from '../../src/crypto/transport';
import { fetchManifest, installPackage, removeDownloadLeftovers, type InstallPackageArgs } from '../../src/extensions/fetch';
import { selectVersionOrThrow, findVersion } from '../../src/extensions/manifest';
import { fetchArtifactsProfile, setDefaultChannel, getDefaultChannel } from '../../src/fabric/artifacts';
import { ExtensionError } from '../../src/extensions/errors';
import type { PluginDoc } from '../../src/fabric/documents';
import { testRoot, fastClock, LIB, type TestRoot } from './fabric-helpers';

const transport = generateTransportPair();
const NAME = 'Test.Fake-Ext';
const H = `${LIB}/${NAME}-1.0.0`;

interface Bed { sim: Simulator; root: TestRoot; client: WireClient; plugin: PluginDoc; sc: Scenario }
const open: Bed[] = [];
afterEach(async () => {
  setDefaultChannel('direct');
  while (open.length) await open.pop()!.sim.close();
});

async function bed(mod?: (s: Scenario) => void, proxyPort?: number): Promise<Bed> {
  const sc = defaultScenario();
  sc.extensions = [{ name: NAME, version: '1.0.0', state: 'enabled', seqNo: 0, publicSettings: { fake: 'exit=0' } }];
  sc.extensionPackages = [fakeExtensionPackage(NAME, '1.0.0'), fakeExtensionPackage(NAME, '1.1.0')];
  mod?.(sc);
  const root = testRoot();
  const sim = await startSimulator(sc, { host: '127.0.0.1', port: 0 });
  const client = new WireClient({
    endpoint: { host: '127.0.0.1', port: sim.port }, hostFs: root.hostFs, libDir: LIB, transport,
    hostPluginPort: sim.hostPluginPort, clock: fastClock(), notReadyDelayMs: 5,
    proxy: proxyPort ? { host: '127.0.0.1', port: proxyPort } : undefined,
  });
  const { goalState } = await client.updateGoalState(true);
  const plugin = goalState.extensionsConfig!.plugins[0];
  const b = { sim, root, client, plugin, sc };
  open.push(b);
  return b;
}

const kinds = (sim: Simulator, ...k: string[]): string[] => sim.requests.filter((r) => k.includes(r.kind)).map((r) => `${r.kind}:${r.status}`);
const libNames = (b: Bed): string[] => fs.readdirSync(b.root.lib('.')).filter((n) => n.includes(NAME) || n.includes('.unzip-')).sort();

async function install(b: Bed, extra: Partial<InstallPackageArgs> = {}): Promise<Awaited<ReturnType<typeof installPackage>>> {
  const { manifest, uri } = await fetchManifest(b.client, b.plugin);
  const v = selectVersionOrThrow(manifest, b.plugin.version, undefined, { state: 'enabled', name: NAME });
  return installPackage(b.client, {
    uris: findVersion(manifest, v)!.uris, destDir: `${LIB}/${NAME}-${v}`, libDir: LIB, manifestUri: uri,
    fallback: { shuffle: false }, ...extra,
  });
}

test('manifest and package downloaded directly; files installed 0744/0755; zip deleted; idempotent', async () => {
  const b = await bed();
  const r = await install(b);
  assert.equal(r.source, 'direct');
  const h = b.root.lib(`${NAME}-1.0.0`);
  assert.equal(fs.statSync(path.join(h, 'bin', 'fake.sh')).mode & 0o7777, 0o744);
  assert.equal(fs.statSync(path.join(h, 'bin')).mode & 0o7777, 0o755);
  assert.ok(fs.existsSync(path.join(h, 'HandlerManifest.json')));
  assert.deepEqual(libNames(b), [`${NAME}-1.0.0`], 'no zip, no .part, no staging left');
  assert.deepEqual(kinds(b.sim, 'extManifest', 'extPackage', 'hgArtifact'), ['extManifest:200', 'extPackage:200']);
  const again = await installPackage(b.client, { uris: ['http://127.0.0.1:9/never'], destDir: H, libDir: LIB });
  assert.equal(again.source, 'existing');
  assert.equal(kinds(b.sim, 'extPackage', 'hgArtifact').length, 1, 'nothing downloaded the second time');
});

test('existing config/ is kept; the handler manifest lands last (a half-moved directory is not "complete")', async () => {
  const b = await bed();
  fs.mkdirSync(b.root.lib(`${NAME}-1.0.0/config`), { recursive: true });
  fs.writeFileSync(b.root.lib(`${NAME}-1.0.0/config/HandlerState`), 'NotInstalled');
  fs.mkdirSync(b.root.lib(`${NAME}-1.0.0/bin`));
  fs.writeFileSync(b.root.lib(`${NAME}-1.0.0/bin/fake.sh`), 'half-moved leftover');
  await install(b);
  assert.equal(fs.readFileSync(b.root.lib(`${NAME}-1.0.0/config/HandlerState`), 'utf8'), 'NotInstalled');
  assert.match(fs.readFileSync(b.root.lib(`${NAME}-1.0.0/bin/fake.sh`), 'utf8'), /^#!\/bin\/sh/);
});

test('direct 404 → host plugin /extensionArtifact with the §4.5 headers; the default channel flips', async () => {
  const b = await bed((s) => { s.faults = [{ kind: 'extPackage', status: 404 }]; });
  const r = await install(b);
  assert.equal(r.source, 'hostplugin');
  const hg = b.sim.requests.find((x) => x.kind === 'hgArtifact')!;
  assert.equal(hg.headers['x-ms-version'], '2015-09-01');
  assert.equal(hg.headers['x-ms-containerid'], b.sc.ids.containerId);
  assert.equal(hg.headers['x-ms-host-config-name'], b.sc.ids.configName);
  assert.match(String(hg.headers['x-ms-artifact-location']), /\/storage\/packages\/m0\/Test\.Fake-Ext__1\.0\.0\.zip$/);
  assert.match(String(hg.headers['x-ms-artifact-manifest-location']), /\/storage\/manifests\/m0\/Test\.Fake-Ext\.xml$/);
  assert.equal(getDefaultChannel(), 'hostplugin');
  assert.deepEqual(kinds(b.sim, 'extPackage'), ['extPackage:404'], '404 is not retried on the same channel');
});

test('truncated body, body shorter than Content-Length, stall mid-body: retried; no partial file ever at the final name', async () => {
  const b = await bed((s) => {
    s.faults = [
      { kind: 'extPackage', attempts: [1], truncate: true },
      { kind: 'extPackage', attempts: [2], extraContentLength: 1000 },
      { kind: 'extPackage', attempts: [3], stallMidBodyMs: 1500 },
    ];
  });
  const running = install(b, { idleTimeoutMs: 600 });
  // During the stall (third attempt) the partial body sits in the .part file, never under the final name.
  while (b.sim.requests.filter((x) => x.kind === 'extPackage').length < 3) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(libNames(b), [`${NAME}__1.0.0.zip.part`], JSON.stringify(b.sim.requests.map((x) => [x.kind, x.attempt, x.fault, x.time])));
  const r = await running;
  assert.equal(r.source, 'direct');
  assert.equal(b.sim.requests.filter((x) => x.kind === 'extPackage').length, 4);
  assert.deepEqual(libNames(b), [`${NAME}-1.0.0`]);
  assert.ok(fs.existsSync(b.root.lib(`${NAME}-1.0.0/bin/fake.sh`)));
});

test('a corrupt package (bad CRC) fails that URI on both channels; the next mirror is used', async () => {
  const b = await bed((s) => {
    s.extensionPackages = [fakeExtensionPackage(NAME, '1.0.0', { mirrors: 2 })];
    s.faults = [{ kind: '*', pathIncludes: '/packages/m0/', corrupt: true }];
  });
  const r = await install(b);
  assert.match(r.uri!, /\/m1\//);
  assert.deepEqual(kinds(b.sim, 'extPackage', 'hgArtifact'), ['extPackage:200', 'hgArtifact:200', 'extPackage:200']);
  assert.deepEqual(libNames(b), [`${NAME}-1.0.0`]);
});

test('every URI and channel fails → 1001 with HEAD\'s message; nothing left behind', async () => {
  const b = await bed((s) => { s.faults = [{ kind: 'extPackage', status: 500 }, { kind: 'hgArtifact', status: 502 }]; });
  await assert.rejects(install(b), (e: unknown) => {
    assert.ok(e instanceof ExtensionError);
    assert.equal(e.code, 1001);
    assert.match(e.message, /^Failed to download artifacts: \[ExtensionDownloadError\] Failed to download Test\.Fake-Ext-1\.0\.0 from all URIs\. Last error: .*502/);
    return true;
  });
  assert.deepEqual(libNames(b), []);
  assert.equal(kinds(b.sim, 'extPackage').length, 6, 'direct: 6 attempts (5xx retried)');
});

test('a hostile package (zip bomb) is refused → 1001; the destination is not created', async () => {
  const b = await bed((s) => { s.extensionPackages = [{ name: NAME, version: '1.0.0', zipBase64: packageCorpus().bomb.toString('base64') }]; });
  await assert.rejects(install(b), (e: unknown) => e instanceof ExtensionError && e.code === 1001 && /inflates beyond/.test(e.message));
  assert.deepEqual(libNames(b), []);
});

test('disk full: too little free space for Content-Length → 1001 at once (no retry, no other channel)', async () => {
  const b = await bed();
  await assert.rejects(install(b, { freeBytes: () => 1000 }), (e: unknown) => e instanceof ExtensionError && e.code === 1001 && /Not enough disk space.*1000 bytes free/.test(e.message));
  assert.deepEqual(kinds(b.sim, 'extPackage', 'hgArtifact'), ['extPackage:200']);
  assert.deepEqual(libNames(b), []);
});

test('size limit: a package larger than maxBytes is refused on each channel without retries', async () => {
  const b = await bed();
  await assert.rejects(install(b, { maxBytes: 100 }), (e: unknown) => e instanceof ExtensionError && e.code === 1001 && /larger than 100 bytes/.test(e.message));
  assert.deepEqual(kinds(b.sim, 'extPackage', 'hgArtifact'), ['extPackage:200', 'hgArtifact:200']);
  assert.deepEqual(libNames(b), []);
});

test('no HandlerManifest.json in the package → −1 "HandlerManifest.json not found"; nested manifest with BOM copied to the top', async () => {
  const b = await bed((s) => { s.extensionPackages = [fakeExtensionPackage(NAME, '1.0.0', { omit: true })]; });
  await assert.rejects(install(b), (e: unknown) => e instanceof ExtensionError && e.code === -1 && e.message === 'Failed to download artifacts: [ExtensionDownloadError] HandlerManifest.json not found');
  assert.deepEqual(libNames(b), []);
  const c = await bed((s) => { s.extensionPackages = [fakeExtensionPackage(NAME, '1.0.0', { inSubdirWithBom: true })]; });
  await install(c);
  const top = fs.readFileSync(c.root.lib(`${NAME}-1.0.0/HandlerManifest.json`));
  assert.notEqual(top[0], 0xef);
  assert.equal(JSON.parse(top.toString('utf8'))[0].handlerManifest.enableCommand, 'bin/fake.sh enable');
});

test('pre-staged <L>/<N>__<V>.zip is used without downloading and kept; a broken one is ignored', async () => {
  const b = await bed();
  fs.writeFileSync(b.root.lib(`${NAME}__1.0.0.zip`), fakeExtensionZip());
  const r = await installPackage(b.client, { uris: ['http://127.0.0.1:9/never'], destDir: H, libDir: LIB });
  assert.equal(r.source, 'prestaged');
  assert.ok(fs.existsSync(b.root.lib(`${NAME}__1.0.0.zip`)));
  const c = await bed();
  fs.writeFileSync(c.root.lib(`${NAME}__1.0.0.zip`), 'not a zip');
  assert.equal((await install(c)).source, 'direct');
});

test('manifest: an HTML page with 200 counts as a failure → host plugin; all failing → −1 with HEAD\'s message', async () => {
  const b = await bed((s) => { s.faults = [{ kind: 'extManifest', replaceBody: '<html><body>Service Unavailable</body></html>' }]; });
  const m = await fetchManifest(b.client, b.plugin);
  assert.deepEqual(m.manifest.versions.map((v) => v.version), ['1.0.0', '1.1.0']);
  assert.deepEqual(kinds(b.sim, 'extManifest', 'hgArtifact'), ['extManifest:200', 'hgArtifact:200']);
  const c = await bed((s) => { s.faults = [{ kind: 'extManifest', status: 404 }, { kind: 'hgArtifact', status: 404 }]; });
  await assert.rejects(fetchManifest(c.client, c.plugin), (e: unknown) => e instanceof ExtensionError && e.code === -1 &&
    e.message.startsWith('[ExtensionError] Failed to get ext handler pkgs\nInner error: [ProtocolError] Failed to retrieve extension manifest. Error: [ExtensionDownloadError] Failed to download extension manifest from all URIs. Last error:'));
});

test('host plugin 410 → the goal state is refreshed and the artifact request retried once', async () => {
  const b = await bed((s) => { s.faults = [{ kind: 'extPackage', status: 404 }, { kind: 'hgArtifact', attempts: [1], status: 410 }]; });
  const gsBefore = b.sim.summary().counts.goalstate ?? 0;
  assert.equal((await install(b)).source, 'hostplugin');
  assert.equal(b.sim.summary().counts.goalstate, gsBefore + 1);
  assert.deepEqual(kinds(b.sim, 'hgArtifact'), ['hgArtifact:410', 'hgArtifact:200']);
});

test('the 5-minute budget: past it, no further URI is tried (Timeout message, 1001)', async () => {
  const b = await bed((s) => {
    s.extensionPackages = [fakeExtensionPackage(NAME, '1.0.0', { mirrors: 3 })];
    s.faults = [{ kind: 'extPackage', status: 404 }, { kind: 'hgArtifact', status: 404 }];
  });
  await assert.rejects(install(b, { fallback: { shuffle: false, budgetMs: 0 } }), (e: unknown) => e instanceof ExtensionError && e.code === 1001 &&
    /Timeout downloading Test\.Fake-Ext-1\.0\.0\. Elapsed: 0:00:00\.\d{6} URIs tried: 1\/3\. Last error:/.test(e.message));
});

test('leftover .part files and staging directories are removed', async () => {
  const b = await bed();
  fs.writeFileSync(b.root.lib(`${NAME}__1.0.0.zip.part`), 'partial');
  fs.mkdirSync(b.root.lib(`.${NAME}-1.0.0.unzip-0123abcd`));
  assert.deepEqual(removeDownloadLeftovers(b.root.hostFs, LIB).sort(), [`.${NAME}-1.0.0.unzip-0123abcd`, `${NAME}__1.0.0.zip.part`]);
  assert.deepEqual(libNames(b), []);
});

test('artifacts profile: onHold true/"true"; absent, 404 or garbage → not on hold', async () => {
  for (const [profile, expected] of [[{ onHold: true }, true], [{ onHold: 'true' }, true], [{ onHold: 'yes' }, false], ['not json', false]] as const) {
    const b = await bed((s) => { s.artifactsProfile = profile; });
    const url = b.client.goalState!.extensionsConfig!.artifactsProfileBlob!;
    assert.ok(url);
    assert.deepEqual(await fetchArtifactsProfile(b.client, url), { onHold: expected }, JSON.stringify(profile));
  }
  const c = await bed((s) => { s.artifactsProfile = { onHold: true }; s.faults = [{ kind: 'artifactsProfile', status: 404 }, { kind: 'hgArtifact', status: 404 }]; });
  assert.deepEqual(await fetchArtifactsProfile(c.client, c.client.goalState!.extensionsConfig!.artifactsProfileBlob!), { onHold: false });
});

test('protected settings are encrypted to the tenant certificate; the agent\'s .crt/.prv decrypt them with openssl', { skip: !hasOpenssl() && 'openssl not installed' }, async () => {
  const secret = { password: 'Pa55 "w0rd" ü', n: 1 };
  const b = await bed((s) => { s.extensions[0].protectedSettingsPlain = secret; });
  const rs = b.client.goalState!.extensionsConfig!.pluginSettings[0].runtimeSettings[0];
  const hs = JSON.parse(rs.json).runtimeSettings[0].handlerSettings;
  const tp = b.sc.certificates[0].thumbprint;
  assert.equal(hs.protectedSettingsCertThumbprint, tp);
  const plain = execFileSync('openssl', ['cms', '-inform', 'DER', '-decrypt', '-recip', b.root.lib(`${tp}.crt`), '-inkey', b.root.lib(`${tp}.prv`)],
    { input: Buffer.from(hs.protectedSettings, 'base64') }).toString('utf8');
  assert.deepEqual(JSON.parse(plain), secret);
  // Same plaintext → same ciphertext on the next incarnation (no spurious settings change).
  b.sim.bumpIncarnation();
  const { goalState } = await b.client.updateGoalState();
  assert.equal(JSON.parse(goalState.extensionsConfig!.pluginSettings[0].runtimeSettings[0].json).runtimeSettings[0].handlerSettings.protectedSettings, hs.protectedSettings);
  assert.equal(createHash('sha256').update(plain).digest('hex').length, 64);
});

test('the ExtensionsConfig changes between incarnations (extensionsByIncarnation); MC, dependencies, features, signature', async () => {
  const v2: ExtensionSpec[] = [
    { name: NAME, version: '1.1.0', state: 'enabled', seqNo: 1, encodedSignature: 'MIIB', dependencyLevel: 2, dependsOn: ['Other.Ext'], manifestLocations: 3 },
    { name: 'Test.MC', version: '1.0.0', state: 'enabled', seqNo: 0, multiConfig: [{ name: 'a', seqNo: 3 }, { name: 'b', seqNo: 1, state: 'disabled' }] },
  ];
  const b = await bed((s) => { s.extensionsByIncarnation = [{ fromIncarnation: 2, extensions: v2 }]; s.requiredFeatures = ['MultipleExtensionsPerHandler']; });
  assert.equal(b.client.goalState!.extensionsConfig!.plugins[0].version, '1.0.0');
  b.sim.bumpIncarnation();
  const ec = (await b.client.updateGoalState()).goalState.extensionsConfig!;
  assert.deepEqual(ec.plugins.map((p) => `${p.name}@${p.version}`), [`${NAME}@1.1.0`, 'Test.MC@1.0.0']);
  assert.equal(ec.plugins[0].encodedSignature, 'MIIB');
  assert.equal(ec.plugins[0].manifestUris.length, 3);
  assert.deepEqual(ec.requiredFeatures, ['MultipleExtensionsPerHandler']);
  assert.equal(ec.pluginSettings[0].dependencyLevel, '2');
  assert.deepEqual(ec.pluginSettings[0].dependsOn, [{ handler: 'Other.Ext', extension: '' }]);
  assert.deepEqual(ec.pluginSettings[1].extensionRuntimeSettings.map((x) => `${x.name}:${x.seqNo}:${x.state}`), ['a:3:enabled', 'b:1:disabled']);
});

function hasOpenssl(): boolean {
  try { execFileSync('openssl', ['version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

test('disk full for real (1 MiB tmpfs in a private mount namespace): precheck and ENOSPC mid-write → 1001, loop stopped, nothing left',
  { skip: (process.getuid?.() !== 0 || !hasUnshare()) && 'needs root and unshare' }, () => {
    const child = path.join(__dirname, 'ext-diskfull-child.js');
    const out = execFileSync('unshare', ['-m', '--propagation', 'private', process.execPath, child], { encoding: 'utf8', timeout: 120_000 });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    assert.equal(r.precheck.code, 1001);
    assert.match(r.precheck.message, /Not enough disk space for Test\.DiskFull-1\.0\.0 .* bytes free, \d+ needed/);
    assert.equal(r.precheck.requests, 1);
    assert.deepEqual(r.precheck.left, []);
    assert.equal(r.enospc.code, 1001);
    assert.match(r.enospc.message, /Not enough disk space .*ENOSPC while writing/);
    assert.equal(r.enospc.requests, 1, 'ENOSPC stops the URI/channel loop at once');
    assert.deepEqual(r.enospc.left, [], 'the partial file is deleted');
  });

function hasUnshare(): boolean {
  try { execFileSync('unshare', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

test('proxy: direct manifest/package downloads go through the configured proxy; the host plugin never does', async () => {
  const seen: string[] = [];
  const proxy = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const up = http.get(req.url!, { headers: { ...req.headers, host: new URL(req.url!).host } }, (r) => { res.writeHead(r.statusCode ?? 502, r.headers); r.pipe(res); });
    up.on('error', () => res.writeHead(502).end());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  const saved = { no_proxy: process.env.no_proxy, NO_PROXY: process.env.NO_PROXY };
  delete process.env.no_proxy; delete process.env.NO_PROXY;
  try {
    const b = await bed((s) => { s.faults = [{ kind: 'extPackage', status: 404 }]; }, (proxy.address() as AddressInfo).port);
    assert.equal((await install(b)).source, 'hostplugin');
    assert.ok(seen.some((l) => /^GET http:\/\/127\.0\.0\.1:\d+\/storage\/manifests\//.test(l)), 'manifest via the proxy (absolute URL)');
    assert.ok(seen.some((l) => /\/storage\/packages\//.test(l)), 'package via the proxy');
    assert.ok(!seen.some((l) => /extensionArtifact|machine|goalstate/.test(l)), `no wire server / host plugin request through the proxy: ${seen.join(', ')}`);
    assert.equal(b.sim.requests.filter((r) => r.kind === 'hgArtifact').length, 1);
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
    proxy.closeAllConnections();
    await new Promise<void>((r) => proxy.close(() => r()));
  }
});
