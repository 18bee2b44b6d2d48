// UDF reader: real images from genisoimage -udf and mkudffs (when installed), and images built here following
// ECMA-167 / OSTA UDF (file entry and extended file entry; short, long and embedded allocation; Latin-1 and UCS-2
// names; a UDF 2.50 metadata partition), plus truncated, corrupted and hostile variants that must fail cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { bufferReader, openBoundedReader, MediaError } from '../../src/provision/iso9660';
import { readUdfFile, isUdf, udfCrc, decodeCs0 } from '../../src/provision/udf';
import { buildUdf, tag, cs0, S, UDF_XML as XML, type BuildOpts } from './udf-builder';


function which(p: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${p}`], { stdio: 'ignore' }); return true; } catch { return false; }
}

test('decodeCs0: Latin-1 and UCS-2 identifiers', () => {
  assert.equal(decodeCs0(cs0('ovf-env.xml', 8)), 'ovf-env.xml');
  assert.equal(decodeCs0(cs0('OVF-ENV.XML', 16)), 'OVF-ENV.XML');
  assert.equal(decodeCs0(Buffer.from([3, 65])), '');
});

test('udfCrc: CRC-ITU-T check value', () => {
  assert.equal(udfCrc(Buffer.from('123456789')), 0x31c3);
});

for (const [label, opts] of [
  ['file entry, short allocation descriptors', {}],
  ['extended file entry, long allocation descriptors', { entry: 'efe', ad: 'long' }],
  ['data embedded in the ICB', { ad: 'embedded' }],
  ['UCS-2 upper-case name among other files', { comp: 16, name: 'OVF-ENV.XML', extraNames: ['readme.txt', 'ovf-env.xml.bak'] }],
  ['UDF 2.50 metadata partition', { metadata: true, entry: 'efe' }],
  ['multi-block file', { content: Buffer.from(`<?xml version="1.0"?><E>${'x'.repeat(9000)}</E>`) }],
] as [string, BuildOpts][]) {
  test(`UDF built here: ${label}`, () => {
    const img = buildUdf(opts);
    const r = bufferReader(img, 'img');
    assert.ok(isUdf(r));
    assert.deepEqual(readUdfFile(r), opts.content ?? Buffer.from(XML));
  });
}

test('UDF: file absent → MediaError with notFound', () => {
  const r = bufferReader(buildUdf({ name: 'other.xml' }), 'img');
  assert.throws(() => readUdfFile(r), (e: unknown) => e instanceof MediaError && e.notFound && /not found/.test(e.message));
});

test('UDF: a file over 1 MiB is refused, not read', () => {
  const img = buildUdf({ ad: 'long' });
  // Rewrite the file ICB's information length to 2 MiB.
  const at = (260 + 3) * S;
  img.writeUInt32LE(2 * 1024 * 1024, at + 56);
  tag(img.subarray(at, at + S), 261, 3, 176 + 16);
  assert.throws(() => readUdfFile(bufferReader(img, 'img')), /larger than 1048576/);
});

test('UDF: truncated, corrupted and hostile images fail with MediaError', () => {
  const good = buildUdf();
  const cases: [string, Buffer, RegExp][] = [
    ['cut before the anchor', good.subarray(0, 200 * S), /no UDF anchor/],
    ['cut inside the partition', good.subarray(0, 262 * S), /truncated|outside/],
    ['bad checksum on the LVD', (() => { const b = Buffer.from(good); b[33 * S + 4] ^= 0xff; return b; })(), /checksum/],
    ['bad CRC on the FSD', (() => { const b = Buffer.from(good); b[260 * S + 100] ^= 1; return b; })(), /CRC/],
    ['partition starting beyond the medium', (() => {
      const b = Buffer.from(good); b.writeUInt32LE(0x7fffffff, 32 * S + 188); tag(b.subarray(32 * S, 32 * S + 512), 5, 32); return b;
    })(), /truncated|outside/],
    ['allocation descriptor beyond the partition', (() => {
      const b = Buffer.from(good); const at = 263 * S; b.writeUInt32LE(100000, at + 176 + 4); tag(b.subarray(at, at + S), 261, 3, 184); return b;
    })(), /outside partition/],
    ['volume descriptor pointer looping on itself', (() => {
      const b = Buffer.from(good); const v = Buffer.alloc(512); v.writeUInt32LE(16 * S, 20); v.writeUInt32LE(32, 24);
      tag(v, 3, 32).copy(b, 32 * S); return b;
    })(), /too many volume descriptor pointers|no (logical volume|partition) descriptor/],
    ['file identifier overrunning the directory', (() => {
      const b = Buffer.from(good); const at = 262 * S + 40; b[at + 19] = 250; tag(b.subarray(at, at + 52), 257, 2, 52); return b;
    })(), /overruns|CRC/],
  ];
  for (const [label, img, re] of cases) {
    assert.throws(() => readUdfFile(bufferReader(img, 'img')), (e: unknown) => e instanceof MediaError && re.test(e.message), label);
  }
});

test('UDF: random corruption never crashes or hangs the reader', () => {
  const good = buildUdf({ extraNames: ['a', 'b'] });
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  const hot = [256 * S, 32 * S, 33 * S, 260 * S, 261 * S, 262 * S, 263 * S];
  const started = Date.now();
  for (let i = 0; i < 400; i++) {
    const img = Buffer.from(good);
    for (let k = 0; k < 4; k++) img[hot[rnd() % hot.length] + (rnd() % 512)] = rnd() & 0xff;
    try { readUdfFile(bufferReader(img, 'img')); } catch (e) { assert.ok(e instanceof MediaError, `iteration ${i}: ${(e as Error).stack}`); }
  }
  assert.ok(Date.now() - started < 20000);
});

test('UDF from genisoimage -udf (real tool)', { skip: which('genisoimage') ? false : 'genisoimage not installed' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udf-'));
  try {
    fs.mkdirSync(path.join(dir, 'src'));
    fs.writeFileSync(path.join(dir, 'src', 'ovf-env.xml'), XML);
    fs.writeFileSync(path.join(dir, 'src', 'other.txt'), 'x');
    const img = path.join(dir, 'udf.iso');
    execFileSync('genisoimage', ['-quiet', '-udf', '-J', '-R', '-o', img, path.join(dir, 'src')], { stdio: 'ignore' });
    const r = openBoundedReader(img);
    try { assert.ok(isUdf(r)); assert.equal(readUdfFile(r).toString('utf8'), XML); } finally { r.close(); }
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('UDF from mkudffs (real tool): empty volumes for hd and dvdrw (sparable) media', { skip: which('mkudffs') ? false : 'mkudffs (udftools) not installed' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udf-'));
  try {
    for (const media of ['hd', 'dvdrw']) {
      const img = path.join(dir, `${media}.img`);
      execFileSync('mkudffs', ['-m', media, '-b', '2048', img, '3000'], { stdio: 'ignore' });
      const r = openBoundedReader(img);
      try {
        assert.throws(() => readUdfFile(r), (e: unknown) => e instanceof MediaError && e.notFound, media);
      } finally { r.close(); }
    }
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('UDF: hostile descriptors with valid checksums and CRCs never crash or hang the reader', () => {
  const good = buildUdf();
  // [sector, tag id, tag location, descriptor length] of the descriptors buildUdf writes.
  const descs: [number, number, number, number][] = [[32, 5, 32, 512], [33, 6, 33, 446], [256, 2, 256, 512], [260, 256, 0, 512], [261, 261, 1, 184], [263, 261, 3, 184]];
  let seed = 777;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  let ok = 0; let failed = 0;
  for (let i = 0; i < 600; i++) {
    const img = Buffer.from(good);
    const [sector, id, loc, len] = descs[rnd() % descs.length];
    const d = img.subarray(sector * S, sector * S + len);
    for (let k = 0; k < 3; k++) {
      const at = 16 + (rnd() % (len - 16));
      // Mostly large values, where offsets and lengths overflow.
      d[at] = rnd() % 3 === 0 ? 0xff : rnd() & 0xff;
    }
    tag(d, id, loc, len);
    try { readUdfFile(bufferReader(img, 'img')); ok++; } catch (e) { assert.ok(e instanceof MediaError, `iteration ${i}: ${(e as Error).stack}`); failed++; }
  }
  assert.ok(ok > 0 && failed > 0, `ok ${ok}, failed ${failed}`);
});
