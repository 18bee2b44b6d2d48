// Test helper (not a test): builds a minimal UDF image following ECMA-167 / OSTA UDF, so that the UDF reader can be
// checked without mkudffs (which cannot add files without mounting) and with layouts real tools do not produce.
import { udfCrc } from '../../src/provision/udf';

export const S = 2048;
export const UDF_XML = '<?xml version="1.0"?><Environment xmlns="http://schemas.dmtf.org/ovf/environment/1">udf ✓</Environment>';

/** Finishes a descriptor tag in place: id, version, location, CRC over the body, checksum. */
export function tag(b: Buffer, id: number, loc: number, len = b.length): Buffer {
  b.writeUInt16LE(id, 0); b.writeUInt16LE(2, 2); b[5] = 0; b.writeUInt16LE(0, 6);
  b.writeUInt16LE(len - 16, 10);
  b.writeUInt16LE(udfCrc(b.subarray(16, len)), 8);
  b.writeUInt32LE(loc, 12);
  let sum = 0; for (let i = 0; i < 16; i++) if (i !== 4) sum = (sum + b[i]) & 0xff;
  b[4] = sum;
  return b;
}

export function cs0(name: string, comp: 8 | 16): Buffer {
  if (comp === 8) return Buffer.concat([Buffer.from([8]), Buffer.from(name, 'latin1')]);
  const b = Buffer.alloc(1 + name.length * 2); b[0] = 16;
  for (let i = 0; i < name.length; i++) b.writeUInt16BE(name.charCodeAt(i), 1 + 2 * i);
  return b;
}

export interface BuildOpts {
  entry?: 'fe' | 'efe';
  ad?: 'short' | 'long' | 'embedded';
  name?: string;
  comp?: 8 | 16;
  content?: Buffer;
  metadata?: boolean;
  extraNames?: string[];
}

/**
 * A minimal UDF volume: VRS at 16–18, PD/LVD/TD at 32–34, AVDP at 256, partition from sector 260. Blocks in the
 * partition: 0 FSD, 1 root ICB, 2 root directory, 3 file ICB, 4.. file data. With `metadata`, the FSD, root ICB,
 * directory and file ICB sit in a metadata partition whose file (at physical block 40) maps them to blocks 50–53.
 */
