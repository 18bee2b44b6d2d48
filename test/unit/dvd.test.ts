// dvd.ts on a temp-dir root with a recording runner: device scan order, direct read preferred over mounting, the
// mount fallback's argv and retries, the redacted copy, the deferred eject, and the one-shot file path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { SysRoot } from '../../src/core/sysroot';
import { recordingRunner, type ExecResult } from '../../src/core/exec';
import { Config } from '../../src/config/config';
import { Logger, memoryAppender } from '../../src/core/log';
import { createOs } from '../../src/os/factory';
import type { AgentContext } from '../../src/context';
import { acquireOvf, dvdCandidates, sortDeviceNames, cleanOvfBytes, readOvfFile, ejectDvd } from '../../src/provision/dvd';

const PASSWORD = 'S3cret!Pass word';
const OVF = `<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure">
  <wa:ProvisioningSection><wa:Version>1.0</wa:Version>
    <LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure">
      <ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>
      <HostName>vm1</HostName><UserName>azureuser</UserName>
      <UserPassword>${PASSWORD}</UserPassword>
    </LinuxProvisioningConfigurationSet>
  </wa:ProvisioningSection>
</Environment>`;

const hasXorriso = (() => { try { execFileSync('xorriso', ['-version'], { stdio: 'ignore' }); return true; } catch { return false; } })();

type Handler = (argv: string[]) => Partial<ExecResult> | undefined;

