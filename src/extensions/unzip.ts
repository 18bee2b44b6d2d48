/**
 * Safe extraction of extension packages (extensions.md §4.4): Python `zipfile.extractall` semantics — names decoded as
 * UTF-8 (flag bit 11) or CP437, `..`/`.`/empty components and leading `/` dropped, symlink entries written as plain
 * files holding the target text, stored permission bits ignored (files end 0744, directories 0755), later duplicates
 * win, CRC-32 checked — plus our guards: a central-directory reader of our own on node:zlib (stored and deflate only,
 * Zip64 read, encrypted and multi-disk archives refused), bounded entry count, per-entry and total size and free space,
 * entries inflating past their declared size refused, agent-owned names skipped, no special files, no symlink ever
 * followed, everything written into a fresh staging directory that is moved into place only when complete.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { log } from '../core/log';

/** The archive cannot be extracted (malformed, unsupported, hostile or over a limit). */
export class ZipError extends Error {
  constructor(msg: string, readonly code?: string) { super(msg); this.name = 'ZipError'; }
}

export interface ZipLimits {
  /** Sum of declared uncompressed sizes (default 4 GiB). */
  maxTotalBytes?: number;
  /** Declared uncompressed size of one entry (default: maxTotalBytes). */
  maxEntryBytes?: number;
  /** Entries in the central directory (default 100 000). */
  maxEntries?: number;
}

export interface ExtractOptions {
  /** Skip entries landing on these relative names (default: `isAgentOwnedName`). */
  skip?: (rel: string) => boolean;
  /** Free bytes of the destination file system (default: statfs); the declared total must fit, minus 64 MiB. */
  freeBytes?: (dir: string) => number;
  /** Runs on the complete staging directory before it is moved into place; a throw aborts the extraction. */
  beforeCommit?: (stagingDir: string) => void | Promise<void>;
}

export const DEFAULT_ZIP_LIMITS = { maxTotalBytes: 4 * 1024 ** 3, maxEntries: 100_000 } as const;
/** Free space kept on the file system beyond the package (§4.4 rule 9). */
export const FREE_SPACE_RESERVE = 64 * 1024 * 1024;

