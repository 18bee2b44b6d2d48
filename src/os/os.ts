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
