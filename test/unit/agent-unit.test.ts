/** The agent's unit name per distro as installed (README "Install on an image", D31) and journal priorities
 *  (provisioning-and-os.md §10.2, §10.10). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBed } from './provision-helpers';
import { isJournalStream, streamAppender, Level, Logger } from '../../src/core/log';
import { registerService } from '../../src/cli/register-service';

function unit(bed: ReturnType<typeof makeBed>, p: string, text = '[Service]\nExecStart=/usr/sbin/waagent -daemon\n'): void {
  fs.mkdirSync(path.dirname(bed.p(p)), { recursive: true });
  fs.writeFileSync(bed.p(p), text);
}

const systemctlCalls = (bed: ReturnType<typeof makeBed>) => bed.run.calls.map((c) => c.argv).filter((a) => a[0] === 'systemctl');

test('Debian: with no unit installed the distro name is used (walinuxagent)', async () => {
  const b = makeBed();
  try {
    assert.equal(b.ctx.os.agentUnit(), 'walinuxagent');
    await b.ctx.os.stopAgentService();
    assert.deepEqual(systemctlCalls(b), [['systemctl', 'stop', 'walinuxagent']]);
  } finally { b.cleanup(); }
});

test('Debian: our unit installed as waagent.service (generic README path) is the one stopped and started', async () => {
  const b = makeBed();
  try {
    unit(b, '/lib/systemd/system/waagent.service');
    assert.equal(b.ctx.os.agentUnit(), 'waagent');
    assert.equal(await registerService(b.ctx.os, () => {}, () => {}), 0);
    assert.deepEqual(systemctlCalls(b), [['systemctl', 'stop', 'waagent'], ['systemctl', 'start', 'waagent']]);
  } finally { b.cleanup(); }
});

test('Debian: the package unit walinuxagent.service (or our override in /etc) wins over waagent.service', () => {
  const b = makeBed();
  try {
    unit(b, '/lib/systemd/system/waagent.service');
    unit(b, '/lib/systemd/system/walinuxagent.service');
    assert.equal(b.ctx.os.agentUnit(), 'walinuxagent');
    unit(b, '/etc/systemd/system/walinuxagent.service');
    assert.equal(b.ctx.os.agentUnit(), 'walinuxagent');
  } finally { b.cleanup(); }
});

test('Debian: a masked walinuxagent (link to /dev/null, or empty file) yields to waagent.service', () => {
  const b = makeBed();
  try {
    unit(b, '/lib/systemd/system/walinuxagent.service');
    unit(b, '/usr/lib/systemd/system/waagent.service');
    fs.mkdirSync(b.p('/etc/systemd/system'), { recursive: true });
    fs.symlinkSync('/dev/null', b.p('/etc/systemd/system/walinuxagent.service'));
    assert.equal(b.ctx.os.agentUnit(), 'waagent');
    fs.rmSync(b.p('/etc/systemd/system/walinuxagent.service'));
    fs.writeFileSync(b.p('/etc/systemd/system/walinuxagent.service'), '');
    assert.equal(b.ctx.os.agentUnit(), 'waagent');
  } finally { b.cleanup(); }
});

test('Debian: an enable link in /etc (alias to the /lib unit) counts as installed; a SysV script too', () => {
  const b = makeBed();
  try {
    unit(b, '/lib/systemd/system/waagent.service');
    fs.mkdirSync(b.p('/etc/systemd/system'), { recursive: true });
    fs.symlinkSync('/lib/systemd/system/waagent.service', b.p('/etc/systemd/system/walinuxagent.service'));
    assert.equal(b.ctx.os.agentUnit(), 'walinuxagent');
  } finally { b.cleanup(); }
  const c = makeBed();
  try {
    unit(c, '/etc/init.d/waagent', '#!/bin/sh\n');
    assert.equal(c.ctx.os.agentUnit(), 'waagent');
  } finally { c.cleanup(); }
});

test('Ubuntu: register unmasks and start/stop use the installed unit; RHEL keeps waagent', async () => {
  const u = makeBed({}, undefined, { id: 'ubuntu', name: 'ubuntu', version: '22.04', fullName: 'Ubuntu 22.04' });
  try {
    unit(u, '/lib/systemd/system/waagent.service');
    assert.equal(await registerService(u.ctx.os, () => {}, () => {}), 0);
    assert.deepEqual(systemctlCalls(u), [['systemctl', 'unmask', 'waagent'], ['systemctl', 'stop', 'waagent'], ['systemctl', 'start', 'waagent']]);
  } finally { u.cleanup(); }
  const r = makeBed({}, undefined, { id: 'rhel', name: 'rhel', like: ['fedora'], version: '9.2', fullName: 'Red Hat Enterprise Linux 9.2' });
  try {
    unit(r, '/usr/lib/systemd/system/walinuxagent.service');
    assert.equal(r.ctx.os.agentUnit(), 'waagent');
  } finally { r.cleanup(); }
});

test('journal: lines written to the journal stream carry the syslog priority of their level', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-journal-'));
  const file = path.join(dir, 'stream');
  const fd = fs.openSync(file, 'w+');
  const saved = process.env.JOURNAL_STREAM;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    process.env.JOURNAL_STREAM = `${st.dev}:${st.ino}`;
    assert.equal(isJournalStream(fd), true);
    assert.equal(isJournalStream(fd, { JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` }), false);
    assert.equal(isJournalStream(fd, {}), false);
    const l = new Logger();
    l.addAppender(streamAppender({ fd } as unknown as NodeJS.WritableStream & { fd: number }, Level.VERBOSE));
    l.verbose('v'); l.info('i'); l.warn('w'); l.error('e\nsecond line');
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    assert.deepEqual(lines.map((x) => x.slice(0, 3)), ['<7>', '<6>', '<4>', '<3>', '<3>']);
    assert.match(lines[2], /^<4>\d{4}-\d\d-\d\dT[\d:.]+Z WARNING Daemon w$/);
    assert.equal(lines[4], '<3>second line');
  } finally {
    if (saved === undefined) delete process.env.JOURNAL_STREAM; else process.env.JOURNAL_STREAM = saved;
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('journal: a stdout that is not the journal gets plain lines', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-journal-'));
  const fd = fs.openSync(path.join(dir, 'out'), 'w+');
  const saved = process.env.JOURNAL_STREAM;
  try {
    process.env.JOURNAL_STREAM = '1:2';
    const l = new Logger();
    l.addAppender(streamAppender({ fd } as unknown as NodeJS.WritableStream & { fd: number }, Level.INFO));
    l.warn('w');
    assert.match(fs.readFileSync(path.join(dir, 'out'), 'utf8'), /^\d{4}-.* WARNING Daemon w\n$/);
  } finally {
    if (saved === undefined) delete process.env.JOURNAL_STREAM; else process.env.JOURNAL_STREAM = saved;
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
