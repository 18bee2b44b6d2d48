/**
 * A child process for the PID-file tests (daemon.test.ts): takes the PID file of a temp root at a given moment and
 * prints what it got, then, when it owns the file, stays alive until stdin closes (so the others see a live holder).
 * Started as `node pidfile-child.js <root> <pidFile> <startAtMs> waagent -daemon` so that its command line looks like
 * a daemon's. Not a test file itself.
 */
import { SysRoot } from '../../src/core/sysroot';
import { HostFs } from '../../src/os/os';
import { acquirePidFile } from '../../src/daemon/pidfile';

async function main(): Promise<void> {
  const [root, pidFile, startAt] = process.argv.slice(2);
  const hfs = new HostFs(new SysRoot(root));
  const wait = Number(startAt) - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const got = await acquirePidFile(hfs, pidFile);
  process.stdout.write(`${JSON.stringify({ pid: process.pid, owned: got.owned, holder: got.owned ? undefined : got.holder.pid })}\n`);
  if (got.owned) {
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
    process.stdin.on('close', () => process.exit(0));
  } else process.exit(0);
}
void main();
