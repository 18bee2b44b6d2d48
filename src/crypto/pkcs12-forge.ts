/**
 * The node-forge PKCS#12 walk: the fallback of `pkcs12.ts` for blobs the native walk does not handle (RC2-40
 * certificate bags of older fabric blobs, PBES2, unusual encodings). Loaded only when needed, with node-forge.
 */
import * as crypto from 'node:crypto';
import type * as Forge from 'node-forge';
import { forge } from './forge';
import { OID, Pkcs12Error, verifyMac, chargeIterations, type PfxContents, type PfxNotes } from './pkcs12';

type Asn1 = Forge.asn1.Asn1;
interface PbeCipher { update(b: Forge.util.ByteStringBuffer): void; finish(): boolean; output: Forge.util.ByteStringBuffer }
type PbeApi = { getCipher(oid: string, params: Asn1, password: string): PbeCipher };

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
  // forge throws a plain Error for an OID arc wider than 53 bits (found by the fuzzer): a malformed blob, said as such
  try { return forge().asn1.derToOid(a.value); } catch (e) { throw new Pkcs12Error(`${what} is not a valid OID: ${(e as Error).message}`); }
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

function checkMac(pfx: Asn1[], authSafe: string, password: string, notes: PfxNotes): boolean | undefined {
  const macData = pfx[2];
  if (!macData) return undefined;
  const [digestInfo, saltA, iterA] = kids(macData, 'MacData');
  const [algId, digestA] = kids(digestInfo, 'MacData.mac');
  const iterBytes = iterA ? octets(iterA, 'iterations') : '\x01';
  // forge's getInt throws a plain Error beyond 32 bits (found by the fuzz campaign): read it here, range-checked
  if (!iterBytes.length || iterBytes.length > 4) throw new Pkcs12Error('MacData iteration count out of range');
  let iterations = 0;
  for (let i = 0; i < iterBytes.length; i++) iterations = iterations * 256 + iterBytes.charCodeAt(i);
  return verifyMac({
    hashOid: oidOf(kids(algId, 'mac algorithm')[0], 'mac algorithm'),
    salt: Buffer.from(octets(saltA, 'macSalt'), 'binary'), iterations,
    digest: Buffer.from(octets(digestA, 'mac digest'), 'binary'),
  }, Buffer.from(authSafe, 'binary'), password, notes);
}

function pbeDecrypt(algId: Asn1, data: string, password: string, what: string): string {
  const f = forge();
  const [oidA, params] = kids(algId, `${what} algorithm`);
  const pbe = (f.pki as unknown as { pbe: PbeApi }).pbe;
  chargeIterations(iterationCount(params, what)); // forge would run any count the blob names
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
 * Parses a PKCS#12 blob with node-forge's ASN.1 and PBE ciphers (any scheme forge knows: 3DES, RC2-40, PBES2);
 * the MAC is checked with the native KDF. Log lines go to `notes` (the caller writes them). Structural or decryption
 * errors throw `Pkcs12Error`.
 */
/** The iteration count of PKCS#12 PBE parameters (salt, count) or of PBES2's PBKDF2 parameters. */
function iterationCount(params: Asn1 | undefined, what: string): number {
  const p = kids(params, `${what} PBE parameters`);
  let countA = p[1];
  if (p[0] && Array.isArray(p[0].value)) { // PBES2: SEQUENCE { keyDerivationFunc { oid, { salt, count, ... } }, scheme }
    const kdf = kids(p[0], `${what} PBES2 key derivation`);
    countA = kids(kdf[1], `${what} PBKDF2 parameters`)[1];
  }
  const bytes = countA && typeof countA.value === 'string' ? countA.value : '';
  if (!bytes || bytes.length > 4) throw new Pkcs12Error(`${what}: iteration count missing or out of range`);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) n = n * 256 + bytes.charCodeAt(i);
  return n;
}

export function parsePfxForge(der: Buffer, password: string, notes: PfxNotes): PfxContents {
  const pfx = kids(fromDer(der.toString('binary'), 'PFX'), 'PFX');
  const authSafe = dataContent(pfx[1], 'PFX.authSafe');
  const macOk = checkMac(pfx, authSafe, password, notes);
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
      notes.push(['warn', `PKCS#12: skipping ${what} of unsupported type ${type}`]);
      continue;
    }
    for (const [j, bag] of kids(fromDer(safeContents, `${what} SafeContents`), `${what} SafeContents`).entries()) {
      readBag(bag, `${what}.bag[${j}]`, password, out, notes);
    }
  }
  return out;
}

function readBag(bag: Asn1, what: string, password: string, out: PfxContents, notes: PfxNotes): void {
  const [idA, valueA] = kids(bag, what);
  const id = oidOf(idA, `${what}.bagId`);
  const value = kids(valueA, `${what}.bagValue`)[0];
  if (id === OID.certBag) {
    const [certType, certValue] = kids(value, `${what}.CertBag`);
    if (oidOf(certType, `${what}.certId`) !== OID.x509Certificate) { notes.push(['warn', `PKCS#12: ${what} is not X.509, skipped`]); return; }
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
      notes.push(['warn', `PKCS#12: private key in ${what} unreadable: ${(e as Error).message}`]);
    }
  } else {
    notes.push(['verbose', `PKCS#12: ignoring bag type ${id}`]);
  }
}

