/**
 * Steady-state cost of one goal-state poll (goal state + status blob upload), the daemon's idle work: the fabric
 * simulator runs in a child process (its CPU is not counted), the agent's fabric link in this one. Prints the CPU
 * (user+system) per poll after a warm-up, and the implied CPU per hour at the default 6 s period.
 *   node --expose-gc build/test/bench/poll.js [polls=300] [pause between polls, ms=0]   (with --expose-gc the heap is measured after a GC: a leak shows)
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultScenario } from '../fabric/scenario';
import { testRoot } from '../integration/fabric-helpers';
import { startFabricLink } from '../../src/fabric/link';

async function main(): Promise<void> {
  const polls = Number(process.argv[2] ?? 300);
  /** Pause between polls in ms (the daemon's period is 6000; 0 = back to back). */
  const pauseMs = Number(process.argv[3] ?? 0);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-pollbench-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  fs.writeFileSync(path.join(dir, 'scenario.json'), JSON.stringify(defaultScenario()));
  const sim = spawn(process.execPath, [path.join(__dirname, '../fabric/run-simulator.js'), '--scenario', path.join(dir, 'scenario.json'),
    '--log-dir', path.join(dir, 'sim'), '--host', '127.0.0.1', '--port', String(port), '--host-plugin-port', String(port + 1)], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 100 && !fs.existsSync(path.join(dir, 'sim', 'ready')); i++) await new Promise((r) => setTimeout(r, 50));
    const root = testRoot(port);
    const link = startFabricLink(root.ctx, { hostPluginPort: port + 1 });
    await link.connected();
    for (let i = 0; i < 20; i++) await link.pollOnce();
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const c0 = process.cpuUsage(); const t0 = Date.now();
    let failed = 0;
    const heapTrail: string[] = [];
    for (let i = 0; i < polls; i++) {
      const r = await link.pollOnce(); if (r.error) failed++;
      if (pauseMs) await new Promise((res) => setTimeout(res, pauseMs));
      if (gc && (i + 1) % 1000 === 0) { gc(); heapTrail.push((process.memoryUsage().heapUsed / 1048576).toFixed(2)); }
    }
    const c = process.cpuUsage(c0); const ms = Date.now() - t0;
    gc?.();
    const perPoll = (c.user + c.system) / 1000 / polls;
    console.log(`${polls} polls in ${ms} ms (${failed} failed): ${perPoll.toFixed(2)} ms CPU per poll (user ${(c.user / 1000 / polls).toFixed(2)}, system ${(c.system / 1000 / polls).toFixed(2)}); at one poll per 6 s: ${(perPoll * 600 / 1000).toFixed(2)} s CPU per hour; heap used${gc ? ' after GC' : ''} ${(heapBefore / 1048576).toFixed(1)} → ${(process.memoryUsage().heapUsed / 1048576).toFixed(1)} MiB`);
    if (heapTrail.length) console.log(`heap used after GC every 1000 polls (MiB): ${heapTrail.join(' ')}`);
    link.close();
  } finally {
    sim.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
