/**
 * Single instance (provisioning-and-os.md §10.9): the daemon owns `Pid.File`; the one-shot commands that change the
 * VM (`-provision`, `-deprovision`) hold it too while they work, so that no two agents provision or deprovision at
 * once. The file is created atomically with our PID already in it (a temp file hard-linked to the name: `link` fails
 * with EEXIST when the name exists, so of two starters exactly one wins). A file naming no live waagent process
 * (stale, or a PID reused by another program) is taken over under a short-lived lock file, so that two starters that
 * both found it stale cannot both take it.
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { HostFs } from '../os/os';

/** A live agent process named by the PID file: a daemon, or a one-shot command (-provision, -deprovision). */
export interface PidHolder { pid: number; role: 'daemon' | 'one-shot' }

/** What a live process's command line says it is; undefined when it is not a waagent daemon or one-shot command. */
function roleOf(pid: number): PidHolder['role'] | undefined {
  let argv: string[];
  try { argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean); } catch { return 'daemon'; } // no /proc (BSD): trust the PID
  if (!argv.some((a) => /waagent/.test(a))) return undefined;
  const words = argv.slice(1).map((a) => a.replace(/^(--?|\/)/, '').toLowerCase());
  if (words.includes('daemon')) return 'daemon';
  if (words.some((w) => w === 'provision' || w.startsWith('provision:') || w.startsWith('deprovision'))) return 'one-shot';
  return undefined;
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

function readPid(hostFs: HostFs, file: string): number | undefined {
  let text: string | undefined;
  try { text = hostFs.readText(file, 64)?.trim(); } catch { return undefined; }
  return text && /^\d+$/.test(text) ? parseInt(text, 10) : undefined;
}

/** The live agent process (other than us) that the PID file names, or undefined (missing, stale, PID reused). */
export function pidFileHolder(hostFs: HostFs, pidFile: string): PidHolder | undefined {
  const pid = readPid(hostFs, pidFile);
  if (pid === undefined || pid === process.pid || !alive(pid)) return undefined;
  const role = roleOf(pid);
  return role ? { pid, role } : undefined;
}

/** The PID of another live daemon, or undefined. */
export function otherDaemonPid(hostFs: HostFs, pidFile: string): number | undefined {
  const h = pidFileHolder(hostFs, pidFile);
  return h?.role === 'daemon' ? h.pid : undefined;
}

/** Creates `abs` holding `content` only if it does not exist (atomically, complete when it appears). */
function createExclusive(hostFs: HostFs, abs: string, content: string, mode: number): boolean {
  const real = hostFs.p(abs);
  const tmp = `${real}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
  try { fs.writeSync(fd, content); fs.fchmodSync(fd, mode); } finally { fs.closeSync(fd); }
  try {
    fs.linkSync(tmp, real);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    // A file system without hard links: O_EXCL on the name itself (the content follows at once).
    try {
      const fd2 = fs.openSync(real, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
      try { fs.writeSync(fd2, content); } finally { fs.closeSync(fd2); }
      return true;
    } catch (e2) { if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return false; throw e2; }
  } finally { try { fs.unlinkSync(tmp); } catch { /* gone */ } }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A lock file older than this is left over from a crash inside the (microseconds long) takeover: removed. */
const LOCK_STALE_MS = 10_000;

/**
 * Takes the PID file for this process. Returns `{ owned: true }`, or the live agent process that holds it. A stale
 * file is replaced; of several processes starting at once exactly one owns the file afterwards.
 */
export async function acquirePidFile(hostFs: HostFs, pidFile: string): Promise<{ owned: true } | { owned: false; holder: PidHolder }> {
  const dir = pidFile.replace(/\/[^/]*$/, '') || '/';
  if (!hostFs.exists(dir)) hostFs.mkdir(dir, 0o755);
  const me = String(process.pid);
  const lock = `${pidFile}.lock`;
  for (let attempt = 0; attempt < 200; attempt++) {
    if (createExclusive(hostFs, pidFile, me, 0o644)) return { owned: true };
    const holder = pidFileHolder(hostFs, pidFile);
    if (holder) return { owned: false, holder };
    if (readPid(hostFs, pidFile) === process.pid) return { owned: true };
    // Stale: take it over under the lock, re-checking inside, so that two starters cannot both remove it.
    if (!createExclusive(hostFs, lock, me, 0o600)) {
      const st = hostFs.lstat(lock);
      const lockPid = readPid(hostFs, lock);
      if (st && (Date.now() - st.mtimeMs > LOCK_STALE_MS || (lockPid !== undefined && !alive(lockPid)))) hostFs.remove(lock);
      await sleep(5 + Math.floor(Math.random() * 20));
      continue;
    }
    try {
      if (!pidFileHolder(hostFs, pidFile) && readPid(hostFs, pidFile) !== process.pid) hostFs.remove(pidFile);
    } finally { hostFs.remove(lock); }
  }
  throw new Error(`Cannot take the PID file ${pidFile}`);
}

/** Removes the PID file if it still holds our PID. */
export function removePidFile(hostFs: HostFs, pidFile: string): void {
  if (readPid(hostFs, pidFile) === process.pid) hostFs.remove(pidFile);
}

/**
 * Waits (polling every `pollMs`) until no live process holds the PID file; false when `signal` aborts or `timeoutMs`
 * passes first.
 */
export async function waitForPidFileRelease(hostFs: HostFs, pidFile: string, opts: { signal?: AbortSignal; timeoutMs?: number; pollMs?: number } = {}): Promise<boolean> {
  const until = Date.now() + (opts.timeoutMs ?? Infinity);
  while (pidFileHolder(hostFs, pidFile)) {
    if (opts.signal?.aborted || Date.now() >= until) return false;
    await sleep(opts.pollMs ?? 500);
  }
  return true;
}
