import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { extractZipSafely, sanitizeEntryName, decodeCp437, ZipError } from '../../src/extensions/unzip';
import { buildZip, packageCorpus, handlerManifestJson } from '../fabric/zip';

const corpus = packageCorpus();
function tmp(): string { return fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-unzip-')); }
function setup(name: string): { dir: string; zip: string; dest: string } {
  const dir = tmp();
  const zip = path.join(dir, `${name}.zip`);
  fs.writeFileSync(zip, corpus[name]);
  return { dir, zip, dest: path.join(dir, 'Test.Handler-1.0.0') };
}
/** Every path under `root`, relative, with its type and permission bits. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const n of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(path.join(root, r));
      out[r] = `${st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : '?'}${(st.mode & 0o7777).toString(8)}`;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}
const noStaging = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.includes('.unzip-'));

test('CP437 table has 128 characters and matches Python for sample bytes', () => {
  assert.equal(decodeCp437(Buffer.from([0x82, 0x9b, 0xe1, 0xff, 0x41])), 'é¢ß\u00a0A');
  let all = ''; for (let i = 0x80; i < 0x100; i++) all += decodeCp437(Buffer.from([i]));
  assert.equal([...all].length, 128);
});

test('sanitizeEntryName drops empty, ".", ".." components and leading slashes like Python', () => {
  assert.equal(sanitizeEntryName('../../etc/x'), 'etc/x');
  assert.equal(sanitizeEntryName('/abs/evil'), 'abs/evil');
  assert.equal(sanitizeEntryName('a/../../b'), 'a/b');
  assert.equal(sanitizeEntryName('./a//b/./c'), 'a/b/c');
  assert.equal(sanitizeEntryName('back\\slash'), 'back\\slash');
  assert.equal(sanitizeEntryName('../..'), '');
});

test('a correct package: files 0744, directories 0755, content intact, staging gone', async () => {
  const { dir, zip, dest } = setup('ok');
  const r = await extractZipSafely(zip, dest);
  assert.deepEqual(r, { files: 3, bytes: fs.statSync(path.join(dest, 'HandlerManifest.json')).size + 17 + 5 });
  assert.deepEqual(tree(dest), { 'HandlerManifest.json': 'f744', README: 'f744', bin: 'd755', 'bin/run.sh': 'f744' });
  assert.equal(fs.statSync(dest).mode & 0o7777, 0o755);
  assert.equal(fs.readFileSync(path.join(dest, 'HandlerManifest.json'), 'utf8'), handlerManifestJson());
  assert.deepEqual(noStaging(dir), []);
});

test('the result does not depend on the umask', async () => {
  const { zip, dest } = setup('stored-0664-0775');
  const old = process.umask(0o077);
  try { await extractZipSafely(zip, dest); } finally { process.umask(old); }
  assert.deepEqual(tree(dest), { 'HandlerManifest.json': 'f744', scripts: 'd755', 'scripts/vmaccess.py': 'f744' });
});

test('extracting into an existing handler directory keeps config/ and replaces same-named entries', async () => {
  const { zip, dest } = setup('ok');
  fs.mkdirSync(path.join(dest, 'config'), { recursive: true });
  fs.writeFileSync(path.join(dest, 'config', 'HandlerState'), 'NotInstalled');
  fs.writeFileSync(path.join(dest, 'README'), 'old leftover');
  await extractZipSafely(zip, dest);
  assert.equal(fs.readFileSync(path.join(dest, 'config', 'HandlerState'), 'utf8'), 'NotInstalled');
  assert.equal(fs.readFileSync(path.join(dest, 'README'), 'utf8'), 'hello');
});

test('".." and absolute names land inside the destination (zip-slip safe), as Python does', async () => {
  const { dir, zip, dest } = setup('traversal');
  await extractZipSafely(zip, dest);
  assert.equal(fs.readFileSync(path.join(dest, 'evil'), 'utf8'), 'x');
  assert.equal(fs.readFileSync(path.join(dest, 'abs', 'evil'), 'utf8'), 'y');
  assert.equal(fs.readFileSync(path.join(dest, 'a', 'b'), 'utf8'), 'z');
  assert.ok(!fs.existsSync(path.join(dir, 'evil')));
  assert.ok(!fs.existsSync('/abs/evil'));
});

test('a symlink entry becomes a regular file holding the target text; set-uid bits never appear', async () => {
  const { zip, dest } = setup('symlink');
  await extractZipSafely(zip, dest);
  const st = fs.lstatSync(path.join(dest, 'passwd'));
  assert.ok(st.isFile());
  assert.equal(fs.readFileSync(path.join(dest, 'passwd'), 'utf8'), '/etc/passwd');
  const s2 = setup('setuid');
  await extractZipSafely(s2.zip, s2.dest);
  assert.equal(fs.statSync(path.join(s2.dest, 'bin', 'su')).mode & 0o7777, 0o744);
});

test('agent-owned names are skipped; duplicates: the later entry wins', async () => {
  const { zip, dest } = setup('agent-owned');
  await extractZipSafely(zip, dest);
  assert.deepEqual(Object.keys(tree(dest)), ['HandlerManifest.json']);
  const d = setup('duplicate');
  await extractZipSafely(d.zip, d.dest);
  assert.equal(fs.readFileSync(path.join(d.dest, 'dup'), 'utf8'), 'second');
});

test('names: CP437 and UTF-8-flagged names decoded, backslash kept as a character, directory-only entries', async () => {
  const { zip, dest } = setup('names');
  await extractZipSafely(zip, dest);
  assert.equal(fs.readFileSync(path.join(dest, 'café'), 'utf8'), 'cp437');
  assert.equal(fs.readFileSync(path.join(dest, 'naïve-ü'), 'utf8'), 'utf8');
  assert.equal(fs.readFileSync(path.join(dest, 'back\\slash'), 'utf8'), 'bs');
  const d = setup('dir-only');
  await extractZipSafely(d.zip, d.dest);
  assert.equal(tree(d.dest)['empty/dir'], 'd755');
  const n = setup('nested');
  await extractZipSafely(n.zip, n.dest);
  assert.ok(fs.existsSync(path.join(n.dest, 'pkg', 'HandlerManifest.json')));
});

test('Zip64 end records are read', async () => {
  const { zip, dest } = setup('zip64');
  const r = await extractZipSafely(zip, dest);
  assert.equal(r.files, 2);
});

for (const [name, re] of [
  ['bad-crc', /Bad CRC-32/],
  ['truncated', /not a zip archive|truncated|out of range/],
  ['encrypted', /encrypted/],
  ['bzip2', /compression method 12/],
  ['bomb', /inflates beyond its declared size/],
  ['many-entries', /100001 entries; at most 100000/],
  ['empty', /empty \(0 bytes\)/],
  ['html', /not a zip archive/],
  ['name-mismatch', /differ/],
] as const) {
  test(`refused: ${name} — clear error, destination untouched, no staging left`, async () => {
    const { dir, zip, dest } = setup(name);
    fs.mkdirSync(path.join(dest, 'config'), { recursive: true });
    await assert.rejects(extractZipSafely(zip, dest), (e: unknown) => e instanceof ZipError && re.test((e as Error).message));
    assert.deepEqual(fs.readdirSync(dest), ['config']);
    assert.deepEqual(noStaging(dir), []);
  });
}

test('limits: per-entry, total and free space are checked before writing', async () => {
  const dir = tmp();
  const zip = path.join(dir, 'p.zip');
  fs.writeFileSync(zip, buildZip([{ name: 'a', data: Buffer.alloc(1000) }, { name: 'b', data: Buffer.alloc(1000) }]));
  const dest = path.join(dir, 'H-1.0');
  await assert.rejects(extractZipSafely(zip, dest, { maxEntryBytes: 999 }), /at most 999 allowed per entry/);
  await assert.rejects(extractZipSafely(zip, dest, { maxTotalBytes: 1999 }), /2000 bytes in total; at most 1999/);
  await assert.rejects(extractZipSafely(zip, dest, { maxEntries: 1 }), /2 entries; at most 1/);
  await assert.rejects(extractZipSafely(zip, dest, {}, { freeBytes: () => 64 * 1024 * 1024 + 1999 }), (e: unknown) => (e as ZipError).code === 'ENOSPC');
  assert.ok(!fs.existsSync(dest));
  assert.deepEqual(await extractZipSafely(zip, dest, {}, { freeBytes: () => 64 * 1024 * 1024 + 2000 }), { files: 2, bytes: 2000 });
});

test('beforeCommit runs on the complete staging directory; a throw leaves the destination unchanged', async () => {
  const { dir, zip, dest } = setup('ok');
  let seen: string[] = [];
  await assert.rejects(extractZipSafely(zip, dest, {}, { beforeCommit: (s) => { seen = fs.readdirSync(s).sort(); throw new Error('no'); } }), /no/);
  assert.deepEqual(seen, ['HandlerManifest.json', 'README', 'bin']);
  assert.ok(!fs.existsSync(dest));
  assert.deepEqual(noStaging(dir), []);
});

test('agrees with Python zipfile on the hostile corpus (when python3 is present)', { skip: !hasPython() && 'python3 not installed' }, async () => {
  for (const name of ['traversal', 'names', 'duplicate', 'symlink', 'dir-only']) {
    const { dir, zip, dest } = setup(name);
    await extractZipSafely(zip, dest, {}, { skip: () => false });
    const py = path.join(dir, 'py');
    execFileSync('python3', ['-c', 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])', zip, py]);
    const files = (t: Record<string, string>): string[] => Object.entries(t).map(([k, v]) => `${k}:${v[0]}`).sort();
    assert.deepEqual(files(tree(dest)), files(tree(py)), name);
  }
});

function hasPython(): boolean {
  try { execFileSync('python3', ['-c', 'pass'], { stdio: 'ignore' }); return true; } catch { return false; }
}
