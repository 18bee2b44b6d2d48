/**
 * SSH host keys made in-process (provisioning-and-os.md §3.14): key generation with Node's crypto in the thread pool
 * (RSA-3072 took 40–220 ms here against 0.2–1.0 s for `ssh-keygen -t rsa` on the same machine), written in OpenSSH's
 * own private-key format (`openssh-key-v1`, unencrypted — what `ssh-keygen -N ''` writes), and the fingerprint as
 * `ssh-keygen -lf` prints it (`SHA256:<base64 without padding>`). Output is read back by ssh-keygen and sshd.
 */
import * as crypto from 'node:crypto';
import { promisify } from 'node:util';
import { sshString, mpint, sshPublicKeyFromPem } from './ssh-keys';

export type HostKeyType = 'rsa' | 'ecdsa' | 'ed25519';

export interface HostKey {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` document (mode 0600 on disk). */
  privateKey: string;
  /** `<type> <base64> <comment>` line for `<key>.pub` (mode 0644 on disk). */
  publicLine: string;
  /** `SHA256:<base64>` as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

const generateKeyPair = promisify(crypto.generateKeyPair);
const b64u = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64url');
const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };

/** `ssh-keygen -lf` fingerprint of a public key line or blob: `SHA256:` + unpadded base64 of SHA-256(blob). */
export function sshFingerprint(publicLineOrBlob: string | Buffer): string {
  const blob = typeof publicLineOrBlob === 'string' ? Buffer.from(publicLineOrBlob.trim().split(/\s+/)[1] ?? '', 'base64') : publicLineOrBlob;
  return `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The private section fields of one key, after its type string. */
function privateFields(type: HostKeyType, jwk: crypto.JsonWebKey): Buffer[] {
  switch (type) {
    case 'rsa':
      return [sshString(Buffer.from('ssh-rsa')), mpint(b64u(jwk.n)), mpint(b64u(jwk.e)), mpint(b64u(jwk.d)),
        mpint(b64u(jwk.qi)), mpint(b64u(jwk.p)), mpint(b64u(jwk.q))];
    case 'ed25519': {
      const pk = b64u(jwk.x);
      return [sshString(Buffer.from('ssh-ed25519')), sshString(pk), sshString(Buffer.concat([b64u(jwk.d), pk]))];
    }
    case 'ecdsa': {
      const point = Buffer.concat([Buffer.from([4]), b64u(jwk.x), b64u(jwk.y)]);
      return [sshString(Buffer.from('ecdsa-sha2-nistp256')), sshString(Buffer.from('nistp256')), sshString(point), mpint(b64u(jwk.d))];
    }
  }
}

/** Encodes an unencrypted `openssh-key-v1` private key document. */
function opensshPrivateKey(type: HostKeyType, jwk: crypto.JsonWebKey, pubBlob: Buffer, comment: string): string {
  const check = crypto.randomBytes(4);
  let priv = Buffer.concat([check, check, ...privateFields(type, jwk), sshString(Buffer.from(comment, 'utf8'))]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'binary'),
    sshString(Buffer.from('none')), sshString(Buffer.from('none')), sshString(Buffer.alloc(0)),
    u32(1), sshString(pubBlob), sshString(priv),
  ]).toString('base64');
  const lines = body.match(/.{1,70}/g) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/**
 * Generates a host key of `type` (RSA 3072 bits and ECDSA P-256 as ssh-keygen's defaults, Ed25519) off the main
 * thread. `comment` is written as ssh-keygen does (`root@<host name>`).
 */
export async function generateHostKey(type: HostKeyType, comment: string): Promise<HostKey> {
  const { privateKey } = type === 'rsa'
    ? await generateKeyPair('rsa', { modulusLength: 3072, publicExponent: 0x10001 })
    : type === 'ecdsa'
      ? await generateKeyPair('ec', { namedCurve: 'prime256v1' })
      : await generateKeyPair('ed25519', {});
  const jwk = privateKey.export({ format: 'jwk' });
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const line = sshPublicKeyFromPem(pem);
  const pubBlob = Buffer.from(line.split(' ')[1], 'base64');
  return {
    privateKey: opensshPrivateKey(type, jwk, pubBlob, comment),
    publicLine: `${line} ${comment}`,
    fingerprint: sshFingerprint(pubBlob),
  };
}
