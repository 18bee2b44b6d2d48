/**
 * `-start` (provisioning-and-os.md §1.2): spawn `<self> -daemon [-configuration-path:<p>]` in a new session (setsid,
 * so it survives the init script), stdin/stdout/stderr on /dev/null, and return at once. No configuration is read.
 */
import { spawn } from 'node:child_process';
import { childArgs, type CliOptions } from './args';

/**
 * How to run this agent again: the single executable alone, or the Node binary plus the bundle/script (with the
 * runtime flags it was started with).
 */
export function selfArgv(): string[] {
  let sea = false;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    sea = (require('node:sea') as { isSea(): boolean }).isSea();
  } catch { /* Node without node:sea: not a single executable */ }
  if (sea || !process.argv[1]) return [process.execPath];
  return [process.execPath, ...process.execArgv, process.argv[1]];
}

/** Spawns the detached daemon. 0 once it has started; 1 (with the reason on stderr) when the spawn fails. */
export function runStart(opts: CliOptions, self: string[] = selfArgv()): Promise<number> {
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(self[0], [...self.slice(1), ...childArgs(opts, '-daemon')], { detached: true, stdio: 'ignore' });
    } catch (e) {
      process.stderr.write(`Failed to run 'start': ${(e as Error).message}\n`);
      resolve(1);
      return;
    }
    child.once('error', (e) => { process.stderr.write(`Failed to run 'start': ${e.message}\n`); resolve(1); });
    child.once('spawn', () => { child.unref(); resolve(0); });
  });
}