function bed(handler?: Handler, distroId = 'ubuntu', devs: Record<string, Buffer | string> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvd-'));
  const root = new SysRoot(dir);
  fs.mkdirSync(root.path('/dev'), { recursive: true });
  for (const [n, c] of Object.entries(devs)) fs.writeFileSync(root.path(`/dev/${n}`), c);
  const run = recordingRunner((argv) => handler?.(argv) ?? (argv[0] === 'blkid' ? { code: 2 } : undefined));
  const conf = new Config('(test)', {});
  const logger = new Logger(); const mem = memoryAppender(); logger.addAppender(mem);
  const osObj = createOs({ id: distroId, like: [], version: '22.04', codename: '', fullName: distroId, name: distroId }, root, run, conf);
  const ctx: AgentContext = { conf, os: osObj, log: logger, libDir: '/var/lib/waagent' };
  return { dir, root, run, ctx, mem, p: (a: string) => root.path(a), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

function makeIso(files: Record<string, string>): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvdiso-'));
  try {
    fs.mkdirSync(path.join(dir, 's'));
    for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(dir, 's', n), c);
    execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-J', '-R', '-o', path.join(dir, 'o.iso'), path.join(dir, 's')], { stdio: 'ignore' });
    return fs.readFileSync(path.join(dir, 'o.iso'));
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
}

const noSleep = { calls: [] as number[], fn: async (ms: number) => { noSleep.calls.push(ms); } };

test('sortDeviceNames: sr, cdrom, cd, hd, vd; numeric within each', () => {
  assert.deepEqual(sortDeviceNames(['vdb', 'hdc', 'cd1', 'cdrom0', 'sr1', 'sr0', 'cd0', 'sr1']), ['sr0', 'sr1', 'cdrom0', 'cd0', 'cd1', 'hdc', 'vdb']);
});

test('dvdCandidates: /dev/sr0 first, then blkid udf/iso9660 devices, then the sorted name scan', async () => {
  const b = bed((argv) => {
    if (argv[0] !== 'blkid') return undefined;
    return argv.includes('TYPE=udf') ? { stdout: '/dev/sdz\n' } : { stdout: '/dev/sr0\n/dev/vdc\n' };
  }, 'ubuntu', { vdb1: '', hdc1: '', cdrom0: '', sr1: '', sr0: '', cd0: '', sda: '', vda: '', vdb: '', 'sr1-part': '' });
  try {
    assert.deepEqual(await dvdCandidates(b.ctx), ['/dev/sr0', '/dev/sdz', '/dev/vdc', '/dev/sr1', '/dev/cdrom0', '/dev/cd0', '/dev/hdc', '/dev/vdb']);
    assert.deepEqual(b.run.calls.map((c) => c.argv), [
      ['blkid', '-o', 'device', '-t', 'TYPE=udf'], ['blkid', '-o', 'device', '-t', 'TYPE=iso9660'],
    ]);
  } finally { b.cleanup(); }
});

test('dvdCandidates: FreeBSD /dev/cd0, OpenBSD cd[0-9]c', async () => {
  const f = bed(undefined, 'freebsd', { cd0: '', sr0: '' });
  const o = bed(undefined, 'openbsd', { cd0a: '', cd0c: '', cd1c: '' });
  try {
    assert.deepEqual(await dvdCandidates(f.ctx), ['/dev/cd0']);
    assert.deepEqual(await dvdCandidates(o.ctx), ['/dev/cd0c', '/dev/cd1c']);
  } finally { f.cleanup(); o.cleanup(); }
});

test('acquireOvf: reads the DVD directly when it can (no mount), saves a redacted 0600 copy, ejects only later',
  { skip: hasXorriso ? false : 'xorriso not installed' }, async () => {
    const b = bed(undefined, 'ubuntu', { sr0: Buffer.alloc(0), sr1: makeIso({ 'ovf-env.xml': `\ufeff${OVF}` }) });
    try {
      const got = await acquireOvf(b.ctx, { sleep: noSleep.fn });
      assert.equal(got.source, '/dev/sr1 (direct read)');
      assert.ok(got.xmlText.startsWith('<?xml') && got.xmlText.includes(PASSWORD));
      assert.ok(!b.run.calls.some((c) => c.argv[0] === 'mount' || c.argv[0] === 'eject'), 'no mount, no eject yet');
      const saved = b.p('/var/lib/waagent/ovf-env.xml');
      assert.equal(fs.statSync(saved).mode & 0o777, 0o600);
      const text = fs.readFileSync(saved, 'utf8');
      assert.ok(!text.includes(PASSWORD) && /<UserPassword>\*<\/UserPassword>/.test(text), text);
      assert.ok(text.includes('<UserName>azureuser</UserName>'));
      await got.eject();
      assert.deepEqual(b.run.calls.at(-1)!.argv, ['eject', '/dev/sr1']);
    } finally { b.cleanup(); }
  });

test('acquireOvf: mount fallback with the spec argv, mount point 0700, unmount after reading', async () => {
  let b!: ReturnType<typeof bed>;
  b = bed((argv) => {
    if (argv[0] === 'blkid') return { code: 2 };
    if (argv[0] === 'mount' && argv.length === 1) return { stdout: 'proc on /proc type proc (rw)\n/dev/sr00 on /x type udf (ro)\n' };
    if (argv[0] === 'mount') {
      if (argv[5] !== '/dev/sr0') return { code: 32, stderr: "mount: /mnt/cdrom/secure: unknown filesystem type 'udf'." };
      fs.writeFileSync(b.p('/mnt/cdrom/secure/ovf-env.xml'), `junk\0${OVF}`);
      return { code: 0 };
    }
    return undefined;
  }, 'ubuntu', { sr0: Buffer.alloc(100) });
  try {
    const got = await acquireOvf(b.ctx, { sleep: noSleep.fn });
    assert.equal(got.source, '/dev/sr0 mounted at /mnt/cdrom/secure');
    assert.ok(got.xmlText.startsWith('<?xml'));
    const argvs = b.run.calls.map((c) => c.argv).filter((a) => a[0] !== 'blkid');
    assert.deepEqual(argvs, [['mount'], ['mount', '-o', 'ro', '-t', 'udf,iso9660,vfat', '/dev/sr0', '/mnt/cdrom/secure'], ['umount', '/mnt/cdrom/secure']]);
    assert.equal(fs.statSync(b.p('/mnt/cdrom/secure')).mode & 0o777, 0o700);
    assert.ok(!fs.readFileSync(b.p('/var/lib/waagent/ovf-env.xml'), 'utf8').includes(PASSWORD));
  } finally { b.cleanup(); }
});

test('acquireOvf: an already mounted DVD is read where it is mounted, not remounted', async () => {
  let b!: ReturnType<typeof bed>;
  b = bed((argv) => {
    if (argv[0] === 'mount' && argv.length === 1) return { stdout: '/dev/sr0 on /media/cdrom type udf (ro,relatime)\n' };
    if (argv[0] === 'blkid') return { code: 2 };
    return undefined;
  }, 'ubuntu', { sr0: '' });
  try {
    fs.mkdirSync(b.p('/media/cdrom'), { recursive: true });
    fs.writeFileSync(b.p('/media/cdrom/ovf-env.xml'), OVF);
    const got = await acquireOvf(b.ctx, { sleep: noSleep.fn });
    assert.equal(got.source, '/dev/sr0 mounted at /media/cdrom');
    assert.ok(!b.run.calls.some((c) => c.argv[0] === 'umount' || (c.argv[0] === 'mount' && c.argv.length > 1)));
  } finally { b.cleanup(); }
});

test('acquireOvf: 5 passes 5 s apart, then "Failed to mount dvd device" with the last output', async () => {
  noSleep.calls.length = 0;
  const b = bed((argv) => {
    if (argv[0] === 'blkid') return { code: 2 };
    if (argv[0] === 'mount' && argv.length > 1) return { code: 32, stderr: "mount: unknown filesystem type 'udf'" };
    return undefined;
  }, 'debian', { sr0: Buffer.alloc(0), cdrom0: Buffer.alloc(0) });
  try {
    await assert.rejects(acquireOvf(b.ctx, { sleep: noSleep.fn }), /Failed to mount dvd device: mount: unknown filesystem type 'udf'/);
    const mounts = b.run.calls.filter((c) => c.argv[0] === 'mount' && c.argv.length > 1).map((c) => c.argv[5]);
    assert.deepEqual(mounts, Array(5).fill(['/dev/sr0', '/dev/cdrom0']).flat());
    assert.deepEqual(noSleep.calls, [5000, 5000, 5000, 5000]);
    assert.ok(b.mem.lines.some((l) => l.includes('Mounting dvd failed [retry 1/5, sleeping 5 sec]')));
  } finally { b.cleanup(); }
});

test('acquireOvf: no device → clear error; a saved (redacted) copy is reported, never used', async () => {
  const b = bed(undefined, 'ubuntu', { sda: '', tty0: '' });
  try {
    await assert.rejects(acquireOvf(b.ctx, { sleep: noSleep.fn }), (e: Error) => /^Failed to get dvd device from \/dev: sda, tty0$/.test(e.message));
    fs.mkdirSync(b.p('/var/lib/waagent'), { recursive: true });
    fs.writeFileSync(b.p('/var/lib/waagent/ovf-env.xml'), OVF.replace(PASSWORD, '*'));
    await assert.rejects(acquireOvf(b.ctx, { sleep: noSleep.fn }), /password is redacted and it cannot be used/);
  } finally { b.cleanup(); }
});

test('ejectDvd: per platform, vd* skipped, failures only warn', async () => {
  const l = bed((argv) => (argv[0] === 'eject' ? { code: 1, stderr: 'eject: unable to eject' } : undefined));
  const f = bed(undefined, 'freebsd');
  const o = bed(undefined, 'openbsd');
  try {
    await ejectDvd(l.ctx, '/dev/vdb');
    assert.equal(l.run.calls.length, 0);
    await ejectDvd(l.ctx, '/dev/sr0');
    assert.deepEqual(l.run.calls.map((c) => c.argv), [['eject', '/dev/sr0']]);
    assert.ok(l.mem.lines.some((x) => / WARNING .*Failed to eject \/dev\/sr0: eject: unable to eject/.test(x)));
    await ejectDvd(f.ctx, '/dev/cd0');
    assert.deepEqual(f.run.calls.map((c) => c.argv), [['cdcontrol', '-f', '/dev/cd0', 'eject']]);
    await ejectDvd(o.ctx, '/dev/cd0c');
    assert.deepEqual(o.run.calls.map((c) => c.argv), [['cdio', 'eject', '/dev/cd0c']]);
  } finally { l.cleanup(); f.cleanup(); o.cleanup(); }
});

test('cleanOvfBytes: BOM, NUL bytes and text before <? are dropped', () => {
  assert.equal(cleanOvfBytes(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('xx\0<?xml?><a/>\0')])), '<?xml?><a/>');
  assert.equal(cleanOvfBytes(Buffer.from('<a/>')), '<a/>');
});

test('readOvfFile: reads a given file, saves the redacted copy, eject is a no-op', async () => {
  const b = bed();
  try {
    const f = path.join(b.dir, 'given.xml');
    fs.writeFileSync(f, OVF);
    const got = await readOvfFile(b.ctx, f);
    assert.equal(got.xmlText, OVF);
    await got.eject();
    assert.equal(b.run.calls.length, 0);
    assert.ok(!fs.readFileSync(b.p('/var/lib/waagent/ovf-env.xml'), 'utf8').includes(PASSWORD));
    fs.writeFileSync(f, '<Environment><UserPassword>x</Environment>');
    await assert.rejects(readOvfFile(b.ctx, f));
  } finally { b.cleanup(); }
});
