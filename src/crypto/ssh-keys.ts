/**
 * OpenSSH public-key lines from PEM material (fabric-protocol.md §3.6): a certificate, an SPKI public key, or a
 * PKCS#8/PKCS#1/SEC1 private key → `ssh-rsa AAAA...`, `ecdsa-sha2-nistp256 AAAA...` or `ssh-ed25519 AAAA...`, via
 * Node's KeyObject and its JWK export. Byte-identical to `ssh-keygen -i -m PKCS8` (no trailing space without a
 * comment).
 */
import * as crypto from 'node:crypto';

/** The PEM holds no key, or a key type OpenSSH cannot express. */
export class SshKeyError extends Error {
  constructor(msg: string) { super(msg); this.name = 'SshKeyError'; }
}

export function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}
/** RFC 4251 mpint from unsigned big-endian bytes: minimal, with a 00 prefix when the top bit is set. */
export function mpint(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length - 1 && unsigned[i] === 0) i++;
  let v = unsigned.subarray(i);
  if (v.length === 1 && v[0] === 0) v = Buffer.alloc(0);
  else if (v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return sshString(v);
}
const b64u = (s: string | undefined): Buffer => {
  if (!s) throw new SshKeyError('incomplete JWK');
  return Buffer.from(s, 'base64url');
};

const CURVES: Record<string, string> = { 'P-256': 'nistp256', 'P-384': 'nistp384', 'P-521': 'nistp521' };

/** The public KeyObject of a PEM certificate, public key or private key. */
function publicKeyOf(pem: string): crypto.KeyObject {
  if (/-----BEGIN (TRUSTED )?CERTIFICATE-----/.test(pem)) return new crypto.X509Certificate(pem).publicKey;
  try {
    return crypto.createPublicKey(pem); // also derives the public key of a private key PEM
  } catch (e) {
    throw new SshKeyError(`not a certificate or key in PEM form: ${(e as Error).message}`);
  }
}

/**
 * Converts PEM key material to one OpenSSH `authorized_keys` line (without newline): `<type> <base64>` plus
 * ` <comment>` when a comment is given. Supports RSA, ECDSA (P-256/384/521) and Ed25519; throws `SshKeyError` for
 * anything else or for input that is not PEM key material.
 */
export function sshPublicKeyFromPem(pem: string, comment?: string): string {
  const key = publicKeyOf(pem);
  const jwk = key.export({ format: 'jwk' });
  let type: string; let blob: Buffer;
  switch (jwk.kty) {
    case 'RSA':
      type = 'ssh-rsa';
      blob = Buffer.concat([sshString(Buffer.from(type)), mpint(b64u(jwk.e)), mpint(b64u(jwk.n))]);
      break;
    case 'EC': {
      const curve = CURVES[jwk.crv ?? ''];
      if (!curve) throw new SshKeyError(`unsupported EC curve ${jwk.crv}`);
      type = `ecdsa-sha2-${curve}`;
      const point = Buffer.concat([Buffer.from([4]), b64u(jwk.x), b64u(jwk.y)]);
      blob = Buffer.concat([sshString(Buffer.from(type)), sshString(Buffer.from(curve)), sshString(point)]);
      break;
    }
    case 'OKP':
      if (jwk.crv !== 'Ed25519') throw new SshKeyError(`unsupported key type ${jwk.crv}`);
      type = 'ssh-ed25519';
      blob = Buffer.concat([sshString(Buffer.from(type)), sshString(b64u(jwk.x))]);
      break;
    default:
      throw new SshKeyError(`unsupported key type ${jwk.kty}`);
  }
  return `${type} ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`;
}
