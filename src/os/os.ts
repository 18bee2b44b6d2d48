/**
 * The OS layer: one object per distro family, chosen once (os/factory.ts), through which every command runs and
 * every system file is read or written. Generic file helpers here map agent paths through the root prefix; the
 * distro-specific operations (users, host name, sshd, DVD, ...) live in the Linux base class and its variants.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Runner, ExecOptions, ExecResult } from '../core/exec';
import { runOk } from '../core/exec';
import { SysRoot } from '../core/sysroot';
import { writeFileAtomic, readTextIfExists, ensureDir, ensureDirNoFollow, exists, type WriteOptions } from '../core/files';
import type { DistroInfo } from './detect';

export class HostFs {
  constructor(readonly root: SysRoot) {}
  /** Real path of an agent path. */
  p(abs: string): string { return this.root.path(abs); }
  exists(abs: string): boolean { return exists(this.p(abs)); }
  readText(abs: string, maxBytes?: number): string | undefined { return readTextIfExists(this.p(abs), maxBytes); }
  write(abs: string, data: string | Buffer, opts: WriteOptions): void { writeFileAtomic(this.p(abs), data, opts); }
  mkdir(abs: string, mode: number, uid?: number, gid?: number): void { ensureDir(this.p(abs), mode, uid, gid); }
  /** Creates `abs` (and missing parents, 0755) if needed, then sets its mode and owner through a descriptor opened
   *  with O_NOFOLLOW|O_DIRECTORY: a directory swapped for a symbolic link is refused (ELOOP/ENOTDIR), never followed. */
  mkdirNoFollow(abs: string, mode: number, uid?: number, gid?: number): void { ensureDirNoFollow(this.p(abs), mode, uid, gid); }
  readdir(abs: string): string[] { try { return fs.readdirSync(this.p(abs)).sort(); } catch { return []; } }
  remove(abs: string): void { fs.rmSync(this.p(abs), { recursive: true, force: true }); }
  stat(abs: string): fs.Stats | undefined { try { return fs.statSync(this.p(abs)); } catch { return undefined; } }
  lstat(abs: string): fs.Stats | undefined { try { return fs.lstatSync(this.p(abs)); } catch { return undefined; } }
  /** The target of a symbolic link as stored (not resolved), or undefined. */
  readlink(abs: string): string | undefined { try { return fs.readlinkSync(this.p(abs)); } catch { return undefined; } }
  chmod(abs: string, mode: number): void { fs.chmodSync(this.p(abs), mode); }
  chown(abs: string, uid: number, gid: number): void { fs.chownSync(this.p(abs), uid, gid); }

  /**
   * Why files cannot be created under `abs` (its nearest existing directory), or undefined: the file system is
   * read-only, full (less than 64 KiB free to root) or out of inodes. Never throws.
   */
  storageProblem(abs: string): string | undefined {
    let dir = abs;
    while (dir !== '/' && !this.exists(dir)) dir = path.posix.dirname(dir);
    const real = this.p(dir);
    try { fs.accessSync(real, fs.constants.W_OK); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EROFS') return `${dir} is on a read-only file system`;
    }
    try {
      const st = fs.statfsSync(real);
      const free = st.bfree * st.bsize;
      if (free < 64 * 1024) return `no space left on the file system of ${dir} (${free} bytes free)`;
      if (st.files > 0 && st.ffree === 0) return `no free inodes on the file system of ${dir}`;
    } catch { /* no answer: no diagnosis */ }
    return undefined;
  }
}

/** What a failed command said, for an error message: its output, else why it could not start — a program that is
 *  not installed is said so (`useradd is not installed (…ENOENT)`). */
export function failureText(r: ExecResult): string {
  const out = (r.stdout + r.stderr).trim();
  if (out) return out;
  if (r.spawnError && /\bENOENT\b/.test(r.spawnError)) return `${r.argv[0]} is not installed (${r.spawnError})`;
  return r.spawnError ?? '';
}

export class OsBase {
  readonly fs: HostFs;
  constructor(readonly distro: DistroInfo, readonly root: SysRoot, readonly run: Runner) {
    this.fs = new HostFs(root);
  }

  /** Runs a command, throwing CommandError on a non-zero exit. */
  runOk(argv: string[], opts?: ExecOptions, what?: string): Promise<ExecResult> { return runOk(this.run, argv, opts, what); }

  /** Finds a program on PATH (inside the root); `undefined` when it is not installed. */
  which(name: string): string | undefined {
    const dirs = (process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':');
    for (const d of [...dirs, '/usr/sbin', '/sbin']) {
      if (!d.startsWith('/')) continue;
      const p = path.posix.join(d, name);
      try { fs.accessSync(this.root.path(p), fs.constants.X_OK); return p; } catch { /* next */ }
    }
    return undefined;
  }
}
