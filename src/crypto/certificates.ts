/**
 * Tenant certificates (fabric-protocol.md §3.4 step 5 – §3.5): the PFX inside the Certificates envelope is parsed by
 * `pkcs12.ts` (natively for 3DES bags, node-forge only for other schemes) with the empty password (BMP `00 00`);
 * a MAC mismatch is logged, not fatal. Certificates keep their raw DER (thumbprints = SHA-1 of it, via Node's
 * X509Certificate, so non-RSA certificates work too); keys are paired to certificates by public key. Files are
 * written to Lib.Dir under WALinuxAgent's names, all 0600; old `<THUMBPRINT>.*` files are kept (DECISIONS.md D9).
 */
import * as crypto from 'node:crypto';
import type { HostFs } from '../os/os';
import { log } from '../core/log';
import { parsePfx, type PfxContents } from './pkcs12';
import { decryptEnvelopedData, type Recipient } from './pkcs7';
import { assertSafeThumbprint } from '../core/safe-names';

/** The cipher names to ask the fabric for, in order (`x-ms-cipher-name`, §3.2). */
export const CERT_CIPHERS = ['AES128_CBC', 'DES_EDE3_CBC'] as const;
export type CertCipher = (typeof CERT_CIPHERS)[number];

export { parsePfx, lastPfxPath, Pkcs12Error, type PfxContents } from './pkcs12';

/** One tenant certificate, with its private key when the PFX carried one. */
export interface TenantCertificate {
  /** SHA-1 of the DER, uppercase hex. */
  thumbprint: string;
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem?: string;
  subject: string;
}

function spki(k: crypto.KeyObject): Buffer {
  return k.export({ type: 'spki', format: 'der' });
}

/** Thumbprint of a certificate (PEM or DER): SHA-1 of the DER, uppercase hex. */
export function thumbprint(cert: string | Buffer): string {
  const der = Buffer.from(new crypto.X509Certificate(cert).raw);
  return crypto.createHash('sha1').update(der).digest('hex').toUpperCase();
}

/**
 * Pairs private keys with certificates by public key. A key without a certificate is dropped with a warning; a
 * certificate without a key has no `keyPem`. Unparsable certificates are skipped with a warning.
 */
export function pairKeys(contents: PfxContents): TenantCertificate[] {
  const keys = contents.keys.map((k) => ({ k, pub: spki(crypto.createPublicKey(k)), used: false }));
  const result: TenantCertificate[] = [];
  for (const der of contents.certs) {
    let x: crypto.X509Certificate; let pub: Buffer;
    // the public key is decoded lazily: a certificate can parse and still have an unreadable key (fuzz campaign)
    try { x = new crypto.X509Certificate(der); pub = spki(x.publicKey); } catch (e) { log.warn(`Skipping unparsable tenant certificate: ${(e as Error).message}`); continue; }
    const match = keys.find((k) => k.pub.equals(pub));
    const tc: TenantCertificate = { thumbprint: thumbprint(der), certPem: x.toString(), subject: x.subject.replace(/\n/g, ', ') };
    if (match) {
      match.used = true;
      tc.keyPem = match.k.export({ type: 'pkcs8', format: 'pem' }).toString();
      log.addSecret(tc.keyPem);
    }
    result.push(tc);
  }
  const orphans = keys.filter((k) => !k.used).length;
  if (orphans) log.warn(`${orphans} private key(s) in the certificates blob have no certificate: dropped`);
  return result;
}

/**
 * Decrypts the `Data` of a Certificates document (DER CMS) with the transport pair and returns the tenant
 * certificates. Throws `Pkcs7Error`/`Pkcs12Error` when the envelope or the PFX cannot be read (the caller then asks
 * again with the next cipher).
 */
export function decryptCertificates(cmsDer: Buffer, transport: Recipient): TenantCertificate[] {
  const pfx = decryptEnvelopedData(cmsDer, transport);
  return pairKeys(parsePfx(pfx));
}

/** Base64 wrapped at 64 columns. */
function wrap64(b64: string): string {
  return (b64.match(/.{1,64}/g) ?? []).join('\n');
}

/**
 * Writes the certificate files into `<libDir>` (all 0600, atomic): `Certificates.xml` (the raw document),
 * `Certificates.p7m` (MIME wrapper of the CMS), `Certificates.pem` (all certificates and keys), and for each
 * certificate `<THUMBPRINT>.crt` and, with a key, `<THUMBPRINT>.prv`. Existing files of other thumbprints are kept
 * (D9). Throws on a write error.
 */
export function writeCertificateFiles(hostFs: HostFs, libDir: string, rawXml: string, cmsDer: Buffer, certs: TenantCertificate[]): void {
  for (const c of certs) assertSafeThumbprint(c.thumbprint); // names files: checked before anything is written
  hostFs.mkdir(libDir, 0o700);
  const w = (name: string, data: string): void => hostFs.write(`${libDir}/${name}`, data, { mode: 0o600 });
  w('Certificates.xml', rawXml);
  const p7m = `${libDir}/Certificates.p7m`;
  w('Certificates.p7m', 'MIME-Version:1.0\n' +
    `Content-Disposition: attachment; filename="${p7m}"\n` +
    `Content-Type: application/x-pkcs7-mime; name="${p7m}"\n` +
    'Content-Transfer-Encoding: base64\n\n' + wrap64(cmsDer.toString('base64')) + '\n');
  w('Certificates.pem', certs.map((c) => c.certPem + (c.keyPem ?? '')).join(''));
  for (const c of certs) {
    w(`${c.thumbprint}.crt`, c.certPem);
    if (c.keyPem) w(`${c.thumbprint}.prv`, c.keyPem);
  }
}
