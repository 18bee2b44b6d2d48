/**
 * Single instance (provisioning-and-os.md §10.9): the daemon owns `Pid.File`. A live PID whose command line names
 * waagent and -daemon means another daemon runs (we exit 0); a stale file is taken over.
 */
import * as fs from 'node:fs';
import type { HostFs } from '../os/os';

/** The PID of another live daemon, or undefined. Reads /proc of the (possibly rooted) system. */
export function otherDaemonPid(hostFs: HostFs, pidFile: string): number | undefined {
  const text = hostFs.readText(pidFile, 64)?.trim();
  if (!text || !/^\d+$/.test(text)) return undefined;
  const pid = parseInt(text, 10);
  if (pid === process.pid) return undefined;
  try { process.kill(pid, 0); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  let cmdline = '';
  try { cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '); } catch { return pid; }
  return /waagent/.test(cmdline) && /daemon/.test(cmdline) ? pid : undefined;
}

/** Writes our PID (no newline), mode 0644. */
export function writePidFile(hostFs: HostFs, pidFile: string): void {
  const dir = pidFile.replace(/\/[^/]*$/, '') || '/';
  if (!hostFs.exists(dir)) hostFs.mkdir(dir, 0o755);
  hostFs.write(pidFile, String(process.pid), { mode: 0o644 });
}

/** Removes the PID file if it still holds our PID. */
export function removePidFile(hostFs: HostFs, pidFile: string): void {
  if (hostFs.readText(pidFile, 64)?.trim() === String(process.pid)) hostFs.remove(pidFile);
}
