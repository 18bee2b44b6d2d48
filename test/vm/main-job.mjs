#!/usr/bin/env node
// The README's "main job": build the executable if needed, compile the tests, boot a throwaway VM with the default
// scenario, let the agent provision it, and print what the agent changed, the health reports the fabric received and
// the time from agent start to Ready.
// Usage: node test/vm/main-job.mjs [--timeout SECONDS] [--keep]   (root needed; WAAGENT_BIN overrides the agent)
// Exit status: 0 when the agent reported Ready, 1 otherwise (or when the machine cannot run VMs).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const argv = process.argv.slice(2);
const timeoutS = Number(argv[argv.indexOf('--timeout') + 1]) || 180;
const keep = argv.includes('--keep');

function newestMtime(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

if (process.getuid?.() !== 0) {
  console.error('main job: needs root (namespaces, overlay, loop devices)');
  process.exit(1);
}
const exe = join(top, 'dist', 'waagent-linux-x64');
if (!process.env.WAAGENT_BIN && (!existsSync(exe) || statSync(exe).size === 0 || statSync(exe).mtimeMs < newestMtime(join(top, 'src')))) {
  console.log('# building the executable (node build.mjs)');
  execFileSync(process.execPath, [join(top, 'build.mjs')], { stdio: 'inherit', cwd: top });
}
console.log('# compiling the tests (tsc)');
try {
  execFileSync(process.execPath, [join(top, 'node_modules/typescript/bin/tsc'), '-p', join(top, 'tsconfig.json')], { stdio: 'inherit' });
} catch {
  console.log('# tsc reported errors (output still emitted); continuing');
}

const { createVm, defaultWaagentConf, vmUnavailableReason } = require(join(top, 'build/test/vm/vm.js'));
const { defaultScenario } = require(join(top, 'build/test/fabric/scenario.js'));
const why = vmUnavailableReason();
if (why) { console.error(`main job: ${why}`); process.exit(1); }

const scenario = defaultScenario();
const vm = await createVm({ scenario, waagentConf: defaultWaagentConf() });
let ok = false;
try {
  console.log(`# VM up (PID 1 = ${vm.pid}); running ${process.env.WAAGENT_BIN ?? exe} -daemon (timeout ${timeoutS} s)`);
  const run = await vm.run(['-daemon'], { timeoutMs: timeoutS * 1000, until: 'ready', graceMs: 3000 });
  const s = vm.simulator.summary();
  const rel = (t) => `${((t - (run.agentStartedAt ?? run.startedAt)) / 1000).toFixed(3)} s`;
  console.log('\n== Run');
  console.log(`ended by: ${run.reason}; exit code ${run.exitCode ?? '-'}${run.signal ? ` (signal ${run.signal})` : ''}`);
  console.log(`agent CPU ${run.cpuMs} ms; peak RSS of the agent's processes ${(run.peakAgentRssKb / 1024).toFixed(1)} MiB (whole tree ${(run.peakRssKb / 1024).toFixed(1)} MiB)`);
  console.log('\n== Health reports the fabric accepted');
  for (const h of s?.healthReports ?? []) {
    console.log(`  +${rel(h.at)}  ${h.state}${h.subStatus ? ` / ${h.subStatus}` : ''}${h.description ? `: ${h.description.slice(0, 200)}` : ''}  (incarnation ${h.incarnation})`);
  }
  if (!s?.healthReports.length) console.log('  (none)');
  for (const r of s?.roleProperties ?? []) console.log(`  +${rel(r.at)}  role properties ${JSON.stringify(r.properties)}`);
  if (s?.failures.length) {
    console.log('\n== Requests the fabric rejected');
    for (const f of s.failures) console.log(`  #${f.seq} ${f.kind}: ${f.error}`);
  }
  console.log('\n== Requests by kind');
  console.log(`  ${Object.entries(s?.counts ?? {}).map(([k, v]) => `${k}=${v}`).join(' ') || '(none)'}`);
  console.log('\n== What the agent changed on the machine');
  for (const c of vm.changedPaths()) console.log(`  ${c.kind.padEnd(8)} ${c.type.padEnd(7)} ${c.path}`);
  console.log('\n== Time from agent start to Ready');
  if (run.timeToReadyMs !== undefined) {
    console.log(`  ${(run.timeToReadyMs / 1000).toFixed(3)} s`);
    ok = true;
  } else {
    console.log('  never reported Ready');
    const log = vm.readFile('/var/log/waagent.log')?.toString() ?? '';
    console.log(`\n== Last lines of the agent's log\n${log.split('\n').slice(-30).join('\n') || '(empty)'}`);
    if (run.stderr.trim()) console.log(`\n== Agent stderr\n${run.stderr.trim().split('\n').slice(-20).join('\n')}`);
  }
} finally {
  await vm.destroy({ removeFiles: !keep });
  if (keep) console.log(`\n# kept: ${vm.dir} (upper-snapshot/, sim/)`);
}
process.exit(ok ? 0 : 1);
