/**
 * Runs one agent invocation inside the throwaway VM and measures it (started by vm.ts through nsenter, so it lives in
 * the VM's namespaces but outside its chroot):
 *   node agent-runner.js <result.json> <root> <argv...>
 * It chroots `argv` into `root` (through setpriv when VM_DROP_CAPS is set), forwards SIGTERM/SIGINT, and when the child ends writes
 * `{ code, signal, cpuMs }` to result.json, where cpuMs is the user+system time of the child and every descendant
 * it waited for (this process's cutime+cstime). Exits 0 once the result is written.
 */
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const [resultFile, root, ...argv] = process.argv.slice(2);
if (!resultFile || !root || !argv.length) {
  process.stderr.write('usage: agent-runner <result.json> <root> <argv...>\n');
  process.exit(2);
}

let ticks = 100;
try { ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { /* default */ }

// Capabilities that act on the host kernel as a whole are dropped from the bounding set (see vm.ts DROP_CAPS,
// passed in the environment as VM_DROP_CAPS).
const drop = process.env.VM_DROP_CAPS ? JSON.parse(process.env.VM_DROP_CAPS) as string[] : [];
delete process.env.VM_DROP_CAPS;
// When the agent is started (this runner's own start-up, a Node process, is the bed's cost, not the agent's).
writeFileSync(`${resultFile}.started`, String(Date.now()));
const child = drop.length
  ? spawn(drop[0], [...drop.slice(1), 'chroot', root, ...argv], { stdio: 'inherit', env: process.env })
  : spawn('chroot', [root, ...argv], { stdio: 'inherit', env: process.env });
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => { child.kill(sig); });
child.on('error', (e) => {
  writeFileSync(resultFile, JSON.stringify({ code: null, signal: null, cpuMs: 0, error: e.message }));
  process.exit(0);
});
child.on('exit', (code, signal) => {
  // Fields after the parenthesised command name: state is field 3; cutime and cstime are fields 16 and 17.
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cutime = Number(rest[16 - 3]);
  const cstime = Number(rest[17 - 3]);
  writeFileSync(resultFile, JSON.stringify({ code, signal, cpuMs: Math.round(((cutime + cstime) * 1000) / ticks) }));
  process.exit(0);
});
