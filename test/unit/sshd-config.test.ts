import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { setSshConfig, includesDropInDir, applySshdConfig } from '../../src/provision/steps/sshd-config';
import { makeBed } from './provision-helpers';
import { log, memoryAppender } from '../../src/core/log';

const split = (s: string) => s.split('\n');

test('replaces active global lines, leaves commented ones', () => {
  const out = setSshConfig(split('#PasswordAuthentication yes\nPasswordAuthentication yes\nPort 22\n'), 'PasswordAuthentication', 'no');
  assert.equal(out.join('\n'), '#PasswordAuthentication yes\nPasswordAuthentication no\nPort 22\n');
});

test('missing directive is inserted before the last element (end of a file ending in newline)', () => {
  assert.equal(setSshConfig(split('Port 22\n'), 'ClientAliveInterval', '180').join('\n'), 'Port 22\nClientAliveInterval 180\n');
  assert.equal(setSshConfig(split('Port 22'), 'ClientAliveInterval', '180').join('\n'), 'ClientAliveInterval 180\nPort 22');
});

test('Match blocks: lines inside are not touched; missing directive goes before the first Match', () => {
  const text = 'Port 22\nMatch User bob\n  PasswordAuthentication yes\nPasswordAuthentication yes\nMatch Group x\nX11Forwarding no\n';
  const out = setSshConfig(split(text), 'PasswordAuthentication', 'no').join('\n');
  // "PasswordAuthentication yes" at column 0 after Match is still inside the block (block start set) → not replaced.
  assert.equal(out, 'Port 22\nPasswordAuthentication no\nMatch User bob\n  PasswordAuthentication yes\nPasswordAuthentication yes\nMatch Group x\nX11Forwarding no\n');
});

test('Match all returns to global scope', () => {
  const text = 'Match User bob\n  X11Forwarding no\nMatch all\nPasswordAuthentication yes\n';
  assert.equal(setSshConfig(split(text), 'PasswordAuthentication', 'no').join('\n'), 'Match User bob\n  X11Forwarding no\nMatch all\nPasswordAuthentication no\n');
  const noLine = 'Match User bob\n  X11Forwarding no\nMatch all\n';
  // Block start was unset by Match all → appended at the end, after Match all.
  assert.equal(setSshConfig(split(noLine), 'ClientAliveInterval', '180').join('\n'), 'Match User bob\n  X11Forwarding no\nMatch all\nClientAliveInterval 180\n');
});

test('every active global occurrence is replaced; applying twice is stable', () => {
  const text = 'PasswordAuthentication yes\nPort 22\nPasswordAuthentication yes\n';
  const once = setSshConfig(split(text), 'PasswordAuthentication', 'no');
  assert.equal(once.join('\n'), 'PasswordAuthentication no\nPort 22\nPasswordAuthentication no\n');
  assert.deepEqual(setSshConfig(once, 'PasswordAuthentication', 'no'), once);
});

test('Include detection', () => {
  assert.equal(includesDropInDir('Include /etc/ssh/sshd_config.d/*.conf\n'), true);
  assert.equal(includesDropInDir('#Include /etc/ssh/sshd_config.d/*.conf\n'), false);
  assert.equal(includesDropInDir('Port 22\n'), false);
});

test('applySshdConfig: edits the file keeping its mode, writes the drop-in 0600, warns about an earlier drop-in, idempotent', async () => {
  const bed = makeBed();
  const mem = memoryAppender(); log.addAppender(mem);
  try {
    fs.chmodSync(bed.p('/etc/ssh/sshd_config'), 0o600);
    fs.writeFileSync(bed.p('/etc/ssh/sshd_config.d/10-cloud.conf'), 'PasswordAuthentication no\n');
    assert.equal(await applySshdConfig(bed.ctx, false), true);
    const main = bed.read('/etc/ssh/sshd_config');
    assert.match(main, /^PasswordAuthentication yes$/m);
    assert.match(main, /^#PasswordAuthentication yes$/m);
    assert.match(main, /^ChallengeResponseAuthentication yes$/m);
    assert.match(main, /^ClientAliveInterval 180$/m);
    assert.equal(bed.mode('/etc/ssh/sshd_config'), 0o600);
    assert.equal(bed.read('/etc/ssh/sshd_config.d/40-waagent.conf').split('\n').filter((l) => l && !l.startsWith('#')).join(','),
      'PasswordAuthentication yes,ChallengeResponseAuthentication yes,ClientAliveInterval 180');
    assert.equal(bed.mode('/etc/ssh/sshd_config.d/40-waagent.conf'), 0o600);
    assert.ok(mem.lines.some((l) => /10-cloud.conf sets PasswordAuthentication no/.test(l)));
    const before = fs.statSync(bed.p('/etc/ssh/sshd_config')).ino;
    assert.equal(await applySshdConfig(bed.ctx, false), false, 'second run changes nothing');
    assert.equal(fs.statSync(bed.p('/etc/ssh/sshd_config')).ino, before);
    assert.equal(await applySshdConfig(bed.ctx, true), true);
    assert.match(bed.read('/etc/ssh/sshd_config.d/40-waagent.conf'), /PasswordAuthentication no/);
  } finally { log.removeAppender(mem); bed.cleanup(); }
});

test('applySshdConfig: no drop-in without Include; skipped on distros that do not manage sshd_config; missing file throws', async () => {
  const bed = makeBed({ 'OS.SshClientAliveInterval': '60' });
  try {
    fs.writeFileSync(bed.p('/etc/ssh/sshd_config'), 'Port 22\n');
    await applySshdConfig(bed.ctx, true);
    assert.equal(bed.read('/etc/ssh/sshd_config'), 'Port 22\nPasswordAuthentication no\nChallengeResponseAuthentication no\nClientAliveInterval 60\n');
    assert.equal(fs.existsSync(bed.p('/etc/ssh/sshd_config.d/40-waagent.conf')), false);
    fs.rmSync(bed.p('/etc/ssh/sshd_config'));
    await assert.rejects(applySshdConfig(bed.ctx, true), /sshd_config not found/);
  } finally { bed.cleanup(); }
  const flat = makeBed({}, undefined, { id: 'flatcar', fullName: 'Flatcar Container Linux' });
  try {
    assert.equal(await applySshdConfig(flat.ctx, true), false);
    assert.equal(flat.read('/etc/ssh/sshd_config').includes('ClientAliveInterval'), false);
  } finally { flat.cleanup(); }
});