export interface ZipEntry {
  /** Name as decoded (before sanitising). */
  name: string;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
  /** Unix mode from the external attributes when made on Unix, else 0. */
  unixMode: number;
  isDir: boolean;
  isSymlink: boolean;
  rawName: Buffer;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_CEN = 0x02014b50;
const SIG_LOC = 0x04034b50;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

// CP437, bytes 0x80–0xFF (Python's codec).
const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

/** Decodes CP437 bytes (ASCII below 0x80, as Python). */
export function decodeCp437(b: Buffer): string {
  let s = '';
  for (const c of b) s += c < 0x80 ? String.fromCharCode(c) : CP437_HIGH[c - 0x80];
  return s;
}

function decodeName(raw: Buffer, flags: number): string {
  let name: string;
  if (flags & 0x800) {
    try { name = new TextDecoder('utf-8', { fatal: true }).decode(raw); } catch { throw new ZipError(`entry name is not valid UTF-8 although flagged so (${raw.toString('hex').slice(0, 80)})`); }
  } else name = decodeCp437(raw);
  const nul = name.indexOf('\0');
  return nul >= 0 ? name.slice(0, nul) : name; // Python's ZipInfo cuts at the first NUL
}

/**
 * Python's `_extract_member` name rule: only `/` separates; empty, `.` and `..` components and any leading `/` are
 * dropped. Returns the relative path ('' when nothing is left).
 */
export function sanitizeEntryName(name: string): string {
  return name.split('/').filter((c) => c !== '' && c !== '.' && c !== '..').join('/');
}

/** Names the agent owns inside a handler directory (§4.4 rule 10): never taken from a package. */
export function isAgentOwnedName(rel: string): boolean {
  return rel === 'HandlerEnvironment.json' || rel === 'heartbeat.log' || rel === 'mrseq' ||
    rel === 'config' || rel.startsWith('config/') || rel === 'status' || rel.startsWith('status/');
}

async function readAt(fh: fsp.FileHandle, pos: number, len: number): Promise<Buffer> {
  const b = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(b, got, len - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  if (got < len) throw new ZipError(`archive truncated: wanted ${len} bytes at offset ${pos}, got ${got}`);
  return b;
}

const u64 = (b: Buffer, off: number): number => {
  const v = b.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError('Zip64 value too large');
  return Number(v);
};

/**
 * Reads and validates the central directory (EOCD, Zip64 EOCD when present, every central header). Checks the entry
 * count against `maxEntries` before reading the entries.
 */
export async function readCentralDirectory(fh: fsp.FileHandle, fileSize: number, maxEntries: number = DEFAULT_ZIP_LIMITS.maxEntries): Promise<ZipEntry[]> {
  if (fileSize < 22) throw new ZipError(fileSize === 0 ? 'archive is empty (0 bytes)' : 'not a zip archive (too short)');
  const tailLen = Math.min(fileSize, 22 + 65535);
  const tail = await readAt(fh, fileSize - tailLen, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === SIG_EOCD && i + 22 + tail.readUInt16LE(i + 20) <= tail.length) { eocd = i; break; }
  }
  if (eocd < 0) throw new ZipError('not a zip archive (no end of central directory record)');
  const eocdPos = fileSize - tailLen + eocd;
  const disk = tail.readUInt16LE(eocd + 4);
  const cdDisk = tail.readUInt16LE(eocd + 6);
  let onDisk = tail.readUInt16LE(eocd + 8);
  let total = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (total === 0xffff || onDisk === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    if (eocdPos < 20) throw new ZipError('Zip64 end of central directory locator missing');
    const loc = await readAt(fh, eocdPos - 20, 20);
    if (loc.readUInt32LE(0) !== SIG_EOCD64_LOCATOR) throw new ZipError('Zip64 end of central directory locator missing');
    const z64Pos = u64(loc, 8);
    if (loc.readUInt32LE(16) > 1) throw new ZipError('multi-disk archives are not supported');
    if (z64Pos + 56 > eocdPos) throw new ZipError('Zip64 end of central directory record out of range');
    const z = await readAt(fh, z64Pos, 56);
    if (z.readUInt32LE(0) !== SIG_EOCD64) throw new ZipError('bad Zip64 end of central directory record');
    if (z.readUInt32LE(16) !== 0 || z.readUInt32LE(20) !== 0) throw new ZipError('multi-disk archives are not supported');
    onDisk = u64(z, 24); total = u64(z, 32); cdSize = u64(z, 40); cdOffset = u64(z, 48);
  } else if (disk !== 0 || cdDisk !== 0) {
    throw new ZipError('multi-disk archives are not supported');
  }
  if (onDisk !== total) throw new ZipError('multi-disk archives are not supported');
  if (total > maxEntries) throw new ZipError(`archive has ${total} entries; at most ${maxEntries} allowed`, 'ELIMIT');
  if (cdOffset + cdSize > eocdPos) throw new ZipError('central directory out of range (truncated archive?)');
  if (cdSize > 64 * 1024 * 1024) throw new ZipError('central directory larger than 64 MiB');
  const cd = await readAt(fh, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < total; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CEN) throw new ZipError(`bad central directory header #${i + 1}`);
    const madeBy = cd.readUInt16LE(p + 4) >> 8;
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let compressedSize = cd.readUInt32LE(p + 20);
    let size = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const startDisk = cd.readUInt16LE(p + 34);
    const external = cd.readUInt32LE(p + 38);
    let localOffset = cd.readUInt32LE(p + 42);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cd.length) throw new ZipError(`central directory header #${i + 1} runs past the directory`);
    const rawName = cd.subarray(p + 46, p + 46 + nameLen);
    const extra = cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    // Zip64 extended information: the 0xFFFFFFFF fields, in this order.
    if (size === 0xffffffff || compressedSize === 0xffffffff || localOffset === 0xffffffff) {
      let found = false;
      for (let q = 0; q + 4 <= extra.length;) {
        const id = extra.readUInt16LE(q); const len = extra.readUInt16LE(q + 2);
        if (q + 4 + len > extra.length) break;
        if (id === 0x0001) {
          let r = q + 4; const lim = q + 4 + len;
          const next = (): number => { if (r + 8 > lim) throw new ZipError('short Zip64 extra field'); const v = u64(extra, r); r += 8; return v; };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localOffset === 0xffffffff) localOffset = next();
          found = true;
          break;
        }
        q += 4 + len;
      }
      if (!found) throw new ZipError(`entry #${i + 1} lacks its Zip64 extra field`);
    }
    if (startDisk !== 0 && startDisk !== 0xffff) throw new ZipError('multi-disk archives are not supported');
    const name = decodeName(rawName, flags);
    const unixMode = madeBy === 3 ? (external >>> 16) & 0xffff : 0;
    entries.push({
      name, flags, method, crc, compressedSize, size, localOffset, unixMode, rawName: Buffer.from(rawName),
      isDir: name.endsWith('/'), isSymlink: (unixMode & S_IFMT) === S_IFLNK,
    });
    p = end;
  }
  return entries;
}

