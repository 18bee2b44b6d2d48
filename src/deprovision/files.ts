/**
 * File clean-up primitives of deprovisioning (provisioning-and-os.md §4.2), all on agent paths through the root
 * prefix (`ctx.os.fs`): empty a directory keeping it, delete the files of a directory whose names match, delete
 * single files, and resolve a symbolic link inside the root. Symbolic links are removed, never followed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HostFs } from '../os/os';

/**
 * Deletes what is inside `dir` (files, links, subtrees), keeping `dir`. A missing directory is nothing to do.
 * Refuses `/` and top-level directories (`/var`, `/etc`, …), so a mistaken Lib.Dir cannot wipe the system.
 */
export function emptyDirectory(hfs: HostFs, dir: string): void {
  const norm = path.posix.normalize(dir).replace(/\/+$/, '');
  if (!norm.startsWith('/') || norm.split('/').filter(Boolean).length < 2) throw new Error(`Refusing to empty ${dir}`);
  const st = hfs.lstat(norm);
  if (!st || !st.isDirectory()) return;
  for (const e of hfs.readdir(norm)) hfs.remove(`${norm}/${e}`);
}

/** Deletes the non-directory entries of `dir` whose names match `re` (`regularOnly`: regular files only). */
export function removeMatching(hfs: HostFs, dir: string, re: RegExp, regularOnly = false): void {
  for (const e of hfs.readdir(dir)) {
    if (!re.test(e)) continue;
    const p = path.posix.join(dir, e);
    const st = hfs.lstat(p);
    if (!st || st.isDirectory() || (regularOnly && !st.isFile())) continue;
    fs.unlinkSync(hfs.p(p));
  }
}

/** Deletes a file or symbolic link when present; directories are left alone. */
export function removeFile(hfs: HostFs, file: string): void {
  const st = hfs.lstat(file);
  if (!st || st.isDirectory()) return;
  fs.unlinkSync(hfs.p(file));
}

/**
 * Resolves `file` through symbolic links inside the root (absolute targets are agent paths); returns the final agent
 * path and whether it exists, or `undefined` after 16 levels (a loop). A missing `file` resolves to itself.
 */
export function resolveInRoot(hfs: HostFs, file: string): { path: string; exists: boolean; firstTarget?: string } | undefined {
  let cur = file; let firstTarget: string | undefined;
  for (let i = 0; i < 16; i++) {
    const st = hfs.lstat(cur);
    if (!st) return { path: cur, exists: false, firstTarget };
    if (!st.isSymbolicLink()) return { path: cur, exists: true, firstTarget };
    const t = fs.readlinkSync(hfs.p(cur));
    cur = path.posix.normalize(t.startsWith('/') ? t : path.posix.join(path.posix.dirname(cur), t));
    firstTarget ??= cur;
  }
  return undefined;
}
