/**
 * Test-time certificate material shaped like the fabric's (fabric-protocol.md §3): tenant certificates, PKCS#12 blobs
 * as the WireServer builds them (empty password = BMP `00 00`, SHA-1 MAC with 2000 iterations, 3DES key bags, 3DES or
 * RC2-40 certificate bags), CMS EnvelopedData addressed by SubjectKeyIdentifier, and the Certificates document.
 * Used by the fabric simulator and by unit tests; never by production code.
 */
import * as crypto from 'node:crypto';
import forge from 'node-forge';

const asn1 = forge.asn1;
const pki = forge.pki;

/** A generated tenant certificate with its key, and its SHA-1 thumbprint (uppercase hex, as the fabric writes it). */
export interface TenantCertificate { certPem: string; keyPem: string; thumbprint: string }

function derOf(certPem: string): Buffer {
  return Buffer.from(new crypto.X509Certificate(certPem).raw);
}

/** Thumbprint (SHA-1 of the DER, uppercase hex) of a PEM certificate. */
export function thumbprintOf(certPem: string): string {
  return crypto.createHash('sha1').update(derOf(certPem)).digest('hex').toUpperCase();
}

/**
 * Generates an RSA-2048 key (Node crypto, fast) and a self-signed certificate `CN=<cn>` (node-forge, sha256, one year,
 * with a SubjectKeyIdentifier). Only RSA is offered: it is the only type the fabric has been seen to use.
 */
