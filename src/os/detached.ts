/**
 * Starting a program that outlives the agent (provisioning-and-os.md §8: the SCVMM installer): argv only, no shell, a
 * new session, stdin/stdout/stderr on /dev/null, not waited for. Only on the real root: under a test root the caller
 * injects its own launcher, so a test never starts a real program this way.
 */
import { spawn } from 'node:child_process';
import type { SysRoot } from '../core/sysroot';

/** Spawns `argv` detached; resolves once it started (its pid), rejects when it cannot be started. */
export function spawnDetached(root: SysRoot, argv: string[]): Promise<number> {
  if (!root.isReal) return Promise.reject(new Error(`refusing to start ${argv[0]} detached under the test root ${root.path('/')}`));
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: 'ignore', shell: false, cwd: '/' });
    child.once('error', reject);
    child.once('spawn', () => { child.unref(); resolve(child.pid ?? 0); });
  });
}
