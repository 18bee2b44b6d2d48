/**
 * The telemetry folders while extension telemetry is not implemented (extensions.md §10.3): at every start the
 * `<E>/*\/events` folders are deleted (ETP is not advertised), and the legacy `<L>/events/` folder is kept below the
 * limit that breaks VMAccess (more than 1000 entries): before every extension command and every 5 minutes, `*.tld`
 * files older than 24 h go, then the oldest entries until at most 500 remain; `*.tmp` files younger than 60 s are left
 * alone; the folder itself is never deleted.
 */
import type { HostFs } from '../os/os';

const DAY_MS = 24 * 3600 * 1000;
export const EVENTS_KEEP = 500;

/** Prunes `<L>/events`; returns how many files were deleted. */
export function pruneLegacyEvents(fs: HostFs, libDir: string, now = Date.now()): number {
  const dir = `${libDir}/events`;
  const entries: { path: string; mtime: number; name: string }[] = [];
  for (const name of fs.readdir(dir)) {
    const st = fs.lstat(`${dir}/${name}`);
    if (!st?.isFile()) continue;
    entries.push({ path: `${dir}/${name}`, mtime: st.mtimeMs, name });
  }
  const busy = (e: { name: string; mtime: number }): boolean => e.name.endsWith('.tmp') && now - e.mtime < 60_000;
  let removed = 0;
  const remaining: typeof entries = [];
  for (const e of entries) {
    if (e.name.endsWith('.tld') && now - e.mtime > DAY_MS) { fs.remove(e.path); removed++; } else remaining.push(e);
  }
  let excess = fs.readdir(dir).length - EVENTS_KEEP;
  if (excess > 0) {
    remaining.sort((a, b) => a.mtime - b.mtime || (a.name < b.name ? -1 : 1));
    for (const e of remaining) {
      if (excess <= 0) break;
      if (busy(e)) continue;
      fs.remove(e.path); removed++; excess--;
    }
  }
  return removed;
}

/** Deletes every `<E>/<N>/events` folder (§10.3 item 2); returns how many files they held. */
export function removeEtpFolders(fs: HostFs, extensionLogDir: string): number {
  let files = 0;
  for (const n of fs.readdir(extensionLogDir)) {
    const ev = `${extensionLogDir}/${n}/events`;
    if (!fs.lstat(ev)?.isDirectory()) continue;
    files += fs.readdir(ev).length;
    fs.remove(ev);
  }
  return files;
}
