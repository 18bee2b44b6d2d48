/**
 * File primitives every writer uses: atomic write (temp file in the same directory + fsync + rename) with an explicit
 * mode and owner, capped reads of small files, directory creation with a mode. Paths here are real paths: the OS
 * layer maps the agent's absolute paths through the root prefix (DECISIONS.md D13) before calling these.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

export interface WriteOptions {
  /** File mode (required: every file the agent writes has an explicit mode). */
  mode: number;
  uid?: number;
  gid?: number;
  /** When the target exists, keep its mode and owner instead (system files such as sshd_config, /etc/shadow). */
  preserveExisting?: boolean;
}

/** Writes `data` to `file` atomically: readers see the old or the new content, never a mix or a partial file. Temp
 *  files of `file` that a writer killed mid-way left behind are removed first. Errors name `file` and keep their
 *  `code` (ENOSPC, EROFS, ...); a short write (a file system filling up mid-way) is completed or fails, never
 *  committed truncated. */
export function writeFileAtomic(file: string, data: string | Buffer, opts: WriteOptions): void {
  try {
    writeAtomic(file, data, opts);
  } catch (e) {
    throw withPath(e, `Cannot write ${file}`);
  }
}

/** `e` as an Error whose message starts with `what` (once), keeping its code and the original as `cause`. */
function withPath(e: unknown, what: string): Error {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.message === 'string' && err.message.startsWith(what)) return err;
  const out: NodeJS.ErrnoException = new Error(`${what}: ${err?.message ?? String(e)}`, { cause: e });
  if (err?.code) out.code = err.code;
  return out;
}

function writeAtomic(file: string, data: string | Buffer, opts: WriteOptions): void {
  const dir = path.dirname(file);
  let mode = opts.mode; let uid = opts.uid; let gid = opts.gid;
  if (opts.preserveExisting) {
    try {
      const st = fs.statSync(file);
      mode = st.mode & 0o7777; uid = st.uid; gid = st.gid;
    } catch { /* new file: use the given mode */ }
  }
  removeStaleTemps(dir, path.basename(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    // write(2) may write less than asked (a file system filling up): go on until all is written or it fails.
    for (let off = 0; off < buf.length;) {
      const n = fs.writeSync(fd, buf, off, buf.length - off);
      if (n <= 0) throw Object.assign(new Error(`short write (${off} of ${buf.length} bytes)`), { code: 'EIO' });
      off += n;
    }
    if (uid !== undefined || gid !== undefined) fs.fchownSync(fd, uid ?? -1, gid ?? -1);
    fs.fchmodSync(fd, mode);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    try { fs.unlinkSync(tmp); } catch { /* ignore */ }
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch { /* ignore */ }
    throw e;
  }
  try { const dfd = fs.openSync(dir, 'r'); try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); } } catch { /* best effort */ }
}

/** A temp file this old is stale whoever's pid it carries (the id may have been reused after a reboot): a writer
 *  holds its temp file for milliseconds. */
const STALE_TEMP_MS = 60 * 60 * 1000;

function olderThan(p: string, ms: number): boolean {
  try { return fs.lstatSync(p).mtimeMs < Date.now() - ms; } catch { return false; }
}

/** Whether a process with this id runs (EPERM: it does, under another user). */
function processAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * Removes the temp files an earlier writer of `<dir>/<base>` left when it died between creating and renaming them
 * (kill -9, power cut): `.<base>.<pid>.<8 hex>.tmp` of a process that no longer runs, carrying this process's own
 * id (an earlier boot's process: this one writes one file at a time, synchronously), or older than an hour. A live
 * writer's fresh file is kept.
 * Best effort: errors are ignored.
 */
function removeStaleTemps(dir: string, base: string): void {
  let entries: string[];
  try { entries = fs.readdirSync(dir); } catch { return; }
  const prefix = `.${base}.`;
  for (const e of entries) {
    if (!e.startsWith(prefix)) continue;
    const m = /^(\d+)\.[0-9a-f]{8}\.tmp$/.exec(e.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    const p = path.join(dir, e);
    if (pid !== process.pid && processAlive(pid) && !olderThan(p, STALE_TEMP_MS)) continue;
    try { fs.unlinkSync(p); } catch { /* best effort */ }
  }
}

export class FileTooLargeError extends Error {}

/**
 * Reads a regular file of at most `maxBytes` (default 1 MiB); larger files are refused, not truncated. Reads to EOF
 * whatever the size stat reports (procfs and sysfs files report 0).
 */
export function readFileCapped(file: string, maxBytes = 1024 * 1024): Buffer {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused as not a regular file)
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error(`${file} is not a regular file`);
    if (st.size > maxBytes) throw new FileTooLargeError(`${file} is larger than ${maxBytes} bytes`);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.min(Math.max(st.size + 1, 4096), maxBytes + 1 - total));
      const r = fs.readSync(fd, buf, 0, buf.length, null);
      if (r === 0) break;
      chunks.push(buf.subarray(0, r));
      total += r;
      if (total > maxBytes) throw new FileTooLargeError(`${file} is larger than ${maxBytes} bytes`);
    }
    return Buffer.concat(chunks, total);
  } finally { fs.closeSync(fd); }
}

/** Decodes bytes as UTF-8 after dropping a byte-order mark (provisioning-and-os.md §0.2 rule 5). */
export function decodeText(buf: Buffer): string {
  let b = buf;
  if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) b = b.subarray(3);
  return b.toString('utf8');
}

/** Reads a small text file; `undefined` when it does not exist. */
export function readTextIfExists(file: string, maxBytes = 1024 * 1024): string | undefined {
  try { return decodeText(readFileCapped(file, maxBytes)); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** Creates a directory (and missing parents) and sets the final directory's mode (and owner when given). */
export function ensureDir(dir: string, mode: number, uid?: number, gid?: number): void {
  fs.mkdirSync(dir, { recursive: true, mode });
  fs.chmodSync(dir, mode);
  if (uid !== undefined || gid !== undefined) fs.chownSync(dir, uid ?? -1, gid ?? -1);
}

/**
 * Creates `dir` if missing (parents 0755), then sets the mode (and owner) of `dir` itself through a descriptor opened
 * with O_NOFOLLOW|O_DIRECTORY, so a symbolic link at `dir` is refused rather than followed (chmod/chown by path would
 * change whatever it points to).
 */
export function ensureDirNoFollow(dir: string, mode: number, uid?: number, gid?: number): void {
  try { fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 }); } catch { /* the open below reports it */ }
  try { fs.mkdirSync(dir, { mode }); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; }
  let fd: number;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') throw new Error(`${dir} is a symbolic link or not a directory: refused`);
    throw e;
  }
  try {
    fs.fchmodSync(fd, mode);
    if (uid !== undefined || gid !== undefined) fs.fchownSync(fd, uid ?? -1, gid ?? -1);
  } finally { fs.closeSync(fd); }
}

export function exists(p: string): boolean {
  try { fs.lstatSync(p); return true; } catch { return false; }
}

/** Removes what is inside a directory, keeping the directory itself. Missing directory: nothing to do. */
export function emptyDir(dir: string): void {
  let entries: string[];
  try { entries = fs.readdirSync(dir); } catch { return; }
  for (const e of entries) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
}
