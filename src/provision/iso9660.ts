/**
 * Reads one named file (normally `ovf-env.xml`) from the root directory of an ISO9660 image — a block device such as
 * /dev/sr0 or an image file — without mounting it (provisioning-and-os.md §3.4: this works on kernels without the
 * iso9660 module and never races an eject). Names come from Joliet (preferred), Rock Ridge `NM`, or the primary
 * ISO9660 name (`OVF-ENV.XML;1`). Every offset and length is checked against the medium size and every loop is
 * bounded, so a truncated or hostile image gives a `MediaError`, never a hang or a huge allocation.
 *
 * Also home of the bounded reader that the UDF reader shares (`openBoundedReader`).
 */
import * as fs from 'node:fs';

/** A malformed, truncated or unsupported medium, or the file is not on it. */
export class MediaError extends Error {
  constructor(msg: string, readonly notFound = false) { super(msg); this.name = 'MediaError'; }
}

/** Largest file the readers return (ovf-env.xml is a few KiB; CustomData makes it at most a few hundred). */
export const MAX_FILE_BYTES = 1024 * 1024;
/** Largest directory the readers scan. */
export const MAX_DIR_BYTES = 4 * 1024 * 1024;

/** Random access to a medium of known size; reads outside it throw `MediaError`. */
export interface BoundedReader {
  readonly size: number;
  readonly name: string;
  readAt(offset: number, length: number): Buffer;
  close(): void;
}

/** A bounded reader over an in-memory buffer (tests, and images already read). */
export function bufferReader(buf: Buffer, name = 'buffer'): BoundedReader {
  return {
    size: buf.length, name,
    readAt(offset, length) {
      checkRange(offset, length, buf.length, name);
      return Buffer.from(buf.subarray(offset, offset + length));
    },
    close() { /* nothing */ },
  };
}

function checkRange(offset: number, length: number, size: number, name: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new MediaError(`${name}: invalid read at ${offset} length ${length}`);
  }
  if (length > MAX_DIR_BYTES + 65536) throw new MediaError(`${name}: read of ${length} bytes refused`);
  if (offset + length > size) throw new MediaError(`${name}: truncated medium (read at ${offset}+${length} beyond size ${size})`);
}

/**
 * Opens a block device or image file read-only. The size is fstat's for a file; for a block device it is taken from
 * sysfs (`/sys/dev/block/<major>:<minor>/size`, under `sysDir`) or, failing that, found by probing reads. Errors
 * (missing device, no medium) are thrown as they come from the system.
 */
