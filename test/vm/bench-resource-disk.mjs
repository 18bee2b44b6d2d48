#!/usr/bin/env node
// Benchmark of the resource disk (provisioning-and-os.md §5; issue 9 target: mounted ≤ 1 s after the daemon starts,
// formatting included): for each of N runs a fresh throwaway VM with a fresh 256 MiB disk (MBR, NTFS-typed partition,
// Gen1 tree) and a 16 MiB swap file; from the agent's log timestamps (host clock = VM clock) it reports the time from
// the agent's spawn and from its first log line to "Resource disk ... is mounted", to the swap being on, and to Ready.
// Usage: node test/vm/bench-resource-disk.mjs [--runs N] [--json]   (root; compile the tests and `node build.mjs` first)
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const argv = process.argv.slice(2);
const runs = argv.includes('--runs') ? Number(argv[argv.indexOf('--runs') + 1]) : 5;
const { createVm, defaultWaagentConf, vmUnavailableReason } = require(join(top, 'build/test/vm/vm.js'));
const { defaultScenario } = require(join(top, 'build/test/fabric/scenario.js'));
const why = vmUnavailableReason();
if (why) { console.error(`bench: ${why}`); process.exit(1); }
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const conf = defaultWaagentConf({
  'Logs.Verbose': 'n', 'Extensions.GoalStatePeriod': '6', 'ResourceDisk.Format': 'y', 'ResourceDisk.Filesystem': 'ext4',
  'ResourceDisk.EnableSwap': 'y', 'ResourceDisk.SwapSizeMB': '16',
});
const rows = [];
let failed = false;
for (let i = 0; i < runs; i++) {
  const vm = await createVm({ scenario: defaultScenario(), waagentConf: conf, resourceDisk: { layout: 'gen1' } });
  try {
    const r = await vm.run(['-daemon'], { timeoutMs: 60_000, until: 'ready', graceMs: 3000 });
    const lines = (vm.readFile('/var/log/waagent.log')?.toString() ?? '').split('\n');
    const at = (re) => { const l = lines.find((x) => re.test(x)); return l ? Date.parse(l.split(' ')[0]) : NaN; };
    const first = at(/starting on/);
    const mounted = at(/Resource disk \/dev\/sdb is mounted at/);
    const swap = at(/Enabled \d+KB of swap/);
    if (!Number.isFinite(mounted) || r.reason !== 'ready') failed = true;
    rows.push({ spawnToMountedMs: mounted - r.agentStartedAt, firstLineToMountedMs: mounted - first, spawnToSwapMs: swap - r.agentStartedAt, spawnToReadyMs: r.timeToReadyMs });
  } finally {
    await vm.destroy({ removeFiles: true });
  }
}
const summary = Object.fromEntries(Object.keys(rows[0] ?? {}).map((k) => [k, { median: median(rows.map((r) => r[k])), max: Math.max(...rows.map((r) => r[k])) }]));
if (argv.includes('--json')) console.log(JSON.stringify({ runs: rows, summary }));
else {
  for (const r of rows) console.log(JSON.stringify(r));
  for (const [k, v] of Object.entries(summary)) console.log(`${k}: median ${v.median} ms, max ${v.max} ms`);
}
process.exit(failed ? 1 : 0);
