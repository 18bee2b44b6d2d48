import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeFileAtomic, readFileCapped, readTextIfExists, decodeText, ensureDir, emptyDir, FileTooLargeError } from '../../src/core/files';

const isRoot = process.getuid?.() === 0;
function tmp(): string { return fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-files-')); }
const leftovers = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));

test('writeFileAtomic: content, explicit mode (umask does not apply), no temp file left', () => {
  const dir = tmp();
  const f = path.join(dir, 'a.conf');
  const old = process.umask(0o077);
  try {
    writeFileAtomic(f, 'hello\n', { mode: 0o644 });
  } finally { process.umask(old); }
  assert.equal(fs.readFileSync(f, 'utf8'), 'hello\n');
  assert.equal(fs.statSync(f).mode & 0o7777, 0o644);
  writeFileAtomic(f, Buffer.from([0, 1, 2]), { mode: 0o600 });
  assert.deepEqual([...fs.readFileSync(f)], [0, 1, 2]);
  assert.equal(fs.statSync(f).mode & 0o7777, 0o600);
  assert.deepEqual(leftovers(dir), []);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('writeFileAtomic: preserveExisting keeps the mode of the file it replaces', () => {
  const dir = tmp();
  const f = path.join(dir, 'sshd_config');
  fs.writeFileSync(f, 'old'); fs.chmodSync(f, 0o640);
  writeFileAtomic(f, 'new', { mode: 0o600, preserveExisting: true });
  assert.equal(fs.statSync(f).mode & 0o7777, 0o640);
  assert.equal(fs.readFileSync(f, 'utf8'), 'new');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('writeFileAtomic: a failed write keeps the old content and leaves no temp file', () => {
  const dir = tmp();
  const f = path.join(dir, 'shadow');
  fs.writeFileSync(f, 'old content');
  assert.throws(() => writeFileAtomic(f, 'new content', { mode: -1 })); // fchmod refuses: after the data was written
  assert.equal(fs.readFileSync(f, 'utf8'), 'old content');
  assert.deepEqual(leftovers(dir), []);
  // rename fails: the target is a non-empty directory
  fs.mkdirSync(path.join(dir, 'd')); fs.writeFileSync(path.join(dir, 'd', 'x'), '');
  assert.throws(() => writeFileAtomic(path.join(dir, 'd'), 'x', { mode: 0o644 }));
  assert.deepEqual(leftovers(dir), []);
  // missing directory: nothing is created
  assert.throws(() => writeFileAtomic(path.join(dir, 'no/such/file'), 'x', { mode: 0o644 }), /ENOENT/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('writeFileAtomic: owner', { skip: isRoot ? false : 'needs root' }, () => {
  const dir = tmp();
  const f = path.join(dir, 'owned');
  writeFileAtomic(f, 'x', { mode: 0o600, uid: 65534, gid: 65534 });
  const st = fs.statSync(f);
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [65534, 65534, 0o600]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('writeFileAtomic: a non-root caller cannot give a file away, and the old file stays', { skip: isRoot ? 'runs as root' : false }, () => {
  const dir = tmp();
  const f = path.join(dir, 'owned');
  fs.writeFileSync(f, 'old');
  assert.throws(() => writeFileAtomic(f, 'x', { mode: 0o600, uid: 0, gid: 0 }), /EPERM/);
  assert.equal(fs.readFileSync(f, 'utf8'), 'old');
  assert.deepEqual(leftovers(dir), []);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('readFileCapped refuses larger files and non-regular files; readTextIfExists', () => {
  const dir = tmp();
  const f = path.join(dir, 'f');
  fs.writeFileSync(f, 'x'.repeat(100));
  assert.equal(readFileCapped(f, 100).length, 100);
  assert.throws(() => readFileCapped(f, 99), FileTooLargeError);
  assert.throws(() => readFileCapped(dir), /not a regular file|EISDIR/);
  assert.equal(readTextIfExists(path.join(dir, 'missing')), undefined);
  fs.symlinkSync(f, path.join(dir, 'link'));
  assert.throws(() => readFileCapped(path.join(dir, 'link')), /ELOOP/); // O_NOFOLLOW
  fs.rmSync(dir, { recursive: true, force: true });
});

test('decodeText drops a UTF-8 BOM and decodes UTF-8', () => {
  assert.equal(decodeText(Buffer.from([0xef, 0xbb, 0xbf, 0x61, 0xc3, 0xa9])), 'aé');
  assert.equal(decodeText(Buffer.from('plain')), 'plain');
});

test('ensureDir sets the mode of the final directory; emptyDir keeps the directory', () => {
  const dir = tmp();
  const d = path.join(dir, 'a/b');
  ensureDir(d, 0o700);
  assert.equal(fs.statSync(d).mode & 0o777, 0o700);
  fs.writeFileSync(path.join(d, 'x'), ''); fs.mkdirSync(path.join(d, 'sub'));
  emptyDir(d);
  assert.deepEqual(fs.readdirSync(d), []);
  emptyDir(path.join(dir, 'missing'));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('writeFileAtomic: removes the temp files of the same target that a killed writer left, keeps a live writer\'s', () => {
  const dir = tmp();
  const f = path.join(dir, 'sshd_config');
  // A process that ran and is gone: its pid names a dead writer.
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const stale = [`.sshd_config.${dead}.0badc0de.tmp`, `.sshd_config.${process.pid}.12345678.tmp`];
  const keep = [
    `.sshd_config.${process.ppid}.abcdef01.tmp`, // a writer that still runs
    `.sshd_config.d.${dead}.0badc0de.tmp`, // another target's temp
    `.other.${dead}.0badc0de.tmp`,
    'sshd_config.tmp',
  ];
  for (const n of [...stale, ...keep]) fs.writeFileSync(path.join(dir, n), 'partial');
  // A live pid (reused after a reboot) on a temp file two hours old: stale all the same.
  const old = `.sshd_config.${process.ppid}.00ff00ff.tmp`;
  fs.writeFileSync(path.join(dir, old), 'partial');
  fs.utimesSync(path.join(dir, old), new Date(Date.now() - 7200e3), new Date(Date.now() - 7200e3));
  writeFileAtomic(f, 'Port 22\n', { mode: 0o644 });
  assert.equal(fs.readFileSync(f, 'utf8'), 'Port 22\n');
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n !== 'sshd_config').sort(), keep.sort());
  fs.rmSync(dir, { recursive: true, force: true });
});
