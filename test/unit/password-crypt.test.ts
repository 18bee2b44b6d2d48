import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cryptPassword, randomSalt } from '../../src/crypto/password-crypt';

function have(prog: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${prog}`], { stdio: 'ignore' }); return true; } catch { return false; }
}
const MKPASSWD = have('mkpasswd');
const OPENSSL = have('openssl');

const PASSWORDS = ['', 'a', 'Passw0rd!', 'pässwörd ünïcödé 密码', 'x'.repeat(200), 'with space and $dollar:colon', 'y'.repeat(64)];
const METHODS: [('1' | '5' | '6'), string, string][] = [['6', 'sha-512', '-6'], ['5', 'sha-256', '-5'], ['1', 'md5crypt', '-1']];

test('matches mkpasswd for every method, password and salt length', { skip: MKPASSWD ? false : 'mkpasswd (whois) not installed' }, () => {
  for (const [id, method] of METHODS) {
    for (const salt of ['abcdefgh', 'ABCDEFGHijklmnop', 'Zz09Zz09Zz09Zz09Extra']) {
      const cut = salt.slice(0, id === '1' ? 8 : 16);
      for (const pw of PASSWORDS) {
        const ref = execFileSync('mkpasswd', ['-m', method, '-S', cut, '-s'], { input: pw }).toString().trim();
        assert.equal(cryptPassword(pw, id, salt), ref, `id ${id} salt ${salt} pw ${JSON.stringify(pw).slice(0, 20)}`);
      }
    }
  }
});

test('matches openssl passwd', { skip: OPENSSL ? false : 'openssl not installed' }, () => {
  for (const [id, , flag] of METHODS) {
    for (const pw of ['Passw0rd!', 'pässwörd', ' spaced ']) {
      const salt = 'Salt1234salt5678';
      const cut = salt.slice(0, id === '1' ? 8 : 16);
      const ref = execFileSync('openssl', ['passwd', flag, '-salt', cut, '-stdin'], { input: `${pw}\n` }).toString().trim();
      assert.equal(cryptPassword(pw, id, salt), ref, `id ${id} pw ${JSON.stringify(pw)}`);
    }
  }
});

// Fixed known-answer vectors, generated once with `mkpasswd -m <method> -S <salt> -s` (whois 5.5) and cross-checked
// with `openssl passwd -1/-5/-6 -salt <salt> -stdin` (OpenSSL 3): these run whether or not the tools are installed, so
// a broken hash can never pass as "the right format".
const VECTORS: [('1' | '5' | '6'), string, string, string][] = [
  ['1', 'Passw0rd!', 'Salt1234', '$1$Salt1234$DrmHtPjj2ytqz4wq9DPao1'],
  ['1', 'pässwörd ünïcödé 密码', 'Salt1234', '$1$Salt1234$MMtSI/xS86FM/9.Hf/ync/'],
  ['1', '', 'Salt1234', '$1$Salt1234$wPrAO.sxznl2UoeIwJf7b1'],
  ['1', 'x'.repeat(200), 'abcdefgh', '$1$abcdefgh$z6x8uc2YR4Iwn7XrK8ZMY/'],
  ['5', 'Passw0rd!', 'Salt1234salt5678', '$5$Salt1234salt5678$edFMIEmJl0EVsMqRJVwnYvJiW.xoFzLk/Df.XNKrcV3'],
  ['5', 'pässwörd ünïcödé 密码', 'Salt1234salt5678', '$5$Salt1234salt5678$2n90r0.wSWi1zlaAzC4Ouev801jbut.NQ8BAa6HUK27'],
  ['5', '', 'Salt1234salt5678', '$5$Salt1234salt5678$OttjNqWnbpzq3Cr20LciySc41TXryxnfFeUbKtuKvYB'],
  ['5', 'x'.repeat(200), 'abcdefgh', '$5$abcdefgh$p1DRMssem7UX3RykoeHgHd2cOJOmkx4pzILzbY0TMm9'],
  ['6', 'Passw0rd!', 'Salt1234salt5678', '$6$Salt1234salt5678$6h5SSa/G73VTHSZQeIRKedlcoRnD/bA9QcvTqGVTqNZ2AuHAafFS/jy3wFU5P98Yx1SecPmE39kQ/GeRKDswU0'],
  ['6', 'pässwörd ünïcödé 密码', 'Salt1234salt5678', '$6$Salt1234salt5678$HsQQ9t2c5W9k38m93Av32fXVOYkQ2z77rAOjnISoa96rz1rXiXRCy46QOhPJ90yrl4P8VK9pKzJAfWZo1.q111'],
  ['6', '', 'Salt1234salt5678', '$6$Salt1234salt5678$58ZJhL1GR2ZdFQswHWB7SgzOqZQXOG4kWwTTWeGS2.yPZsrgKjyFibtH5sHGdBHqaUygv3S8gN/6lv6PKWJpj/'],
  ['6', 'x'.repeat(200), 'abcdefgh', '$6$abcdefgh$tpP3/LI4wMLKhgKp8bTwVQweEEM46u1QVpxJ4s7//kd/n92pnKvxNc51RM.csWa9OlZn10Z4pRopwomQmhBXx1'],
  ['6', 'with space and $dollar:colon', 'ABCDEFGHijklmnop', '$6$ABCDEFGHijklmnop$Xav2Kew5RhH2BVPzVVwdI3MsmmOEeWqgk0IdZmeYxolDB9uuFB790Fie5ocK0GG/.yXDefK8JKF6FchBTLlqY/'],
];

test('known-answer vectors for $1$, $5$ and $6$ (fixed strings from mkpasswd/openssl; no tool needed)', () => {
  for (const [id, pw, salt, want] of VECTORS) assert.equal(cryptPassword(pw, id, salt), want, `id ${id} pw ${JSON.stringify(pw).slice(0, 24)}`);
  // Longer salts are cut as crypt(3) cuts them: 8 characters for MD5-crypt, 16 for SHA-crypt.
  assert.equal(cryptPassword('Passw0rd!', '1', 'Salt1234MORE'), '$1$Salt1234$DrmHtPjj2ytqz4wq9DPao1');
  assert.equal(cryptPassword('Passw0rd!', '6', 'Salt1234salt5678MORE'), VECTORS[8][3]);
});

test('output format: $id$salt$hash with the right hash lengths', () => {
  assert.match(cryptPassword('x', '6', 'abc'), /^\$6\$abc\$[./0-9A-Za-z]{86}$/);
  assert.match(cryptPassword('x', '5', 'abc'), /^\$5\$abc\$[./0-9A-Za-z]{43}$/);
  assert.match(cryptPassword('x', '1', 'abcdefghij'), /^\$1\$abcdefgh\$[./0-9A-Za-z]{22}$/);
  assert.notEqual(cryptPassword('x', '6', 'abc'), cryptPassword('y', '6', 'abc'));
});

test('unsupported ids and bad salts are rejected with a clear error', () => {
  for (const id of ['2a', '2y', '7', '', 'sha512']) {
    assert.throws(() => cryptPassword('pw', id, 'salt'), /Unsupported Provisioning.PasswordCryptId/);
  }
  assert.throws(() => cryptPassword('pw', '6', 'bad$salt'), /Invalid password salt/);
  assert.throws(() => cryptPassword('pw', '6', ''), /Invalid password salt/);
});

test('randomSalt: requested length, [A-Za-z0-9] only, varies', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const s = randomSalt(10);
    assert.match(s, /^[A-Za-z0-9]{10}$/);
    seen.add(s);
  }
  assert.ok(seen.size > 45);
  assert.equal(randomSalt(16).length, 16);
  assert.throws(() => randomSalt(0));
  assert.throws(() => randomSalt(17));
});
