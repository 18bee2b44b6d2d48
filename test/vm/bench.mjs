#!/usr/bin/env node
// Benchmark of the built agent beside the reference agent: for each of N runs, the same scenario in two fresh
// throwaway VMs (same image, same waagent.conf), one with our executable and one with Debian 12's WALinuxAgent 2.7.3
// (the peer, test/vm/peer.ts: its .deb unpacked into the VM's image layer only), in alternating order, measuring
//   - first boot: time from agent start to the first NotReady and to the Ready report the fabric accepted,
//   - CPU (user+system of the agent and every process it waited for) for the whole first boot (until Ready + grace),
//   - peak RSS of the agent's own processes, anonymous and file-backed parts,
//   - processes seen in the agent's tree (sampled every 50 ms) and requests the fabric received until Ready;
// then a side-by-side table of the medians with the ratio ours/peer, and `-version`: median wall time of 20 runs.
// The image has `ifdown`/`ifup` that succeed (as on an image with ifupdown), so that neither agent's host-name publish
// waits on a missing tool (WALinuxAgent retries it 3 × 5 s before Ready; we do it beside provisioning).
// With --idle S, one more VM runs S seconds past Ready: the agent's CPU per hour of goal-state polling and its RSS.
// Usage: node test/vm/bench.mjs [--runs N] [--grace MS] [--idle S] [--cold] [--no-peer] [--json]   (root; compile the
// tests first; WAAGENT_BIN overrides the agent). Exit 1 when a run of ours never reached Ready.
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

const { createVm, defaultWaagentConf, vmUnavailableReason, agentCommand, imageWrite } = require(join(top, 'build/test/vm/vm.js'));
const { defaultScenario } = require(join(top, 'build/test/fabric/scenario.js'));
const { peerUnavailable, unpackPeer } = require(join(top, 'build/test/vm/peer.js'));
const peerWhy = argv.includes('--no-peer') ? 'not asked (--no-peer)' : peerUnavailable();

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n ? (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN; };

const why = vmUnavailableReason();
if (why) { console.error(`bench: ${why}`); process.exit(1); }

// The VM tests poll every 2 s with verbose logs; the benchmark measures what users run: the default 6 s period and
// INFO logging. Provisioning.Agent=waagent: WALinuxAgent 2.7 decides by it (ours by Provisioning.Enabled=y, D29).
const PRODUCTION_LIKE = { 'Extensions.GoalStatePeriod': '6', 'Logs.Verbose': 'n', 'Provisioning.Agent': 'waagent' };
const CONF = defaultWaagentConf(PRODUCTION_LIKE);
const IFUPDOWN = '#!/bin/sh\n# bench image: ifupdown that succeeds (the VM has no DHCP server to renew a lease from)\nexit 0\n';
const imageCommon = (img) => { imageWrite(img, '/usr/sbin/ifdown', IFUPDOWN, 0o755); imageWrite(img, '/usr/sbin/ifup', IFUPDOWN, 0o755); };
/** The two agents of the bench: ours (the built executable) and the peer (python3 on the unpacked package). */
const AGENTS = [
  { name: 'ours', vm: (scenario) => ({ scenario, waagentConf: CONF, extraSetup: imageCommon }) },
  { name: 'peer', vm: (scenario) => ({ scenario, waagentConf: CONF, agentBin: '/usr/bin/python3 -u /usr/sbin/waagent',
    // dpkg -x also brings the package's sample /etc/waagent.conf: the bench's replaces it.
    extraSetup: (img) => { imageCommon(img); unpackPeer(img); imageWrite(img, '/etc/waagent.conf', CONF, 0o644); } }) },
].filter((a) => a.name === 'ours' || !peerWhy);
if (peerWhy && !asJson) console.log(`# the peer (WALinuxAgent 2.7.3) is left out: ${peerWhy}`);

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
  const scenario = defaultScenario();
  // Alternate which agent goes first, so that neither always meets a warmer page cache.
  for (const agent of i % 2 ? [...AGENTS].reverse() : AGENTS) {
    const vm = await createVm(agent.vm(scenario));
    try {
      if (agent.name === 'ours') dropCache();
      const r = await vm.run(agent.name === 'ours' ? agentArgs(['-daemon']) : ['-daemon'], { timeoutMs: 180_000, until: 'ready', graceMs });
      const s = vm.simulator.summary();
      const nr = s?.notReady?.find((n) => n.at >= r.agentStartedAt);
      const reqs = vm.simulator.requests();
      const requestsToReady = r.readyAt !== undefined ? reqs.filter((q) => q.time <= r.readyAt).length : null;
      const m = /Provisioning succeeded \(([\d.]+)s, (\d+) commands run\)/.exec(vm.readFile('/var/log/waagent.log')?.toString() ?? '');
      const row = {
        agent: agent.name, run: i + 1, notReadyMs: nr ? nr.at - r.agentStartedAt : null, readyMs: r.timeToReadyMs ?? null, cpuMs: r.cpuMs,
        peakAgentRssKb: r.peakAgentRssKb, peakAnonKb: r.peakAgentAnonKb, peakFileKb: r.peakAgentFileKb, peakTreeRssKb: r.peakRssKb,
        processes: r.processesSeen, agentProcesses: r.agentProcessesSeen, requestsToReady, requests: reqs.length,
        commands: m ? Number(m[2]) : null, failures: s?.failures?.length ?? 0, ended: r.reason,
      };
      results.push(row);
      if (r.timeToReadyMs === undefined && agent.name === 'ours') failed = true;
      if (!asJson) console.log(`run ${i + 1} ${agent.name}: NotReady ${row.notReadyMs ?? '-'} ms, Ready ${row.readyMs ?? '-'} ms, CPU ${r.cpuMs} ms, peak RSS ${(r.peakAgentRssKb / 1024).toFixed(1)} MiB (anon ${(r.peakAgentAnonKb / 1024).toFixed(1)}, file-backed ${(r.peakAgentFileKb / 1024).toFixed(1)}), ${row.processes} processes (${row.agentProcesses} agent), ${requestsToReady ?? '-'} requests to Ready, ${row.failures} rejected, ended by ${r.reason}`);
    } finally {
      await vm.destroy({ removeFiles: true });
    }
  }
}