export function buildUdf(o: BuildOpts = {}): Buffer {
  const content = o.content ?? Buffer.from(UDF_XML);
  const partStart = 260; const partLen = 200;
  const img = Buffer.alloc((partStart + partLen + 16) * S);
  const put = (sector: number, b: Buffer) => b.copy(img, sector * S);
  for (const [i, id] of [[16, 'BEA01'], [17, 'NSR02'], [18, 'TEA01']] as const) {
    const v = Buffer.alloc(S); v[0] = 0; v.write(id, 1, 'latin1'); v[6] = 1; put(i, v);
  }
  // Partition descriptor.
  const pd = Buffer.alloc(512); pd.writeUInt16LE(0, 22); pd.writeUInt32LE(partStart, 188); pd.writeUInt32LE(partLen, 192);
  pd.write('+NSR02', 25, 'latin1');
  put(32, tag(pd, 5, 32));
  // Logical volume descriptor with one or two partition maps.
  const lvd = Buffer.alloc(512);
  lvd.writeUInt32LE(S, 212);
  lvd.write('*OSTA UDF Compliant', 217, 'latin1');
  const mdRef = o.metadata ? 1 : 0;
  lvd.writeUInt32LE(S, 248); lvd.writeUInt32LE(0, 252); lvd.writeUInt16LE(mdRef, 256);
  const maps: Buffer[] = [];
  const t1 = Buffer.alloc(6); t1[0] = 1; t1[1] = 6; t1.writeUInt16LE(1, 2); t1.writeUInt16LE(0, 4); maps.push(t1);
  if (o.metadata) {
    const t2 = Buffer.alloc(64); t2[0] = 2; t2[1] = 64; t2.write('*UDF Metadata Partition', 5, 'latin1');
    t2.writeUInt16LE(1, 36); t2.writeUInt16LE(0, 38); t2.writeUInt32LE(40, 40); t2.writeUInt32LE(0xffffffff, 44); t2.writeUInt32LE(0xffffffff, 48);
    maps.push(t2);
  }
  const mt = Buffer.concat(maps);
  lvd.writeUInt32LE(mt.length, 264); lvd.writeUInt32LE(maps.length, 268); mt.copy(lvd, 440);
  put(33, tag(lvd, 6, 33, 440 + mt.length));
  put(34, tag(Buffer.alloc(512), 8, 34));
  // Anchor.
  const avdp = Buffer.alloc(512);
  avdp.writeUInt32LE(16 * S, 16); avdp.writeUInt32LE(32, 20); avdp.writeUInt32LE(16 * S, 24); avdp.writeUInt32LE(32, 28);
  put(256, tag(avdp, 2, 256));

  // Metadata-partition logical block → physical block.
  const phys = (mdBlock: number) => (o.metadata ? 50 + mdBlock : mdBlock);
  const putBlock = (mdBlock: number, b: Buffer) => put(partStart + phys(mdBlock), b);
  const dataBlock = 4; // physical block of the file data (partition 0)

  // File set descriptor.
  const fsd = Buffer.alloc(512);
  fsd.writeUInt32LE(S, 400); fsd.writeUInt32LE(1, 404); fsd.writeUInt16LE(mdRef, 408);
  putBlock(0, tag(fsd, 256, 0));

  const icb = (fileType: number, size: number, adType: number, ads: Buffer, loc: number, ref: number, efe: boolean): Buffer => {
    const b = Buffer.alloc(S);
    b.writeUInt16LE(4, 16 + 4); b.writeUInt16LE(1, 16 + 8); b[16 + 11] = fileType; b.writeUInt16LE(adType, 16 + 18);
    b.writeUInt32LE(size, 56);
    const lEaAt = efe ? 208 : 168; const adAt = efe ? 216 : 176;
    b.writeUInt32LE(0, lEaAt); b.writeUInt32LE(ads.length, lEaAt + 4); ads.copy(b, adAt);
    void ref;
    return tag(b, efe ? 266 : 261, loc, adAt + ads.length);
  };
  const shortAd = (len: number, block: number) => { const a = Buffer.alloc(8); a.writeUInt32LE(len, 0); a.writeUInt32LE(block, 4); return a; };
  const longAd = (len: number, block: number, ref: number) => { const a = Buffer.alloc(16); a.writeUInt32LE(len, 0); a.writeUInt32LE(block, 4); a.writeUInt16LE(ref, 8); return a; };

  // Root directory: parent FID + one FID per name.
  const fid = (name: string | null, icbBlock: number, isDir: boolean, ref: number): Buffer => {
    const id = name === null ? Buffer.alloc(0) : cs0(name, o.comp ?? 8);
    const len = Math.ceil((38 + id.length) / 4) * 4;
    const b = Buffer.alloc(len);
    b.writeUInt16LE(1, 16); b[18] = (isDir ? 2 : 0) | (name === null ? 8 : 0); b[19] = id.length;
    b.writeUInt32LE(S, 20); b.writeUInt32LE(icbBlock, 24); b.writeUInt16LE(ref, 28);
    id.copy(b, 38);
    return tag(b, 257, 2, len);
  };
  const names = [...(o.extraNames ?? []), o.name ?? 'ovf-env.xml'];
  const dir = Buffer.concat([fid(null, 1, true, mdRef), ...names.map((n) => fid(n, 3, false, mdRef))]);
  putBlock(2, dir);
  const efe = o.entry === 'efe';
  putBlock(1, icb(4, dir.length, 0, shortAd(dir.length, 2), 1, mdRef, efe));

  // The file.
  const ad = o.ad ?? 'short';
  if (ad === 'embedded') putBlock(3, icb(5, content.length, 3, content, 3, mdRef, efe));
  else {
    const blocks = Math.ceil(content.length / S);
    if (ad === 'long' || o.metadata) putBlock(3, icb(5, content.length, 1, longAd(content.length, dataBlock, 0), 3, mdRef, efe));
    else putBlock(3, icb(5, content.length, 0, shortAd(content.length, dataBlock), 3, mdRef, efe));
    content.copy(img, (partStart + dataBlock) * S);
    if (dataBlock + blocks >= 40) throw new Error('test image layout: content too large');
  }
  if (o.metadata) {
    // Metadata file (file type 250) in the physical partition: metadata blocks 0–3 → physical 50–53.
    put(partStart + 40, icb(250, 4 * S, 0, shortAd(4 * S, 50), 40, 0, true));
  }
  return img;
}

