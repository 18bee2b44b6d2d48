/**
 * Tenant certificates (fabric-protocol.md §3.4 step 5 – §3.5): the PFX inside the Certificates envelope is walked with
 * `forge.asn1` and decrypted with forge's PKCS#12 PBE (3DES, RC2-40, PBES2) using the empty password (BMP `00 00`);
 * a MAC mismatch is logged, not fatal. Certificates keep their raw DER (thumbprints = SHA-1 of it, via Node's
 * X509Certificate, so non-RSA certificates work too); keys are paired to certificates by public key. Files are
 * written to Lib.Dir under WALinuxAgent's names, all 0600; old `<THUMBPRINT>.*` files are kept (DECISIONS.md D9).
 */
import * as crypto from 'node:crypto';
import type * as Forge from 'node-forge';
import type { HostFs } from '../os/os';
import { log } from '../core/log';
import { forge } from './forge';
import { decryptEnvelopedData, type Recipient } from './pkcs7';

/** The cipher names to ask the fabric for, in order (`x-ms-cipher-name`, §3.2). */
export const CERT_CIPHERS = ['AES128_CBC', 'DES_EDE3_CBC'] as const;
export type CertCipher = (typeof CERT_CIPHERS)[number];

/** The PFX cannot be parsed or decrypted. */
export class Pkcs12Error extends Error {
  constructor(msg: string) { super(`PKCS#12: ${msg}`); this.name = 'Pkcs12Error'; }
}

/** One tenant certificate, with its private key when the PFX carried one. */
export interface TenantCertificate {
  /** SHA-1 of the DER, uppercase hex. */
  thumbprint: string;
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem?: string;
  subject: string;
}

type Asn1 = Forge.asn1.Asn1;
interface PbeCipher { update(b: Forge.util.ByteStringBuffer): void; finish(): boolean; output: Forge.util.ByteStringBuffer }
type PbeApi = { getCipher(oid: string, params: Asn1, password: string): PbeCipher };

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
};

function kids(a: Asn1 | undefined, what: string): Asn1[] {
  if (!a || !Array.isArray(a.value)) throw new Pkcs12Error(`${what} is not a constructed value`);
  return a.value as Asn1[];
}
function octets(a: Asn1 | undefined, what: string): string {
  if (!a) throw new Pkcs12Error(`${what} missing`);
  if (typeof a.value === 'string') return a.value;
  return (a.value as Asn1[]).map((c, i) => octets(c, `${what}[${i}]`)).join('');
}
function oidOf(a: Asn1 | undefined, what: string): string {
  if (!a || typeof a.value !== 'string') throw new Pkcs12Error(`${what} is not an OID`);
  return forge().asn1.derToOid(a.value);
}
function fromDer(bytes: string, what: string): Asn1 {
  try {
    return (forge().asn1.fromDer as unknown as (b: string, o: object) => Asn1)(bytes, { parseAllBytes: false });
  } catch (e) {
    throw new Pkcs12Error(`${what} is not DER: ${(e as Error).message}`);
  }
}
function toDer(a: Asn1): Buffer {
  return Buffer.from(forge().asn1.toDer(a).getBytes(), 'binary');
}
/** ContentInfo(data) → the OCTET STRING bytes. */
function dataContent(ci: Asn1, what: string): string {
  const [type, ctx] = kids(ci, what);
  if (oidOf(type, `${what}.contentType`) !== OID.data) throw new Pkcs12Error(`${what} is not pkcs7-data`);
  return octets(kids(ctx, `${what}.content`)[0], `${what}.content`);
}

/** What a PFX contains: raw certificate DERs and private keys (PKCS#8 DER), and whether the MAC matched. */
export interface PfxContents { certs: Buffer[]; keys: crypto.KeyObject[]; macOk: boolean | undefined }

function verifyMac(pfx: Asn1[], authSafe: string, password: string): boolean | undefined {
  const macData = pfx[2];
  if (!macData) return undefined;
  const f = forge();
  const [digestInfo, saltA, iterA] = kids(macData, 'MacData');
  const [algId, digestA] = kids(digestInfo, 'MacData.mac');
  const hashOid = oidOf(kids(algId, 'mac algorithm')[0], 'mac algorithm');
  const hash = hashOid === OID.sha1 ? 'sha1' : hashOid === OID.sha256 ? 'sha256' : undefined;
  if (!hash) { log.warn(`PKCS#12 MAC algorithm ${hashOid} unsupported: not verified`); return undefined; }
  const iterations = iterA ? f.util.createBuffer(octets(iterA, 'iterations')).getInt(octets(iterA, 'iterations').length * 8) : 1;
  const md = hash === 'sha1' ? f.md.sha1.create() : f.md.sha256.create();
  const n = hash === 'sha1' ? 20 : 32;
  const key = f.pkcs12.generateKey(password, f.util.createBuffer(octets(saltA, 'macSalt')), 3, iterations, n, md);
  const mac = crypto.createHmac(hash, Buffer.from(key.getBytes(), 'binary')).update(Buffer.from(authSafe, 'binary')).digest();
  return mac.equals(Buffer.from(octets(digestA, 'mac digest'), 'binary'));
}

