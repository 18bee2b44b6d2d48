// Host keys made in-process must be what OpenSSH reads: ssh-keygen derives the same public key from our private key
// file, and prints the same fingerprint for our public key file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { generateHostKey, sshFingerprint, type HostKeyType } from '../../src/crypto/openssh-key';

let haveSshKeygen = true;
try { execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' }); } catch (e) { haveSshKeygen = (e as { status?: number }).status !== undefined && (e as { code?: string }).code !== 'ENOENT'; }

for (const type of ['rsa', 'ecdsa', 'ed25519'] as HostKeyType[]) {
  test(`${type} host key: ssh-keygen reads the private key and agrees on the fingerprint`, { skip: !haveSshKeygen && 'ssh-keygen not installed' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hostkey-'));
    try {
      const k = await generateHostKey(type, 'root@test-host');
      const priv = join(dir, `ssh_host_${type}_key`);
      writeFileSync(priv, k.privateKey, { mode: 0o600 });
      writeFileSync(`${priv}.pub`, `${k.publicLine}\n`, { mode: 0o644 });
      const derived = execFileSync('ssh-keygen', ['-y', '-f', priv]).toString().trim().split(' ').slice(0, 2).join(' ');
      assert.equal(derived, k.publicLine.split(' ').slice(0, 2).join(' '));
      const lf = execFileSync('ssh-keygen', ['-lf', `${priv}.pub`]).toString().trim().split(/\s+/);
      assert.equal(lf[1], k.fingerprint);
      assert.equal(lf[2], 'root@test-host');
      assert.equal(sshFingerprint(k.publicLine), k.fingerprint);
      if (type === 'rsa') assert.equal(lf[0], '3072');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
