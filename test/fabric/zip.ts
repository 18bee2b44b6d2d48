/**
 * A zip writer for tests (extensions.md §13.3): builds extension packages at test time, including hostile and broken
 * archives — `..` and absolute names, symlink entries, set-uid modes, duplicate names, wrong CRC, encrypted or bzip2
 * entries, entries that inflate past their declared size, Zip64 directories, a mismatching local header name. Plus
 * the §13.3 corpus as named builders. Never used by production code.
 */
import * as zlib from 'node:zlib';

export interface ZipEntrySpec {
  /** Entry name as written (a string is UTF-8 encoded; a Buffer is written raw, e.g. CP437 bytes). */
  name: string | Buffer;
  data?: Buffer | string;
  /** 0 stored, 8 deflate (default for non-empty data), or any other number written as is (data stored raw). */
  method?: number;
  /** General-purpose flag bit 11 (UTF-8 names). Default: set when a string name is not ASCII. */
  utf8?: boolean;
  /** Unix mode in the external attributes (made by Unix), e.g. 0o100644, 0o120777 (symlink), 0o104755. */
  unixMode?: number;
  /** Version-made-by host byte (default 3 = Unix). */
  madeBy?: number;
  /** Set flag bit 0 (encrypted). */
  encrypted?: boolean;
  /** Override the CRC-32 written (a wrong CRC). */
  crc?: number;
  /** Override the declared uncompressed size (a bomb declares less than it inflates to). */
  declaredSize?: number;
  /** A different name in the local header than in the central directory. */
  localName?: string;
}

export interface ZipOptions {
  /** Write Zip64 end records (automatic above 65 535 entries). */
  zip64?: boolean;
  comment?: string;
}

