// ISO9660 reader on images made here with `xorriso -as mkisofs` (plain, Joliet, Rock Ridge, both), and truncated,
// corrupted and hostile variants that must fail with MediaError without hanging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { bufferReader, openBoundedReader, readIsoFile, isIso9660, nameMatches, MediaError, MAX_FILE_BYTES } from '../../src/provision/iso9660';

const XML = '<?xml version="1.0"?><Environment xmlns="http://schemas.dmtf.org/ovf/environment/1">iso ✓</Environment>';
const hasXorriso = (() => { try { execFileSync('xorriso', ['-version'], { stdio: 'ignore' }); return true; } catch { return false; } })();
const skip = hasXorriso ? false : 'xorriso not installed';

function makeIso(flags: string[], files: Record<string, string | Buffer>): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iso-'));
  try {
    const src = path.join(dir, 'src'); fs.mkdirSync(src);
    for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(src, n), c);
    const out = path.join(dir, 'out.iso');
    execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', ...flags, '-V', 'rd_rdfe_stable', '-o', out, src], { stdio: 'ignore' });
    return fs.readFileSync(out);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
}

test('nameMatches: version suffix, trailing dot and case are ignored', () => {
  assert.ok(nameMatches('OVF-ENV.XML;1', 'ovf-env.xml'));
  assert.ok(nameMatches('ovf-env.xml', 'ovf-env.xml'));
  assert.ok(!nameMatches('ovf-env.xml.bak', 'ovf-env.xml'));
  assert.ok(!nameMatches('xovf-env.xml', 'ovf-env.xml'));
});

for (const flags of [[], ['-J'], ['-R'], ['-J', '-R'], ['-iso-level', '3']]) {
  test(`ISO9660 from xorriso -as mkisofs ${flags.join(' ') || '(plain)'}`, { skip }, () => {
    const img = makeIso(flags, { 'ovf-env.xml': XML, 'other.xml': '<x/>', 'ovf-env.xml.bak': 'nope' });
    const r = bufferReader(img, 'iso');
    assert.ok(isIso9660(r));
    assert.equal(readIsoFile(r).toString('utf8'), XML);
  });
}

test('ISO9660: upper-case name with Rock Ridge, and through a file descriptor', { skip }, () => {
  const img = makeIso(['-R'], { 'OVF-ENV.XML': XML });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iso-'));
  try {
    const p = path.join(dir, 'x.iso'); fs.writeFileSync(p, img);
    const r = openBoundedReader(p);
    try { assert.equal(r.size, img.length); assert.equal(readIsoFile(r).toString('utf8'), XML); } finally { r.close(); }
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('ISO9660: file absent → MediaError with notFound', { skip }, () => {
  const img = makeIso(['-J', '-R'], { 'readme.txt': 'x' });
  assert.throws(() => readIsoFile(bufferReader(img, 'iso')), (e: unknown) => e instanceof MediaError && e.notFound);
});

test('ISO9660: a file over 1 MiB is refused', { skip }, () => {
  const img = makeIso(['-R'], { 'ovf-env.xml': Buffer.alloc(MAX_FILE_BYTES + 10, 0x41) });
  assert.throws(() => readIsoFile(bufferReader(img, 'iso')), /larger than/);
});

test('ISO9660: not an ISO, truncated and corrupted images fail with MediaError', { skip }, () => {
  const good = makeIso(['-R'], { 'ovf-env.xml': XML });
  const pvd = 16 * 2048;
  const rootExtent = good.readUInt32LE(pvd + 156 + 2);
  const cases: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /no ISO9660/],
    ['zeros', Buffer.alloc(40 * 2048), /no ISO9660/],
    ['cut after the primary descriptor', good.subarray(0, 17 * 2048), /not terminated|truncated/],
    ['cut before the root directory', good.subarray(0, rootExtent * 2048), /truncated/],
    ['root directory of 4 GiB', (() => { const b = Buffer.from(good); b.writeUInt32LE(0xffffffff, pvd + 156 + 10); return b; })(), /too large/],
    ['root extent beyond the medium', (() => { const b = Buffer.from(good); b.writeUInt32LE(0x7fffffff, pvd + 156 + 2); return b; })(), /truncated/],
    ['bad block size', (() => { const b = Buffer.from(good); b.writeUInt16LE(3, pvd + 128); return b; })(), /block size/],
    ['no terminator', (() => {
      const b = Buffer.alloc(120 * 2048);
      for (let i = 16; i < 120; i++) { b[i * 2048] = 3; b.write('CD001', i * 2048 + 1, 'latin1'); }
      return b;
    })(), /more than 64|no primary/],
    ['record shorter than its fixed part', (() => {
      const b = Buffer.from(good); b[rootExtent * 2048] = 20; return b;
    })(), /bad directory record/],
  ];
  for (const [label, img, re] of cases) {
    assert.throws(() => readIsoFile(bufferReader(img, 'iso')), (e: unknown) => e instanceof MediaError && re.test(e.message), label);
  }
});

test('ISO9660: random corruption never crashes or hangs the reader', { skip }, () => {
  const good = makeIso(['-J', '-R'], { 'ovf-env.xml': XML, 'a.txt': 'a' });
  const pvd = 16 * 2048;
  const hot = [pvd, pvd + 2048, good.readUInt32LE(pvd + 156 + 2) * 2048];
  let seed = 99;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  for (let i = 0; i < 400; i++) {
    const img = Buffer.from(good);
    for (let k = 0; k < 4; k++) img[hot[rnd() % hot.length] + (rnd() % 300)] = rnd() & 0xff;
    try { readIsoFile(bufferReader(img, 'iso')); } catch (e) { assert.ok(e instanceof MediaError, `iteration ${i}: ${(e as Error).stack}`); }
  }
});
