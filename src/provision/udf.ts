/**
 * Reads one named file (normally `ovf-env.xml`) from the root directory of a UDF medium (ECMA-167 / OSTA UDF 1.02 to
 * 2.60) straight from a block device or image, without mounting it (Azure's provisioning DVD is UDF; the kernel's
 * udf module may be missing or blacklisted). Path followed: anchor volume descriptor pointer (sector 256) → volume
 * descriptor sequence (partition and logical volume descriptors, following pointers) → file set descriptor → root
 * directory ICB (file entry or extended file entry) → file identifier descriptors → the file's ICB → its data (short,
 * long or extended allocation descriptors, or data embedded in the ICB). Type-1 partitions, sparable partitions
 * (read as type 1) and the UDF 2.50 metadata partition are supported; a virtual (VAT) partition is not.
 * Descriptor tags are checked (checksum, CRC, location); every offset and length is checked against the medium
 * size and every loop is bounded: a truncated or hostile image gives a `MediaError`.
 */
import { MediaError, MAX_FILE_BYTES, MAX_DIR_BYTES, nameMatches, type BoundedReader } from './iso9660';

const TAG = { PVD: 1, AVDP: 2, VDP: 3, IUVD: 4, PD: 5, LVD: 6, USD: 7, TD: 8, LVID: 9, FSD: 256, FID: 257, AED: 258, FE: 261, EFE: 266 };
const MAX_VDS_SECTORS = 256;
const MAX_EXTENTS = 256;

