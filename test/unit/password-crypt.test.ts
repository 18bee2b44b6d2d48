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
