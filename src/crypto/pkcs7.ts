/**
 * CMS (PKCS#7) EnvelopedData decryption (fabric-protocol.md §3.4 steps 2–4): node-forge's PKCS#7 rejects the fabric's
 * SubjectKeyIdentifier-addressed recipients and lacks RSA-OAEP, so the structure is walked here with the small DER
 * reader (`der.ts`, no node-forge), the content key is decrypted with Node's RSA (OAEP natively; PKCS#1 v1.5 through
 * RSA_NO_PADDING and manual unpadding, which works on Node 20 and 24 alike), and the content with Node's ciphers.
 */
import * as crypto from 'node:crypto';
import * as der from './der';

/** The envelope is malformed, not addressed to us, or cannot be decrypted with our key. */
export class Pkcs7Error extends Error {
  constructor(msg: string) { super(`CMS EnvelopedData: ${msg}`); this.name = 'Pkcs7Error'; }
}

type Node = der.Node;

const OID_ENVELOPED = '1.2.840.113549.1.7.3';
const OID_RSA = '1.2.840.113549.1.1.1';
const OID_OAEP = '1.2.840.113549.1.1.7';
const HASH_OIDS: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1', '2.16.840.1.101.3.4.2.1': 'sha256', '2.16.840.1.101.3.4.2.2': 'sha384', '2.16.840.1.101.3.4.2.3': 'sha512',
};
const CONTENT_CIPHERS: Record<string, { name: string; keyLen: number; ivLen: number }> = {
  '2.16.840.1.101.3.4.1.2': { name: 'aes-128-cbc', keyLen: 16, ivLen: 16 },
  '2.16.840.1.101.3.4.1.22': { name: 'aes-192-cbc', keyLen: 24, ivLen: 16 },
  '2.16.840.1.101.3.4.1.42': { name: 'aes-256-cbc', keyLen: 32, ivLen: 16 },
  '1.2.840.113549.3.7': { name: 'des-ede3-cbc', keyLen: 24, ivLen: 8 },
};

/** Runs a DER accessor, turning a `DerError` into a `Pkcs7Error` naming what was being read. */
function at<T>(what: string, f: () => T): T {
  try { return f(); } catch (e) {
    if (e instanceof der.DerError) throw new Pkcs7Error(`${what}: ${e.message}`);
    throw e;
  }
}
function children(a: Node | undefined, what: string): Node[] {
  if (!a || !a.constructed) throw new Pkcs7Error(`${what} is not a constructed value`);
  return at(what, () => der.children(a));
}
function bytes(a: Node | undefined, what: string): Buffer {
  if (!a) throw new Pkcs7Error(`${what} missing`);
  return at(what, () => der.content(a)); // constructed (chunked) strings are concatenated
}
function oidOf(a: Node | undefined, what: string): string {
  if (!der.is(a, der.TAG.OID)) throw new Pkcs7Error(`${what} is not an OID`);
  return at(what, () => der.oid(a));
}

/** Who we are: our certificate (for issuer+serial and SKI matching) and our private key. */
export interface Recipient {
  keyPem: string;
  certPem: string;
}

interface RecipientInfo { skid?: Buffer; issuerSerial?: Buffer; keyAlg: Node; encryptedKey: Buffer }

function parseRecipient(ri: Node): RecipientInfo | undefined {
  // KeyTransRecipientInfo ::= SEQUENCE { version, rid, keyEncryptionAlgorithm, encryptedKey }
  if (!der.is(ri, der.TAG.SEQUENCE)) return undefined; // kari/kekri/...
  const [, rid, keyAlg, ek] = children(ri, 'RecipientInfo');
  if (!rid || !keyAlg || !ek) throw new Pkcs7Error('truncated KeyTransRecipientInfo');
  const info: RecipientInfo = { keyAlg, encryptedKey: bytes(ek, 'encryptedKey') };
  if (der.is(rid, 0, der.CLASS.CONTEXT)) info.skid = bytes(rid, 'subjectKeyIdentifier');
  else info.issuerSerial = Buffer.from(der.raw(rid));
  return info;
}

/** DER of IssuerAndSerialNumber for a certificate, to match issuer+serial-addressed recipients. */
function issuerAndSerialDer(certPem: string): Buffer {
  const certDer = Buffer.from(new crypto.X509Certificate(certPem).raw);
  const tbs = children(children(at('Certificate', () => der.parse(certDer)), 'Certificate')[0], 'TBSCertificate');
  const off = tbs[0].cls === der.CLASS.CONTEXT ? 1 : 0; // explicit [0] version
  return der.seq(der.raw(tbs[off + 2]), der.raw(tbs[off]));
}

/** SHA-1 of the RSAPublicKey: the SKI the fabric uses. */
function skiOf(certPem: string): Buffer {
  const pub = new crypto.X509Certificate(certPem).publicKey.export({ type: 'pkcs1', format: 'der' });
  return crypto.createHash('sha1').update(pub).digest();
}