/** CRC-ITU-T (polynomial 0x1021, initial 0) used by descriptor tags. */
export function udfCrc(buf: Buffer): number {
  let crc = 0;
  for (const b of buf) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

interface Tag { id: number; location: number }

/** Validates a descriptor tag at the start of `buf` (read from sector/block `location`); returns the tag id. */
function checkTag(buf: Buffer, location: number | undefined, medium: string): Tag {
  if (buf.length < 16) throw new MediaError(`${medium}: truncated descriptor`);
  let sum = 0;
  for (let i = 0; i < 16; i++) if (i !== 4) sum = (sum + buf[i]) & 0xff;
  const id = buf.readUInt16LE(0);
  if (sum !== buf[4]) throw new MediaError(`${medium}: descriptor tag checksum mismatch (tag ${id}${location !== undefined ? ` at block ${location}` : ''})`);
  const crcLen = buf.readUInt16LE(10);
  if (16 + crcLen <= buf.length && crcLen > 0 && udfCrc(buf.subarray(16, 16 + crcLen)) !== buf.readUInt16LE(8)) {
    throw new MediaError(`${medium}: descriptor CRC mismatch (tag ${id})`);
  }
  const tagLoc = buf.readUInt32LE(12);
  if (location !== undefined && tagLoc !== location) throw new MediaError(`${medium}: descriptor tag ${id} records location ${tagLoc}, found at ${location}`);
  return { id, location: tagLoc };
}

/** Decodes an OSTA CS0 d-string/file identifier (compression id 8 = Latin-1, 16 = UCS-2 big endian). */
export function decodeCs0(b: Buffer): string {
  if (b.length === 0) return '';
  const comp = b[0];
  if (comp === 8 || comp === 254) return b.toString('latin1', 1);
  if (comp === 16 || comp === 255) {
    let s = '';
    for (let i = 1; i + 1 < b.length; i += 2) s += String.fromCharCode(b.readUInt16BE(i));
    return s;
  }
  return '';
}

interface Extent { block: number; length: number; partRef: number; recorded: boolean }

interface Volume {
  r: BoundedReader;
  sector: number;
  blockSize: number;
  /** Partition reference → physical start sector (type 1) or a metadata mapping. */
  maps: ({ kind: 'physical'; start: number; length: number } | { kind: 'metadata'; physRef: number; fileLoc: number; extents?: Extent[] })[];
}

/** True when a UDF anchor is found at sector 256 (2048-byte, 512-byte or 4096-byte sectors). */
export function isUdf(r: BoundedReader): boolean {
  return findAnchor(r) !== undefined;
}

function findAnchor(r: BoundedReader): { sector: number; avdp: Buffer } | undefined {
  for (const sector of [2048, 512, 4096, 1024]) {
    const off = 256 * sector;
    if (off + 512 > r.size) continue;
    const b = r.readAt(off, 512);
    if (b.readUInt16LE(0) !== TAG.AVDP) continue;
    try { checkTag(b, 256, r.name); } catch { continue; }
    return { sector, avdp: b };
  }
  return undefined;
}

/**
 * Returns the content of the file `wanted` (case-insensitive) in the root directory of the UDF volume. Throws
 * `MediaError` (with `notFound` when the volume is sound but holds no such file).
 */
export function readUdfFile(r: BoundedReader, wanted = 'ovf-env.xml'): Buffer {
  const anchor = findAnchor(r);
  if (!anchor) throw new MediaError(`${r.name}: no UDF anchor volume descriptor pointer at sector 256`);
  const { sector } = anchor;
  const vol: Volume = { r, sector, blockSize: sector, maps: [] };
  const partitions = new Map<number, { start: number; length: number }>();
  let lvd: Buffer | undefined;

  // Main volume descriptor sequence (the reserve copy when the main one is unreadable).
  const seqs = [[anchor.avdp.readUInt32LE(20), anchor.avdp.readUInt32LE(16)], [anchor.avdp.readUInt32LE(28), anchor.avdp.readUInt32LE(24)]];
  let lastErr: Error | undefined;
  for (const [loc0, len0] of seqs) {
    try {
      partitions.clear(); lvd = undefined;
      let loc = loc0; let count = Math.min(Math.floor(len0 / sector), MAX_VDS_SECTORS);
      let pointers = 0; let total = 0;
      while (count > 0 && total++ < MAX_VDS_SECTORS) {
        const d = r.readAt(loc * sector, sector);
        const tag = checkTag(d, loc, r.name);
        if (tag.id === TAG.TD || tag.id === 0) break;
        if (tag.id === TAG.PD) {
          const num = d.readUInt16LE(22);
          if (!partitions.has(num)) partitions.set(num, { start: d.readUInt32LE(188), length: d.readUInt32LE(192) });
        } else if (tag.id === TAG.LVD) {
          lvd ??= Buffer.from(d);
        } else if (tag.id === TAG.VDP) {
          if (++pointers > 8) throw new MediaError(`${r.name}: too many volume descriptor pointers`);
          loc = d.readUInt32LE(24); count = Math.min(Math.floor(d.readUInt32LE(20) / sector), MAX_VDS_SECTORS);
          continue;
        }
        loc++; count--;
      }
      if (!lvd) throw new MediaError(`${r.name}: no logical volume descriptor`);
      if (partitions.size === 0) throw new MediaError(`${r.name}: no partition descriptor`);
      lastErr = undefined;
      break;
    } catch (e) { lastErr = e as Error; }
  }
  if (lastErr || !lvd) throw lastErr ?? new MediaError(`${r.name}: no logical volume descriptor`);

  vol.blockSize = lvd.readUInt32LE(212);
  if (vol.blockSize !== sector) throw new MediaError(`${r.name}: logical block size ${vol.blockSize} differs from sector size ${sector}`);
  const mapTableLen = lvd.readUInt32LE(264);
  const nMaps = lvd.readUInt32LE(268);
  if (nMaps > 16 || 440 + mapTableLen > lvd.length) throw new MediaError(`${r.name}: bad partition map table`);
  let p = 440;
  for (let i = 0; i < nMaps; i++) {
    if (p + 2 > 440 + mapTableLen) throw new MediaError(`${r.name}: partition map ${i} overruns the table`);
    const type = lvd[p]; const len = lvd[p + 1];
    if (len < 6 || p + len > 440 + mapTableLen) throw new MediaError(`${r.name}: bad partition map ${i}`);
    if (type === 1) {
      const part = partitions.get(lvd.readUInt16LE(p + 4));
      if (!part) throw new MediaError(`${r.name}: partition ${lvd.readUInt16LE(p + 4)} has no descriptor`);
      vol.maps.push({ kind: 'physical', ...part });
    } else if (type === 2 && len >= 64) {
      const ident = lvd.toString('latin1', p + 5, p + 28).replace(/\0+$/, '');
      const part = partitions.get(lvd.readUInt16LE(p + 38));
      if (!part) throw new MediaError(`${r.name}: partition ${lvd.readUInt16LE(p + 38)} has no descriptor`);
      if (ident.startsWith('*UDF Sparable Partition')) vol.maps.push({ kind: 'physical', ...part });
      else if (ident.startsWith('*UDF Metadata Partition')) {
        const physRef = vol.maps.findIndex((m) => m.kind === 'physical' && m.start === part.start);
        vol.maps.push({ kind: 'metadata', physRef: physRef >= 0 ? physRef : 0, fileLoc: lvd.readUInt32LE(p + 40) });
      } else throw new MediaError(`${r.name}: unsupported partition type ${JSON.stringify(ident)}`);
    } else throw new MediaError(`${r.name}: unsupported partition map type ${type}`);
    p += len;
  }
  // Physical maps listed after the metadata map: resolve the metadata map's physical partition again.
  for (const m of vol.maps) if (m.kind === 'metadata' && vol.maps[m.physRef]?.kind !== 'physical') {
    m.physRef = vol.maps.findIndex((x) => x.kind === 'physical');
  }

  // File set descriptor (long_ad in the logical volume contents use).
  const fsdBlock = lvd.readUInt32LE(252); const fsdRef = lvd.readUInt16LE(256);
  const fsd = readBlock(vol, fsdRef, fsdBlock);
  if (checkTag(fsd, fsdBlock, r.name).id !== TAG.FSD) throw new MediaError(`${r.name}: no file set descriptor at block ${fsdBlock}`);
  const rootBlock = fsd.readUInt32LE(404); const rootRef = fsd.readUInt16LE(408);

  const rootIcb = readIcb(vol, rootRef, rootBlock);
  if (rootIcb.fileType !== 4) throw new MediaError(`${r.name}: root ICB is not a directory (file type ${rootIcb.fileType})`);
  if (rootIcb.size > MAX_DIR_BYTES) throw new MediaError(`${r.name}: root directory of ${rootIcb.size} bytes is too large`);
  const dir = icbData(vol, rootIcb);

  let pos = 0;
  for (let n = 0; pos + 38 <= dir.length && n < 100000; n++) {
    const tag = checkTag(dir.subarray(pos, pos + 16 + Math.min(dir.readUInt16LE(pos + 10), dir.length - pos - 16)), undefined, r.name);
    if (tag.id !== TAG.FID) throw new MediaError(`${r.name}: bad file identifier descriptor (tag ${tag.id}) in the root directory`);
    const chars = dir[pos + 18]; const lFi = dir[pos + 19]; const lIu = dir.readUInt16LE(pos + 36);
    const total = Math.ceil((38 + lIu + lFi) / 4) * 4;
    if (pos + 38 + lIu + lFi > dir.length) throw new MediaError(`${r.name}: file identifier descriptor overruns the directory`);
    const name = decodeCs0(dir.subarray(pos + 38 + lIu, pos + 38 + lIu + lFi));
    if (!(chars & 0x0e) && nameMatches(name, wanted)) {
      const icb = readIcb(vol, dir.readUInt16LE(pos + 28), dir.readUInt32LE(pos + 24));
      if (icb.fileType === 4) throw new MediaError(`${r.name}: ${wanted} is a directory`);
      if (icb.size > MAX_FILE_BYTES) throw new MediaError(`${r.name}: ${wanted} is larger than ${MAX_FILE_BYTES} bytes`);
      return icbData(vol, icb);
    }
    pos += total;
  }
  throw new MediaError(`${r.name}: ${wanted} not found in the UDF root directory`, true);
}

/** Reads one logical block of partition `ref`. */
function readBlock(vol: Volume, ref: number, block: number): Buffer {
  return vol.r.readAt(physicalSector(vol, ref, block) * vol.sector, vol.blockSize);
}

function physicalSector(vol: Volume, ref: number, block: number, depth = 0): number {
  const m = vol.maps[ref];
  if (!m) throw new MediaError(`${vol.r.name}: reference to unknown partition ${ref}`);
  if (m.kind === 'physical') {
    if (block >= m.length && m.length > 0) throw new MediaError(`${vol.r.name}: block ${block} outside partition ${ref} (${m.length} blocks)`);
    return m.start + block;
  }
  if (depth > 0) throw new MediaError(`${vol.r.name}: nested metadata partition`);
  if (!m.extents) {
    const icb = readIcb(vol, m.physRef, m.fileLoc);
    m.extents = icb.extents.map((e) => ({ ...e, partRef: m.physRef }));
  }
  let base = 0;
  for (const e of m.extents) {
    const blocks = Math.ceil(e.length / vol.blockSize);
    if (block < base + blocks) return physicalSector(vol, e.partRef, e.block + (block - base), depth + 1);
    base += blocks;
  }
  throw new MediaError(`${vol.r.name}: block ${block} outside the metadata partition`);
}

interface Icb { fileType: number; size: number; extents: Extent[]; embedded?: Buffer }

/** Reads a file entry or extended file entry and its allocation descriptors. */
function readIcb(vol: Volume, ref: number, block: number): Icb {
  const name = vol.r.name;
  const b = readBlock(vol, ref, block);
  const tag = checkTag(b, block, name);
  let lEa: number; let lAd: number; let adStart: number;
  if (tag.id === TAG.FE) { lEa = b.readUInt32LE(168); lAd = b.readUInt32LE(172); adStart = 176 + lEa; }
  else if (tag.id === TAG.EFE) { lEa = b.readUInt32LE(208); lAd = b.readUInt32LE(212); adStart = 216 + lEa; }
  else throw new MediaError(`${name}: expected a file entry at block ${block}, found tag ${tag.id}`);
  if (adStart + lAd > b.length) throw new MediaError(`${name}: allocation descriptors overrun the file entry at block ${block}`);
  const fileType = b[16 + 11];
  const sizeHi = b.readUInt32LE(60); const size = b.readUInt32LE(56);
  if (sizeHi !== 0) throw new MediaError(`${name}: file at block ${block} is too large`);
  const adType = b.readUInt16LE(16 + 18) & 7;
  const ads = b.subarray(adStart, adStart + lAd);
  if (adType === 3) {
    if (size > ads.length) throw new MediaError(`${name}: embedded data shorter than the file size at block ${block}`);
    return { fileType, size, extents: [], embedded: Buffer.from(ads.subarray(0, size)) };
  }
  const extents: Extent[] = [];
  const step = adType === 0 ? 8 : adType === 1 ? 16 : adType === 2 ? 20 : 0;
  if (!step) throw new MediaError(`${name}: unknown allocation descriptor type ${adType}`);
  for (let p = 0; p + step <= ads.length; p += step) {
    const raw = ads.readUInt32LE(p);
    const len = raw & 0x3fffffff; const kind = raw >>> 30;
    if (len === 0) break;
    if (kind === 3) throw new MediaError(`${name}: allocation extent continuation at block ${block} (unsupported)`);
    if (extents.length >= MAX_EXTENTS) throw new MediaError(`${name}: too many extents at block ${block}`);
    if (adType === 0) extents.push({ length: len, block: ads.readUInt32LE(p + 4), partRef: ref, recorded: kind === 0 });
    else if (adType === 1) extents.push({ length: len, block: ads.readUInt32LE(p + 4), partRef: ads.readUInt16LE(p + 8), recorded: kind === 0 });
    else extents.push({ length: len, block: ads.readUInt32LE(p + 12), partRef: ads.readUInt16LE(p + 16), recorded: kind === 0 });
  }
  return { fileType, size, extents };
}

/** The content of a file or directory (size already capped by the caller). */
function icbData(vol: Volume, icb: Icb): Buffer {
  if (icb.embedded) return icb.embedded;
  const out = Buffer.alloc(icb.size);
  let done = 0;
  for (const e of icb.extents) {
    if (done >= icb.size) break;
    const want = Math.min(e.length, icb.size - done);
    if (e.recorded) {
      // Read block by block so that a metadata-partition extent maps correctly.
      for (let off = 0; off < want; off += vol.blockSize) {
        const blk = readBlock(vol, e.partRef, e.block + off / vol.blockSize);
        blk.copy(out, done + off, 0, Math.min(vol.blockSize, want - off));
      }
    } // unrecorded extents read as zeros
    done += want;
  }
  if (done < icb.size) throw new MediaError(`${vol.r.name}: allocation descriptors cover ${done} of ${icb.size} bytes`);
  return out;
}