export function makeTenantCertificate(opts: { cn: string; keyType?: 'rsa' }): TenantCertificate {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '01' + crypto.randomBytes(15).toString('hex');
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60_000);
  cert.validity.notAfter = new Date(now + 365 * 86400_000);
  const name = [{ name: 'commonName', value: opts.cn }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([{ name: 'subjectKeyIdentifier' }, { name: 'basicConstraints', cA: false }]);
  cert.sign(pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  const certPem = pki.certificateToPem(cert);
  return { certPem, keyPem, thumbprint: thumbprintOf(certPem) };
}

// ---- small ASN.1 helpers -------------------------------------------------------------------------------------

const U = asn1.Class.UNIVERSAL;
const C = asn1.Class.CONTEXT_SPECIFIC;
const T = asn1.Type;
const bin = (b: Buffer): string => b.toString('binary');
const oid = (o: string): forge.asn1.Asn1 => asn1.create(U, T.OID, false, asn1.oidToDer(o).getBytes());
const seq = (items: forge.asn1.Asn1[]): forge.asn1.Asn1 => asn1.create(U, T.SEQUENCE, true, items);
const octets = (b: Buffer): forge.asn1.Asn1 => asn1.create(U, T.OCTETSTRING, false, bin(b));
const int = (n: number): forge.asn1.Asn1 => asn1.create(U, T.INTEGER, false, asn1.integerToDer(n).getBytes());
const toDer = (a: forge.asn1.Asn1): Buffer => Buffer.from(asn1.toDer(a).getBytes(), 'binary');

const OID = {
  data: '1.2.840.113549.1.7.1',
  envelopedData: '1.2.840.113549.1.7.3',
  encryptedData: '1.2.840.113549.1.7.6',
  certBag: '1.2.840.113549.1.12.10.1.3',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  localKeyId: '1.2.840.113549.1.9.21',
  pbe3des: '1.2.840.113549.1.12.1.3',
  pbeRc240: '1.2.840.113549.1.12.1.6',
  sha1: '1.3.14.3.2.26',
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsaOaep: '1.2.840.113549.1.1.7',
  aes128cbc: '2.16.840.1.101.3.4.1.2',
  desEde3cbc: '1.2.840.113549.3.7',
};

const ITERATIONS = 2000;

/** PKCS#12 KDF (RFC 7292 B.2, SHA-1) with the empty password encoded as the BMP terminator `00 00`. */
function p12Kdf(salt: Buffer, id: 1 | 2 | 3, n: number): Buffer {
  const out = forge.pkcs12.generateKey('', forge.util.createBuffer(bin(salt)), id, ITERATIONS, n);
  return Buffer.from(out.getBytes(), 'binary');
}

/** Encrypts with a PKCS#12 PBE scheme; returns the AlgorithmIdentifier and the ciphertext. */
function pbeEncrypt(plain: Buffer, scheme: '3des' | 'rc2-40'): { alg: forge.asn1.Asn1; data: Buffer } {
  const salt = crypto.randomBytes(8);
  let data: Buffer;
  if (scheme === '3des') {
    const c = crypto.createCipheriv('des-ede3-cbc', p12Kdf(salt, 1, 24), p12Kdf(salt, 2, 8));
    data = Buffer.concat([c.update(plain), c.final()]);
  } else {
    const c = forge.rc2.createEncryptionCipher(bin(p12Kdf(salt, 1, 5)), 40);
    c.start(bin(p12Kdf(salt, 2, 8)));
    c.update(forge.util.createBuffer(bin(plain)));
    c.finish();
    data = Buffer.from(c.output.getBytes(), 'binary');
  }
  const alg = seq([oid(scheme === '3des' ? OID.pbe3des : OID.pbeRc240), seq([octets(salt), int(ITERATIONS)])]);
  return { alg, data };
}

function dataContentInfo(content: Buffer): forge.asn1.Asn1 {
  return seq([oid(OID.data), asn1.create(C, 0, true, [octets(content)])]);
}

/**
 * Builds a PKCS#12 (PFX) blob the way the WireServer does: an authenticated safe holding a `data` SafeContents with
 * one pkcs8ShroudedKeyBag (3DES) per item that has a key, then an `encryptedData` SafeContents with every certificate
 * (3DES by default, or RC2-40 like older blobs); password empty (`00 00`); MAC HMAC-SHA1, 20-byte salt, 2000 iterations.
 * Keys and certificates share a localKeyID attribute when they belong together.
 */
export function makePfx(items: { certPem: string; keyPem?: string }[], opts?: { certBagCipher?: '3des' | 'rc2-40' }): Buffer {
  const keyBags: forge.asn1.Asn1[] = [];
  const certBags: forge.asn1.Asn1[] = [];
  items.forEach((item, i) => {
    const localId = Buffer.from([1, 0, 0, i]);
    const attrs = asn1.create(U, T.SET, true, [seq([oid(OID.localKeyId), asn1.create(U, T.SET, true, [octets(localId)])])]);
    if (item.keyPem) {
      const pkcs8 = crypto.createPrivateKey(item.keyPem).export({ type: 'pkcs8', format: 'der' });
      const enc = pbeEncrypt(pkcs8, '3des');
      const epki = seq([enc.alg, octets(enc.data)]);
      keyBags.push(seq([oid(OID.shroudedKeyBag), asn1.create(C, 0, true, [epki]), attrs]));
    }
    const certBag = seq([oid(OID.x509Certificate), asn1.create(C, 0, true, [octets(derOf(item.certPem))])]);
    certBags.push(seq([oid(OID.certBag), asn1.create(C, 0, true, [certBag]), ...(item.keyPem ? [attrs] : [])]));
  });
  const contents: forge.asn1.Asn1[] = [];
  if (keyBags.length) contents.push(dataContentInfo(toDer(seq(keyBags))));
  if (certBags.length) {
    const enc = pbeEncrypt(toDer(seq(certBags)), opts?.certBagCipher ?? '3des');
    const encryptedContentInfo = seq([oid(OID.data), enc.alg, asn1.create(C, 0, false, bin(enc.data))]);
    const encryptedData = seq([int(0), encryptedContentInfo]);
    contents.push(seq([oid(OID.encryptedData), asn1.create(C, 0, true, [encryptedData])]));
  }
  const authSafe = toDer(seq(contents));
  const macSalt = crypto.randomBytes(20);
  const mac = crypto.createHmac('sha1', p12Kdf(macSalt, 3, 20)).update(authSafe).digest();
  const macData = seq([
    seq([seq([oid(OID.sha1), asn1.create(U, T.NULL, false, '')]), octets(mac)]),
    octets(macSalt),
    int(ITERATIONS),
  ]);
  return toDer(seq([int(3), dataContentInfo(authSafe), macData]));
}

/** The SubjectKeyIdentifier extension value of a certificate (the 20 bytes inside the OCTET STRING). */
export function subjectKeyIdentifierOf(certPem: string): Buffer {
  const cert = pki.certificateFromPem(certPem);
  const ext = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | null;
  if (!ext?.subjectKeyIdentifier) throw new Error('recipient certificate has no SubjectKeyIdentifier extension');
  return Buffer.from(ext.subjectKeyIdentifier, 'hex');
}

/**
 * Encrypts `content` into a DER CMS ContentInfo(EnvelopedData) for the certificate `recipientCertPem`, as the
 * WireServer does for the `x-ms-cipher-name` it was asked for: `AES128_CBC` → RSA-OAEP (SHA-1) + aes-128-cbc,
 * `DES_EDE3_CBC` → RSA PKCS#1 v1.5 + des-ede3-cbc. EnvelopedData version 2, one KeyTransRecipientInfo version 2
 * addressed by `[0] subjectKeyIdentifier` (taken from the certificate's SKI extension).
 */
export function envelopePkcs7(content: Buffer, recipientCertPem: string, cipher: 'AES128_CBC' | 'DES_EDE3_CBC'): Buffer {
  const aes = cipher === 'AES128_CBC';
  const cek = crypto.randomBytes(aes ? 16 : 24);
  const iv = crypto.randomBytes(aes ? 16 : 8);
  const c = crypto.createCipheriv(aes ? 'aes-128-cbc' : 'des-ede3-cbc', cek, iv);
  const encrypted = Buffer.concat([c.update(content), c.final()]);
  const pub = new crypto.X509Certificate(recipientCertPem).publicKey;
  const encryptedKey = crypto.publicEncrypt(
    aes
      ? { key: pub, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }
      : { key: pub, padding: crypto.constants.RSA_PKCS1_PADDING },
    cek,
  );
  const keyAlg = aes ? seq([oid(OID.rsaOaep), seq([])]) : seq([oid(OID.rsaEncryption), asn1.create(U, T.NULL, false, '')]);
  const recipient = seq([
    int(2),
    asn1.create(C, 0, false, bin(subjectKeyIdentifierOf(recipientCertPem))),
    keyAlg,
    octets(encryptedKey),
  ]);
  const encryptedContentInfo = seq([
    oid(OID.data),
    seq([oid(aes ? OID.aes128cbc : OID.desEde3cbc), octets(iv)]),
    asn1.create(C, 0, false, bin(encrypted)),
  ]);
  const enveloped = seq([int(2), asn1.create(U, T.SET, true, [recipient]), encryptedContentInfo]);
  return toDer(seq([oid(OID.envelopedData), asn1.create(C, 0, true, [enveloped])]));
}

/** Base64 wrapped at 64 characters, as the WireServer writes `Data`. */
function wrapBase64(der: Buffer): string {
  return (der.toString('base64').match(/.{1,64}/g) ?? []).join('\n');
}

/** The Certificates document of fabric-protocol.md §3.3 around a DER CMS blob. */
export function certificatesXml(pkcs7Der: Buffer, incarnation: string): string {
  return '<?xml version="1.0" encoding="utf-8"?>\n' +
    '<CertificateFile xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="certificates10.xsd">\n' +
    '  <Version>2012-11-30</Version>\n' +
    `  <Incarnation>${incarnation}</Incarnation>\n` +
    '  <Format>Pkcs7BlobWithPfxContents</Format>\n' +
    `  <Data>${wrapBase64(pkcs7Der)}</Data>\n` +
    '</CertificateFile>\n';
}

/**
 * Protected settings as Azure sends them (extensions.md §7.2): the JSON text of `plain` in a DER CMS EnvelopedData for
 * `recipientCertPem` (RSA PKCS#1 v1.5 key transport, recipient by issuer and serial, AES-256-CBC — what
 * `openssl cms -encrypt -binary -outform DER -aes256` makes), base64 on one line.
 */
export function encryptProtectedSettings(plain: unknown, recipientCertPem: string): string {
  const p7 = forge.pkcs7.createEnvelopedData();
  p7.addRecipient(pki.certificateFromPem(recipientCertPem));
  p7.content = forge.util.createBuffer(forge.util.encodeUtf8(JSON.stringify(plain)));
  p7.encrypt(undefined, pki.oids['aes256-CBC']);
  return toDer(p7.toAsn1()).toString('base64');
}