export function openBoundedReader(path: string, sysDir = '/sys'): BoundedReader {
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    let size: number;
    if (st.isFile()) size = st.size;
    else if (st.isBlockDevice()) size = blockDeviceSize(fd, st.rdev, sysDir);
    else throw new MediaError(`${path} is neither a block device nor a regular file`);
    let closed = false;
    return {
      size, name: path,
      readAt(offset, length) {
        checkRange(offset, length, size, path);
        const buf = Buffer.alloc(length);
        let n = 0;
        for (let i = 0; n < length && i < 1000; i++) {
          const r = fs.readSync(fd, buf, n, length - n, offset + n);
          if (r === 0) break;
          n += r;
        }
        if (n < length) throw new MediaError(`${path}: short read at ${offset} (${n} of ${length} bytes)`);
        return buf;
      },
      close() { if (!closed) { closed = true; fs.closeSync(fd); } },
    };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

function blockDeviceSize(fd: number, rdev: number, sysDir: string): number {
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | ((Math.floor(rdev / 4096) & 0xfff00));
  try {
    const sectors = fs.readFileSync(`${sysDir}/dev/block/${major}:${minor}/size`, 'utf8').trim();
    if (/^\d+$/.test(sectors)) return Number(sectors) * 512;
  } catch { /* probe instead */ }
  // Probe: the largest offset at which one byte can be read (bounded: ~2 × 48 reads).
  const one = Buffer.alloc(1);
  const readable = (off: number): boolean => { try { return fs.readSync(fd, one, 0, 1, off) === 1; } catch { return false; } };
  if (!readable(0)) return 0;
  let lo = 0; let hi = 1;
  while (hi < 2 ** 47 && readable(hi)) { lo = hi; hi *= 2; }
  while (hi - lo > 1) { const mid = Math.floor((lo + hi) / 2); if (readable(mid)) lo = mid; else hi = mid; }
  return lo + 1;
}

/** True when `name` (as stored on the medium, any case, `;1` version and trailing dot dropped) is `wanted`. */
export function nameMatches(stored: string, wanted: string): boolean {
  const n = stored.replace(/;\d*$/, '').replace(/\.$/, '').toLowerCase();
  return n === wanted.toLowerCase();
}

interface DirRecord { name: string; rrName?: string; extent: number; size: number; flags: number; extAttrLen: number }

const SECTOR = 2048;
const MAX_DESCRIPTORS = 64;

/** True when the medium carries an ISO9660 volume descriptor at sector 16. */
export function isIso9660(r: BoundedReader): boolean {
  if (r.size < 17 * SECTOR) return false;
  const vd = r.readAt(16 * SECTOR, 7);
  return vd.toString('latin1', 1, 6) === 'CD001';
}

/**
 * Returns the content of the file `wanted` (case-insensitive) in the root directory. Throws `MediaError` (with
 * `notFound` set when the image is sound but has no such file).
 */
export function readIsoFile(r: BoundedReader, wanted = 'ovf-env.xml'): Buffer {
  if (!isIso9660(r)) throw new MediaError(`${r.name}: no ISO9660 volume descriptor at sector 16`);
  let primary: Buffer | undefined; let joliet: Buffer | undefined;
  for (let i = 0; i < MAX_DESCRIPTORS; i++) {
    const off = (16 + i) * SECTOR;
    if (off + SECTOR > r.size) throw new MediaError(`${r.name}: volume descriptor set not terminated before the end of the medium`);
    const vd = r.readAt(off, SECTOR);
    if (vd.toString('latin1', 1, 6) !== 'CD001') throw new MediaError(`${r.name}: bad volume descriptor at sector ${16 + i}`);
    const type = vd[0];
    if (type === 255) break;
    if (type === 1 && !primary) primary = vd;
    if (type === 2 && !joliet && vd[88] === 0x25 && vd[89] === 0x2f && [0x40, 0x43, 0x45].includes(vd[90])) joliet = vd;
    if (i === MAX_DESCRIPTORS - 1) throw new MediaError(`${r.name}: more than ${MAX_DESCRIPTORS} volume descriptors`);
  }
  if (!primary) throw new MediaError(`${r.name}: no primary volume descriptor`);
  const tried: string[] = [];
  for (const [vd, isJoliet] of [[joliet, true], [primary, false]] as const) {
    if (!vd) continue;
    const blockSize = vd.readUInt16LE(128);
    if (![512, 1024, 2048].includes(blockSize)) throw new MediaError(`${r.name}: unsupported logical block size ${blockSize}`);
    const root = parseRecord(vd, 156, isJoliet, r.name);
    if (!root || !(root.flags & 2)) throw new MediaError(`${r.name}: bad root directory record`);
    const entries = readDirectory(r, root, blockSize, isJoliet);
    for (const e of entries) {
      if (e.flags & 2) continue;
      const names = isJoliet ? [e.name] : [e.rrName, e.name].filter((x): x is string => !!x);
      // A plain ISO9660 level-1 name cannot hold '-': mkisofs writes OVF_ENV.XML;1, accepted as the same file.
      const hit = names.some((n) => nameMatches(n, wanted)) || (!isJoliet && !e.rrName && nameMatches(e.name.replace(/_/g, '-'), wanted));
      if (!hit) continue;
      if (e.flags & 0x80) throw new MediaError(`${r.name}: ${wanted} is a multi-extent file (unsupported)`);
      if (e.size > MAX_FILE_BYTES) throw new MediaError(`${r.name}: ${wanted} is larger than ${MAX_FILE_BYTES} bytes`);
      return r.readAt((e.extent + e.extAttrLen) * blockSize, e.size);
    }
    tried.push(isJoliet ? 'Joliet' : 'primary');
  }
  throw new MediaError(`${r.name}: ${wanted} not found in the root directory (${tried.join(', ')})`, true);
}

function readDirectory(r: BoundedReader, dir: DirRecord, blockSize: number, isJoliet: boolean): DirRecord[] {
  if (dir.size > MAX_DIR_BYTES) throw new MediaError(`${r.name}: root directory of ${dir.size} bytes is too large`);
  const data = r.readAt((dir.extent + dir.extAttrLen) * blockSize, dir.size);
  const out: DirRecord[] = [];
  let pos = 0;
  while (pos < data.length) {
    const len = data[pos];
    if (len === 0) {
      // Records do not cross sector boundaries: the rest of this sector is padding.
      pos = (Math.floor(pos / SECTOR) + 1) * SECTOR;
      continue;
    }
    if (len < 34 || pos + len > data.length) throw new MediaError(`${r.name}: bad directory record at offset ${pos}`);
    const rec = parseRecord(data.subarray(pos, pos + len), 0, isJoliet, r.name);
    if (rec) out.push(rec);
    pos += len;
  }
  return out;
}

/** Parses one directory record; `undefined` for the `.` and `..` entries. */
function parseRecord(buf: Buffer, at: number, isJoliet: boolean, medium: string): DirRecord | undefined {
  const len = buf[at];
  if (len < 34 || at + len > buf.length) throw new MediaError(`${medium}: bad directory record`);
  const nameLen = buf[at + 32];
  if (33 + nameLen > len) throw new MediaError(`${medium}: directory record name overruns the record`);
  const raw = buf.subarray(at + 33, at + 33 + nameLen);
  const rec: DirRecord = {
    name: '', extent: buf.readUInt32LE(at + 2), size: buf.readUInt32LE(at + 10), flags: buf[at + 25], extAttrLen: buf[at + 1],
  };
  if (nameLen === 1 && (raw[0] === 0 || raw[0] === 1)) { rec.name = raw[0] === 0 ? '.' : '..'; return at === 156 ? rec : undefined; }
  rec.name = isJoliet ? ucs2be(raw) : raw.toString('latin1');
  if (!isJoliet) {
    // Rock Ridge: SUSP entries in the system use area after the name (and its pad byte).
    let p = 33 + nameLen + (nameLen % 2 === 0 ? 1 : 0);
    let rr = '';
    for (let i = 0; i < 64 && p + 4 <= len; i++) {
      const sig = buf.toString('latin1', at + p, at + p + 2);
      const elen = buf[at + p + 2];
      if (elen < 4 || p + elen > len) break;
      if (sig === 'NM' && elen >= 5) {
        const flags = buf[at + p + 4];
        if (!(flags & 0x06)) rr += buf.toString('utf8', at + p + 5, at + p + elen);
      }
      if (sig === 'ST') break;
      p += elen;
    }
    if (rr) rec.rrName = rr;
  }
  return rec;
}

function ucs2be(b: Buffer): string {
  let s = '';
  for (let i = 0; i + 1 < b.length; i += 2) s += String.fromCharCode(b.readUInt16BE(i));
  return s;
}