function pbeDecrypt(algId: Asn1, data: string, password: string, what: string): string {
  const f = forge();
  const [oidA, params] = kids(algId, `${what} algorithm`);
  const pbe = (f.pki as unknown as { pbe: PbeApi }).pbe;
  let cipher: PbeCipher;
  try {
    cipher = pbe.getCipher(oidOf(oidA, `${what} algorithm`), params, password);
  } catch (e) {
    throw new Pkcs12Error(`${what}: ${(e as Error).message}`);
  }
  cipher.update(f.util.createBuffer(data));
  if (!cipher.finish()) throw new Pkcs12Error(`${what}: decryption failed (wrong password or corrupt data)`);
  return cipher.output.getBytes();
}

/**
 * Parses a PKCS#12 blob with the given password (default: the empty password, encoded `00 00` as the fabric uses).
 * A MAC mismatch is logged as a warning and parsing continues; structural or decryption errors throw `Pkcs12Error`.
 */
export function parsePfx(der: Buffer, password = ''): PfxContents {
  const pfx = kids(fromDer(der.toString('binary'), 'PFX'), 'PFX');
  const authSafe = dataContent(pfx[1], 'PFX.authSafe');
  const macOk = verifyMac(pfx, authSafe, password);
  if (macOk === false) log.warn('PKCS#12 MAC does not match; continuing (as WALinuxAgent does)');
  const out: PfxContents = { certs: [], keys: [], macOk };
  for (const [i, ci] of kids(fromDer(authSafe, 'AuthenticatedSafe'), 'AuthenticatedSafe').entries()) {
    const what = `AuthenticatedSafe[${i}]`;
    const [typeA, ctx] = kids(ci, what);
    const type = oidOf(typeA, `${what}.contentType`);
    let safeContents: string;
    if (type === OID.data) safeContents = dataContent(ci, what);
    else if (type === OID.encryptedData) {
      const ed = kids(kids(ctx, what)[0], `${what}.EncryptedData`);
      const [, algId, content] = kids(ed[1], `${what}.EncryptedContentInfo`);
      safeContents = pbeDecrypt(algId, octets(content, `${what}.encryptedContent`), password, what);
    } else {
      log.warn(`PKCS#12: skipping ${what} of unsupported type ${type}`);
      continue;
    }
    for (const [j, bag] of kids(fromDer(safeContents, `${what} SafeContents`), `${what} SafeContents`).entries()) {
      readBag(bag, `${what}.bag[${j}]`, password, out);
    }
  }
  return out;
}

function readBag(bag: Asn1, what: string, password: string, out: PfxContents): void {
  const [idA, valueA] = kids(bag, what);
  const id = oidOf(idA, `${what}.bagId`);
  const value = kids(valueA, `${what}.bagValue`)[0];
  if (id === OID.certBag) {
    const [certType, certValue] = kids(value, `${what}.CertBag`);
    if (oidOf(certType, `${what}.certId`) !== OID.x509Certificate) { log.warn(`PKCS#12: ${what} is not X.509, skipped`); return; }
    out.certs.push(Buffer.from(octets(kids(certValue, `${what}.certValue`)[0], `${what}.certValue`), 'binary'));
  } else if (id === OID.shroudedKeyBag || id === OID.keyBag) {
    let pki: Asn1 = value;
    if (id === OID.shroudedKeyBag) {
      const [algId, data] = kids(value, `${what}.EncryptedPrivateKeyInfo`);
      pki = fromDer(pbeDecrypt(algId, octets(data, `${what}.encryptedData`), password, what), `${what} PrivateKeyInfo`);
    }
    try {
      out.keys.push(crypto.createPrivateKey({ key: toDer(pki), format: 'der', type: 'pkcs8' }));
    } catch (e) {
      log.warn(`PKCS#12: private key in ${what} unreadable: ${(e as Error).message}`);
    }
  } else {
    log.verbose(`PKCS#12: ignoring bag type ${id}`);
  }
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
    let x: crypto.X509Certificate;
    try { x = new crypto.X509Certificate(der); } catch (e) { log.warn(`Skipping unparsable tenant certificate: ${(e as Error).message}`); continue; }
    const pub = spki(x.publicKey);
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
