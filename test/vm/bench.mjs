#!/usr/bin/env node
// Benchmark of the built agent: for each of N runs a fresh throwaway VM with the default scenario, measuring
//   - first boot: time from agent start to the Ready report the fabric accepted,
//   - agent CPU (user+system, all processes it waited for) for the whole first boot (until Ready + grace),
//   - peak RSS summed over all agent processes;
// then `-version`: median wall time of 20 runs on the host.
// With --idle S, one more VM runs S seconds past Ready: the agent's CPU per hour of goal-state polling and its RSS.
// Usage: node test/vm/bench.mjs [--runs N] [--grace MS] [--idle S] [--cold] [--json]   (root; compile the tests first; WAAGENT_BIN
// overrides the agent). Exit 1 when a run never reached Ready.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const argv = process.argv.slice(2);
const opt = (name, dflt) => { const i = argv.indexOf(name); return i >= 0 ? Number(argv[i + 1]) : dflt; };
const runs = opt('--runs', 3);
const graceMs = opt('--grace', 3000);
const asJson = argv.includes('--json');
const idleS = opt('--idle', 0);
// --cold: run the executable from a file on disk (not the VM's tmpfs image layer) whose page cache is dropped before
// each run (dd iflag=nocache on that file only), as on a real first boot; its pages then count as file-backed RSS.
const cold = argv.includes('--cold');

const { createVm, defaultWaagentConf, vmUnavailableReason, agentCommand } = require(join(top, 'build/test/vm/vm.js'));
const { defaultScenario } = require(join(top, 'build/test/fabric/scenario.js'));

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n ? (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN; };

const why = vmUnavailableReason();
if (why) { console.error(`bench: ${why}`); process.exit(1); }

// The VM tests poll every 2 s with verbose logs; the benchmark measures what users run: the default 6 s period and
// INFO logging.
const PRODUCTION_LIKE = { 'Extensions.GoalStatePeriod': '6', 'Logs.Verbose': 'n' };

let coldBin;
if (cold) {
  const { mkdirSync, copyFileSync, chmodSync } = await import('node:fs');
  const src = agentCommand();
  if (/\s/.test(src.trim())) { console.error('bench: --cold needs a single executable (not a command line)'); process.exit(2); }
  mkdirSync('/var/tmp/waagent-bench', { recursive: true });
  coldBin = '/var/tmp/waagent-bench/waagent';
  copyFileSync(src, coldBin); chmodSync(coldBin, 0o755);
}
const dropCache = () => {
  if (!coldBin) return;
  spawnSync('sync', [coldBin]); // dirty pages cannot be dropped
  spawnSync('dd', [`if=${coldBin}`, 'iflag=nocache', 'count=0', 'status=none']);
};
const agentArgs = (args) => (coldBin ? [coldBin, ...args] : args);

const results = [];
let failed = false;
for (let i = 0; i < runs; i++) {
  const vm = await createVm({ scenario: defaultScenario(), waagentConf: defaultWaagentConf(PRODUCTION_LIKE) });
  try {
    dropCache();
    const r = await vm.run(agentArgs(['-daemon']), { timeoutMs: 180_000, until: 'ready', graceMs });
    const m = /Provisioning succeeded \(([\d.]+)s, (\d+) commands run\)/.exec(vm.readFile('/var/log/waagent.log')?.toString() ?? '');
    const commands = m ? Number(m[2]) : null;
    results.push({ run: i + 1, readyMs: r.timeToReadyMs ?? null, cpuMs: r.cpuMs, commands, peakAgentRssKb: r.peakAgentRssKb, peakAnonKb: r.peakAgentAnonKb, peakFileKb: r.peakAgentFileKb, peakTreeRssKb: r.peakRssKb, ended: r.reason });
    if (r.timeToReadyMs === undefined) failed = true;
    if (!asJson) console.log(`run ${i + 1}: ready ${r.timeToReadyMs ?? '-'} ms, CPU ${r.cpuMs} ms, peak RSS ${(r.peakAgentRssKb / 1024).toFixed(1)} MiB (anon ${(r.peakAgentAnonKb / 1024).toFixed(1)}, file-backed ${(r.peakAgentFileKb / 1024).toFixed(1)}; tree ${(r.peakRssKb / 1024).toFixed(1)} MiB), ${commands ?? '?'} commands, ended by ${r.reason}`);
  } finally {
    await vm.destroy({ removeFiles: true });
  }
}

// Idle: one more VM left running --idle seconds after Ready (goal-state polling every Extensions.GoalStatePeriod).
let idle;
if (idleS > 0) {
  const vm = await createVm({ scenario: defaultScenario(), waagentConf: defaultWaagentConf(PRODUCTION_LIKE) });
  try {
    dropCache();
    const r = await vm.run(agentArgs(['-daemon']), { timeoutMs: idleS * 1000 + 180_000, until: 'ready', graceMs: idleS * 1000 + 2000 });
    if (r.idle) {
      const polls = vm.simulator.summary()?.counts?.goalstate ?? null;
      idle = { seconds: Math.round(r.idle.ms / 1000), cpuMs: r.idle.cpuMs, cpuSecondsPerHour: Number((r.idle.cpuMs / r.idle.ms * 3600).toFixed(2)), rssStartMiB: Number((r.idle.rssStartKb / 1024).toFixed(1)), rssEndMiB: Number((r.idle.rssEndKb / 1024).toFixed(1)), goalStateRequests: polls };
      if (!asJson) console.log(`idle ${idle.seconds} s after Ready: agent CPU ${idle.cpuMs} ms (${idle.cpuSecondsPerHour} s per hour), RSS ${idle.rssStartMiB} → ${idle.rssEndMiB} MiB, ${polls} goal-state requests`);
    } else failed = true;
  } finally {
    await vm.destroy({ removeFiles: true });
  }
}

// -version on the host: the same binary, no VM needed (it changes nothing).
const cmd = agentCommand().trim().split(/\s+/);
const versionMs = [];
for (let i = 0; i < 20; i++) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd[0], [...cmd.slice(1), '-version'], { stdio: 'ignore' });
  const dt = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) { failed = true; break; }
  versionMs.push(dt);
}

const summary = {
  agent: agentCommand(),
  runs: results,
  median: {
    readyMs: median(results.map((r) => r.readyMs).filter((x) => x !== null)),
    cpuMs: median(results.map((r) => r.cpuMs)),
    peakAgentRssKb: median(results.map((r) => r.peakAgentRssKb)),
  },
  idle,
  versionMedianMs: Number(median(versionMs).toFixed(1)),
  versionRuns: versionMs.length,
};
if (asJson) console.log(JSON.stringify(summary, null, 1));
else {
  console.log(`\nfirst boot to Ready (median of ${results.length}): ${summary.median.readyMs} ms`);
  console.log(`agent CPU for the first boot (median): ${summary.median.cpuMs} ms`);
  console.log(`peak RSS of all agent processes (median): ${(summary.median.peakAgentRssKb / 1024).toFixed(1)} MiB`);
  console.log(`-version (median of ${versionMs.length} runs): ${summary.versionMedianMs} ms`);
}
process.exit(failed ? 1 : 0);