/** RSA PKCS#1 v1.5 type 2 decryption via a raw RSA operation (Node ≥ 20.11 refuses RSA_PKCS1_PADDING). */
function rsaPkcs1v15Decrypt(key: crypto.KeyObject, data: Buffer): Buffer {
  const em = crypto.privateDecrypt({ key, padding: crypto.constants.RSA_NO_PADDING }, data);
  // EM = 00 || 02 || PS (>= 8 non-zero bytes) || 00 || M
  if (em.length < 11 || em[0] !== 0 || em[1] !== 2) throw new Pkcs7Error('wrong key or corrupt encryptedKey (bad PKCS#1 v1.5 block)');
  const sep = em.indexOf(0, 2);
  if (sep < 10) throw new Pkcs7Error('wrong key or corrupt encryptedKey (bad PKCS#1 v1.5 padding)');
  return em.subarray(sep + 1);
}

function decryptKey(info: RecipientInfo, key: crypto.KeyObject): Buffer {
  const [algOid, params] = children(info.keyAlg, 'keyEncryptionAlgorithm');
  const alg = oidOf(algOid, 'keyEncryptionAlgorithm');
  if (alg === OID_RSA) return rsaPkcs1v15Decrypt(key, info.encryptedKey);
  if (alg === OID_OAEP) {
    let hash = 'sha1';
    // RSAES-OAEP-params ::= SEQUENCE { hashAlgorithm [0] ..., maskGenAlgorithm [1] ..., pSourceAlgorithm [2] ... }
    if (params && params.constructed) {
      for (const p of children(params, 'RSAES-OAEP-params')) {
        if (der.is(p, 0, der.CLASS.CONTEXT)) {
          const h = HASH_OIDS[oidOf(children(children(p, 'hashAlgorithm')[0], 'hashAlgorithm')[0], 'hash OID')];
          if (!h) throw new Pkcs7Error('unsupported OAEP hash');
          hash = h;
        }
      }
    }
    try {
      return crypto.privateDecrypt({ key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, info.encryptedKey);
    } catch (e) {
      throw new Pkcs7Error(`wrong key or corrupt encryptedKey (RSA-OAEP: ${(e as Error).message})`);
    }
  }
  throw new Pkcs7Error(`unsupported key encryption algorithm ${alg}`);
}

/**
 * Decrypts a DER CMS ContentInfo(EnvelopedData) addressed to `me` and returns the plaintext (the PFX, for the
 * Certificates document). Recipients are matched by SubjectKeyIdentifier or issuer+serial; a lone recipient that
 * matches neither is still tried. Throws `Pkcs7Error` with the reason on any failure.
 */
export function decryptEnvelopedData(input: Buffer, me: Recipient): Buffer {
  let root: Node;
  try {
    root = der.parse(input);
  } catch (e) {
    throw new Pkcs7Error(`not DER: ${(e as Error).message}`);
  }
  const [ctype, ctx] = children(root, 'ContentInfo');
  if (oidOf(ctype, 'contentType') !== OID_ENVELOPED) throw new Pkcs7Error('content type is not envelopedData');
  const env = children(ctx, 'content')[0];
  const envItems = children(env, 'EnvelopedData');
  // EnvelopedData ::= SEQUENCE { version, originatorInfo [0] OPTIONAL, recipientInfos SET, encryptedContentInfo, ... }
  let i = 1;
  if (envItems[i]?.cls === der.CLASS.CONTEXT) i++;
  const recipients = children(envItems[i], 'recipientInfos').map(parseRecipient).filter((r): r is RecipientInfo => !!r);
  const eci = children(envItems[i + 1], 'EncryptedContentInfo');
  if (recipients.length === 0) throw new Pkcs7Error('no key-transport recipient');

  const ski = skiOf(me.certPem);
  let ias: Buffer | undefined;
  try { ias = issuerAndSerialDer(me.certPem); } catch { ias = undefined; }
  const mine = recipients.filter((r) => (r.skid && r.skid.equals(ski)) || (r.issuerSerial && ias && r.issuerSerial.equals(ias)));
  const candidates = mine.length ? mine : recipients.length === 1 ? recipients : [];
  if (candidates.length === 0) {
    throw new Pkcs7Error(`not addressed to our certificate (our SKI ${ski.toString('hex').toUpperCase()})`);
  }

  const [, algId, content] = eci;
  const [cipherOid, ivParam] = children(algId, 'contentEncryptionAlgorithm');
  const cipher = CONTENT_CIPHERS[oidOf(cipherOid, 'content cipher')];
  if (!cipher) throw new Pkcs7Error(`unsupported content cipher ${oidOf(cipherOid, 'content cipher')}`);
  const iv = bytes(ivParam, 'IV');
  if (iv.length !== cipher.ivLen) throw new Pkcs7Error(`IV of ${iv.length} bytes for ${cipher.name}`);
  if (!der.is(content, 0, der.CLASS.CONTEXT)) {
    throw new Pkcs7Error('no encryptedContent');
  }
  const ciphertext = bytes(content, 'encryptedContent');

  const key = crypto.createPrivateKey(me.keyPem);
  let lastErr: unknown;
  for (const r of candidates) {
    try {
      const cek = decryptKey(r, key);
      if (cek.length !== cipher.keyLen) throw new Pkcs7Error(`content key of ${cek.length} bytes for ${cipher.name}`);
      const d = crypto.createDecipheriv(cipher.name, cek, iv);
      try {
        return Buffer.concat([d.update(ciphertext), d.final()]);
      } catch (e) {
        throw new Pkcs7Error(`content decryption failed (${cipher.name}): ${(e as Error).message}`);
      }
    } catch (e) {
      lastErr = e;
    }
  }
  throw lastErr instanceof Pkcs7Error ? lastErr : new Pkcs7Error(String(lastErr));
}