/** Builds a zip archive from `entries`, in order. */
export function buildZip(entries: ZipEntrySpec[], opts: ZipOptions = {}): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const nameBuf = Buffer.isBuffer(e.name) ? e.name : Buffer.from(e.name, 'utf8');
    const localNameBuf = e.localName === undefined ? nameBuf : Buffer.from(e.localName, 'utf8');
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data, 'utf8');
    const method = e.method ?? (data.length ? 8 : 0);
    const body = method === 8 ? zlib.deflateRawSync(data) : data;
    const crc = e.crc ?? zlib.crc32(data);
    const size = e.declaredSize ?? data.length;
    const utf8 = e.utf8 ?? (typeof e.name === 'string' && /[^\x00-\x7f]/.test(e.name));
    const flags = (utf8 ? 0x800 : 0) | (e.encrypted ? 1 : 0);
    const isDir = nameBuf.length > 0 && nameBuf[nameBuf.length - 1] === 0x2f;
    const mode = e.unixMode ?? (isDir ? 0o040755 : 0o100644);
    const external = (((mode & 0xffff) << 16) | (isDir ? 0x10 : 0)) >>> 0;
    const loc = Buffer.alloc(30);
    loc.writeUInt32LE(0x04034b50, 0);
    loc.writeUInt16LE(20, 4);
    loc.writeUInt16LE(flags, 6);
    loc.writeUInt16LE(method, 8);
    loc.writeUInt16LE(0, 10); loc.writeUInt16LE(0x21, 12);
    loc.writeUInt32LE(crc >>> 0, 14);
    loc.writeUInt32LE(body.length, 18);
    loc.writeUInt32LE(size >>> 0, 22);
    loc.writeUInt16LE(localNameBuf.length, 26);
    loc.writeUInt16LE(0, 28);
    const cen = Buffer.alloc(46);
    cen.writeUInt32LE(0x02014b50, 0);
    cen.writeUInt16LE(((e.madeBy ?? 3) << 8) | 20, 4);
    cen.writeUInt16LE(20, 6);
    cen.writeUInt16LE(flags, 8);
    cen.writeUInt16LE(method, 10);
    cen.writeUInt16LE(0, 12); cen.writeUInt16LE(0x21, 14);
    cen.writeUInt32LE(crc >>> 0, 16);
    cen.writeUInt32LE(body.length, 20);
    cen.writeUInt32LE(size >>> 0, 24);
    cen.writeUInt16LE(nameBuf.length, 28);
    cen.writeUInt16LE(0, 30); cen.writeUInt16LE(0, 32); cen.writeUInt16LE(0, 34); cen.writeUInt16LE(0, 36);
    cen.writeUInt32LE(external, 38);
    cen.writeUInt32LE(offset, 42);
    locals.push(loc, localNameBuf, body);
    centrals.push(cen, nameBuf);
    offset += loc.length + localNameBuf.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const comment = Buffer.from(opts.comment ?? '', 'utf8');
  const zip64 = opts.zip64 || entries.length > 0xffff;
  const tail: Buffer[] = [];
  if (zip64) {
    const z = Buffer.alloc(56);
    z.writeUInt32LE(0x06064b50, 0);
    z.writeBigUInt64LE(44n, 4);
    z.writeUInt16LE(45, 12); z.writeUInt16LE(45, 14);
    z.writeBigUInt64LE(BigInt(entries.length), 24);
    z.writeBigUInt64LE(BigInt(entries.length), 32);
    z.writeBigUInt64LE(BigInt(cd.length), 40);
    z.writeBigUInt64LE(BigInt(offset), 48);
    const l = Buffer.alloc(20);
    l.writeUInt32LE(0x07064b50, 0);
    l.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    l.writeUInt32LE(1, 16);
    tail.push(z, l);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(zip64 ? 0xffff : entries.length, 8);
  eocd.writeUInt16LE(zip64 ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(zip64 ? 0xffffffff : cd.length, 12);
  eocd.writeUInt32LE(zip64 ? 0xffffffff : offset, 16);
  eocd.writeUInt16LE(comment.length, 20);
  return Buffer.concat([...locals, cd, ...tail, eocd, comment]);
}

/** A minimal valid HandlerManifest.json (extensions.md §7.4) for the given command script path. */
export function handlerManifestJson(cmd = 'bin/run.sh', extra: Record<string, unknown> = {}): string {
  return JSON.stringify([{
    version: 1.0,
    handlerManifest: {
      installCommand: `${cmd} install`, uninstallCommand: `${cmd} uninstall`, updateCommand: `${cmd} update`,
      enableCommand: `${cmd} enable`, disableCommand: `${cmd} disable`, rebootAfterInstall: false, reportHeartbeat: false,
      ...extra,
    },
  }]);
}

const okManifest = (): ZipEntrySpec => ({ name: 'HandlerManifest.json', data: handlerManifestJson() });
const script = (): ZipEntrySpec => ({ name: 'bin/run.sh', data: '#!/bin/sh\nexit 0\n', unixMode: 0o100755 });

/**
 * The §13.3 corpus, built at test time: name → archive bytes. The real VMAccess zip is not included (fixtures are
 * never copied); `stored-0664-0775` reproduces its modes.
 */
export function packageCorpus(): Record<string, Buffer> {
  const big = Buffer.alloc(4 * 1024 * 1024, 0x41);
  const ok = buildZip([okManifest(), { name: 'bin/' }, script(), { name: 'README', data: 'hello' }]);
  const many: ZipEntrySpec[] = [];
  for (let i = 0; i < 100_001; i++) many.push({ name: `f${i}`, method: 0 });
  const bz = Buffer.from('BZh91AY&SY'); // a bzip2 header: the method is refused before any decompression
  return {
    ok,
    nested: buildZip([{ name: 'pkg/' }, { name: 'pkg/HandlerManifest.json', data: '\uFEFF' + handlerManifestJson() }, script()]),
    'no-manifest': buildZip([script()]),
    traversal: buildZip([okManifest(), { name: '../evil', data: 'x' }, { name: '/abs/evil', data: 'y' }, { name: 'a/../../b', data: 'z' }]),
    symlink: buildZip([okManifest(), { name: 'passwd', data: '/etc/passwd', unixMode: 0o120777, method: 0 }]),
    setuid: buildZip([okManifest(), { name: 'bin/su', data: '#!/bin/sh\n', unixMode: 0o104755 }]),
    'agent-owned': buildZip([okManifest(), { name: 'config/HandlerState', data: 'Enabled' }, { name: 'HandlerEnvironment.json', data: '[]' }, { name: 'status/0.status', data: '[]' }, { name: 'mrseq', data: '9' }]),
    duplicate: buildZip([okManifest(), { name: 'dup', data: 'first' }, { name: 'dup', data: 'second' }]),
    'bad-crc': buildZip([okManifest(), { name: 'data', data: 'some data', crc: 0x12345678 }]),
    truncated: ok.subarray(0, Math.floor(ok.length / 2)),
    encrypted: buildZip([okManifest(), { name: 'secret', data: 'x', encrypted: true, method: 0 }]),
    bzip2: buildZip([okManifest(), { name: 'b', data: bz, method: 12 }]),
    bomb: buildZip([okManifest(), { name: 'bomb', data: big, declaredSize: 1024 }]),
    'many-entries': buildZip(many),
    names: buildZip([okManifest(), { name: Buffer.from([0x63, 0x61, 0x66, 0x82]), data: 'cp437' }, { name: 'naïve-ü', data: 'utf8' }, { name: 'back\\slash', data: 'bs' }]),
    'dir-only': buildZip([okManifest(), { name: 'empty/dir/' }]),
    empty: Buffer.alloc(0),
    html: Buffer.from('<html><body><h1>Service Unavailable</h1></body></html>'),
    'stored-0664-0775': buildZip([
      { ...okManifest(), unixMode: 0o100664, method: 0 }, { name: 'scripts/', unixMode: 0o040775 },
      { name: 'scripts/vmaccess.py', data: 'print(1)\n', unixMode: 0o100775 },
    ]),
    zip64: buildZip([okManifest(), script()], { zip64: true }),
    'name-mismatch': buildZip([okManifest(), { name: 'good', localName: '../bad', data: 'x' }]),
  };
}