// Idle: one more VM left running --idle seconds after Ready (goal-state polling every Extensions.GoalStatePeriod).
let idle;
if (idleS > 0) {
  const vm = await createVm(AGENTS[0].vm(defaultScenario()));
  try {
    dropCache();
    const r = await vm.run(agentArgs(['-daemon']), { timeoutMs: idleS * 1000 + 180_000, until: 'ready', graceMs: idleS * 1000 + 2000 });
    if (r.idle) {
      const polls = vm.simulator.summary()?.counts?.goalstate ?? null;
      idle = { seconds: Math.round(r.idle.ms / 1000), cpuMs: r.idle.cpuMs, cpuSecondsPerHour: Number((r.idle.cpuMs / r.idle.ms * 3600).toFixed(2)), rssStartMiB: Number((r.idle.rssStartKb / 1024).toFixed(1)), rssEndMiB: Number((r.idle.rssEndKb / 1024).toFixed(1)), anonEndMiB: Number((r.idle.anonEndKb / 1024).toFixed(1)), fileEndMiB: Number((r.idle.fileEndKb / 1024).toFixed(1)), goalStateRequests: polls };
      if (!asJson) console.log(`idle ${idle.seconds} s after Ready: agent CPU ${idle.cpuMs} ms (${idle.cpuSecondsPerHour} s per hour), RSS ${idle.rssStartMiB} → ${idle.rssEndMiB} MiB (at the end: anon ${idle.anonEndMiB}, file-backed ${idle.fileEndMiB}), ${polls} goal-state requests`);
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

const ofAgent = (name) => results.filter((r) => r.agent === name);
const med = (name, key) => median(ofAgent(name).map((r) => r[key]).filter((x) => x !== null && x !== undefined));
const KEYS = [
  ['notReadyMs', 'start → NotReady (ms)', 1],
  ['readyMs', 'start → Ready accepted (ms)', 1],
  ['cpuMs', 'CPU, agent + its commands (ms)', 1],
  ['peakAgentRssKb', 'peak RSS, agent processes (MiB)', 1024],
  ['peakAnonKb', '  of which anonymous (MiB)', 1024],
  ['peakFileKb', '  of which file-backed (MiB)', 1024],
  ['processes', 'processes seen (sampled)', 1],
  ['agentProcesses', '  of which the agent itself', 1],
  ['requestsToReady', 'fabric requests until Ready', 1],
];
const table = KEYS.map(([key, label, div]) => {
  const o = med('ours', key);
  const p = AGENTS.length > 1 ? med('peer', key) : NaN;
  return { key, label, ours: o / div, peer: p / div, ratio: o / p };
});
const summary = {
  agent: agentCommand(),
  peer: peerWhy ? null : 'WALinuxAgent 2.7.3.0 (Debian 12 package waagent 2.7.3.0-4.1)',
  runs: results,
  table,
  median: {
    readyMs: med('ours', 'readyMs'),
    cpuMs: med('ours', 'cpuMs'),
    peakAgentRssKb: med('ours', 'peakAgentRssKb'),
  },
  idle,
  versionMedianMs: Number(median(versionMs).toFixed(1)),
  versionRuns: versionMs.length,
};
if (asJson) console.log(JSON.stringify(summary, null, 1));
else {
  const fmt = (x, div) => (Number.isFinite(x) ? (div === 1 ? String(Math.round(x)) : x.toFixed(1)) : '-');
  console.log(`\nmedians of ${runs} run(s), same scenario per run${AGENTS.length > 1 ? '' : ' (peer left out)'}:`);
  console.log(`| | waagent-ts | WALinuxAgent 2.7.3 | ours/peer |`);
  console.log(`|---|---|---|---|`);
  for (const row of table) {
    const div = KEYS.find((k) => k[0] === row.key)[2];
    console.log(`| ${row.label} | ${fmt(row.ours, div)} | ${fmt(row.peer, div)} | ${Number.isFinite(row.ratio) ? row.ratio.toFixed(2) : '-'} |`);
  }
  console.log(`\n-version (median of ${versionMs.length} runs): ${summary.versionMedianMs} ms`);
}
process.exit(failed ? 1 : 0);