/** Counts bytes and CRC-32 and refuses output past `limit`. */
class Meter extends Transform {
  bytes = 0;
  crc = 0;
  constructor(private readonly limit: number, private readonly what: string) { super(); }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) { cb(new ZipError(`${this.what} inflates beyond its declared size of ${this.limit} bytes`, 'ELIMIT')); return; }
    this.crc = zlib.crc32(chunk, this.crc);
    cb(null, chunk);
  }
}

function errnoOf(e: unknown): string | undefined { return (e as NodeJS.ErrnoException)?.code; }

/** Free bytes for unprivileged writers on the file system holding `dir`. */
export function freeBytesOf(dir: string): number {
  const s = fs.statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}

/**
 * Extracts `zipPath` into `destDir` (a real path) safely (§4.4). Extraction goes to a fresh sibling staging directory
 * `.<basename>.unzip-<random>`; when complete (and `beforeCommit` agreed) its entries are moved into `destDir`, which
 * may already exist (it holds `config/`), replacing entries of the same names; `HandlerManifest.json` is moved last.
 * On any failure the staging directory is deleted and `destDir` is unchanged. Throws `ZipError` (or the file system
 * error, e.g. ENOSPC, as is).
 */
export async function extractZipSafely(zipPath: string, destDir: string, limits: ZipLimits = {}, opts: ExtractOptions = {}): Promise<{ files: number; bytes: number }> {
  const maxTotal = limits.maxTotalBytes ?? DEFAULT_ZIP_LIMITS.maxTotalBytes;
  const maxEntry = limits.maxEntryBytes ?? maxTotal;
  const maxEntries = limits.maxEntries ?? DEFAULT_ZIP_LIMITS.maxEntries;
  const skip = opts.skip ?? isAgentOwnedName;
  const parent = path.dirname(destDir);
  const fh = await fsp.open(zipPath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  let staging: string | undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ZipError(`${zipPath} is not a regular file`);
    const entries = await readCentralDirectory(fh, st.size, maxEntries);
    // Validate everything before writing a byte.
    let declared = 0;
    for (const e of entries) {
      if (e.flags & 0x1) throw new ZipError(`entry ${JSON.stringify(e.name)} is encrypted; encrypted packages are not supported`);
      if (e.method !== 0 && e.method !== 8) throw new ZipError(`entry ${JSON.stringify(e.name)} uses compression method ${e.method}; only stored (0) and deflate (8) are supported`);
      if (e.method === 0 && e.compressedSize !== e.size) throw new ZipError(`stored entry ${JSON.stringify(e.name)} has different compressed and uncompressed sizes`);
      if (e.size > maxEntry) throw new ZipError(`entry ${JSON.stringify(e.name)} declares ${e.size} bytes; at most ${maxEntry} allowed per entry`, 'ELIMIT');
      declared += e.size;
      if (e.localOffset + 30 + e.compressedSize > st.size) throw new ZipError(`entry ${JSON.stringify(e.name)} runs past the end of the archive (truncated?)`);
    }
    if (declared > maxTotal) throw new ZipError(`archive declares ${declared} bytes in total; at most ${maxTotal} allowed`, 'ELIMIT');
    const free = (opts.freeBytes ?? freeBytesOf)(parent);
    if (declared > free - FREE_SPACE_RESERVE) {
      throw new ZipError(`archive needs ${declared} bytes but the file system of ${parent} has ${free} bytes free (keeping ${FREE_SPACE_RESERVE} in reserve)`, 'ENOSPC');
    }

    staging = path.join(parent, `.${path.basename(destDir)}.unzip-${randomBytes(6).toString('hex')}`);
    await fsp.mkdir(staging, { mode: 0o700 });
    const made = new Set<string>(['']);
    const mkdirs = async (rel: string): Promise<void> => {
      if (made.has(rel)) return;
      await mkdirs(path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel));
      const abs = path.join(staging!, rel);
      try {
        await fsp.mkdir(abs, { mode: 0o755 });
        await fsp.chmod(abs, 0o755);
      } catch (e) {
        if (errnoOf(e) !== 'EEXIST') throw e;
        const l = await fsp.lstat(abs);
        if (!l.isDirectory()) throw new ZipError(`entry path ${JSON.stringify(rel)} is both a file and a directory`);
      }
      made.add(rel);
    };

    let files = 0; let bytes = 0; let warnings = 0;
    const warn = (msg: string): void => { if (++warnings <= 20) log.warn(msg); };
    for (const e of entries) {
      const rel = sanitizeEntryName(e.name);
      if (rel !== e.name.replace(/\/$/, '')) warn(`package entry ${JSON.stringify(e.name)} rewritten to ${JSON.stringify(rel)}`);
      if (rel === '') { warn(`package entry ${JSON.stringify(e.name)} has no usable name; skipped`); continue; }
      if (skip(rel)) { warn(`package entry ${JSON.stringify(e.name)} would replace an agent-owned file; skipped`); continue; }
      const abs = path.join(staging, rel);
      if (!abs.startsWith(staging + path.sep)) throw new ZipError(`entry ${JSON.stringify(e.name)} escapes the destination`);
      // Local header: same name, data offset.
      const loc = await readAt(fh, e.localOffset, 30);
      if (loc.readUInt32LE(0) !== SIG_LOC) throw new ZipError(`bad local header for ${JSON.stringify(e.name)}`);
      const lNameLen = loc.readUInt16LE(26); const lExtraLen = loc.readUInt16LE(28);
      const lName = await readAt(fh, e.localOffset + 30, lNameLen);
      if (!lName.equals(e.rawName)) throw new ZipError(`file name in directory ${JSON.stringify(e.name)} and header ${JSON.stringify(lName.toString('latin1'))} differ`);
      const dataStart = e.localOffset + 30 + lNameLen + lExtraLen;
      if (dataStart + e.compressedSize > st.size) throw new ZipError(`entry ${JSON.stringify(e.name)} runs past the end of the archive (truncated?)`);
      if (e.isDir) { await mkdirs(rel); continue; }
      await mkdirs(path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel));
      if (e.isSymlink) warn(`package entry ${JSON.stringify(e.name)} is a symlink; written as a regular file holding its target`);
      // Never follow a link, never write to a special file; a later duplicate replaces the earlier file.
      try {
        const l = await fsp.lstat(abs);
        if (l.isDirectory()) throw new ZipError(`entry ${JSON.stringify(e.name)} is a file but a directory of that name exists`);
        await fsp.unlink(abs);
      } catch (x) { if (errnoOf(x) !== 'ENOENT') throw x; }
      const meter = new Meter(e.size, `entry ${JSON.stringify(e.name)}`);
      const wflags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
      try {
        if (e.compressedSize === 0) {
          if (e.method === 8 || e.size !== 0) throw new ZipError(`entry ${JSON.stringify(e.name)} has no data`);
          await (await fsp.open(abs, wflags, 0o600)).close();
        } else {
          const src = fs.createReadStream(zipPath, { start: dataStart, end: dataStart + e.compressedSize - 1 });
          const sink = (await fsp.open(abs, wflags, 0o600)).createWriteStream();
          if (e.method === 8) await pipeline(src, zlib.createInflateRaw(), meter, sink);
          else await pipeline(src, meter, sink);
        }
        if (meter.bytes !== e.size) throw new ZipError(`entry ${JSON.stringify(e.name)} has ${meter.bytes} bytes, ${e.size} declared (corrupt or truncated archive)`);
        if ((meter.crc >>> 0) !== (e.crc >>> 0)) throw new ZipError(`Bad CRC-32 for file ${JSON.stringify(e.name)}`);
        // Created 0644 as Python would, then u+x as WALinuxAgent (§4.4 rules 4 and 11); the umask never applies.
        await fsp.chmod(abs, 0o744);
      } catch (x) {
        if (errnoOf(x)?.startsWith('Z_')) throw new ZipError(`entry ${JSON.stringify(e.name)}: corrupt deflate data (${(x as Error).message})`);
        throw x;
      }
      files++;
      bytes += meter.bytes;
    }
    if (warnings > 20) log.warn(`${warnings - 20} more package entry warnings not shown`);
    await opts.beforeCommit?.(staging);
    await commit(staging, destDir);
    staging = undefined;
    return { files, bytes };
  } finally {
    await fh.close();
    if (staging) await fsp.rm(staging, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Moves the staging directory's entries into `destDir` (created 0755 if absent), HandlerManifest.json last. */
async function commit(staging: string, destDir: string): Promise<void> {
  let exists = true;
  try {
    const l = await fsp.lstat(destDir);
    if (!l.isDirectory()) throw new ZipError(`${destDir} exists and is not a directory`);
  } catch (e) { if (errnoOf(e) === 'ENOENT') exists = false; else throw e; }
  if (!exists) {
    await fsp.chmod(staging, 0o755);
    try { await fsp.rename(staging, destDir); return; } catch (e) { if (errnoOf(e) !== 'EEXIST' && errnoOf(e) !== 'ENOTEMPTY') throw e; }
  }
  const names = (await fsp.readdir(staging)).sort((a, b) => Number(a === 'HandlerManifest.json') - Number(b === 'HandlerManifest.json'));
  for (const n of names) {
    const to = path.join(destDir, n);
    await fsp.rm(to, { recursive: true, force: true });
    await fsp.rename(path.join(staging, n), to);
  }
  await fsp.rm(staging, { recursive: true, force: true });
}
