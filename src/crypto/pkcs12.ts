/**
 * PKCS#12 (PFX) parsing (fabric-protocol.md §3.4 step 5) on Node's crypto: the PKCS#12 KDF (RFC 7292 appendix B) on
 * Node's hashes, `pbeWithSHAAnd3-KeyTripleDES-CBC` bags with Node's `des-ede3-cbc`, the MAC with Node's HMAC, the
 * structure walked with the small DER reader. That covers what the fabric sends today without loading node-forge;
 * anything else (RC2-40 certificate bags of older blobs, PBES2, shapes the walk does not expect) falls back to the
 * node-forge walk in `pkcs12-forge.ts`, loaded only then.
 */
import * as crypto from 'node:crypto';
import { log } from '../core/log';
import * as der from './der';

/** The PFX cannot be parsed or decrypted. */
export class Pkcs12Error extends Error {
  constructor(msg: string) { super(`PKCS#12: ${msg}`); this.name = 'Pkcs12Error'; }
}

/** What a PFX contains: raw certificate DERs and private keys (PKCS#8 DER), and whether the MAC matched. */
export interface PfxContents { certs: Buffer[]; keys: crypto.KeyObject[]; macOk: boolean | undefined }

/** Log lines gathered by a parse, written only once the parse is known to be the one whose result is used. */
export type PfxNotes = Array<['warn' | 'verbose', string]>;

export const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  pbeSha3Des: '1.2.840.113549.1.12.1.3',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
};

/** Iteration counts above this are refused (a hostile blob must not hang the agent). */
export const MAX_ITERATIONS = 1_000_000;
/**
 * Key-derivation iterations one `parsePfx` may spend in all (issue 10 fuzz campaign): each bag names its own count,
 * so without a total a few KB of bags at MAX_ITERATIONS each kept the CPU busy for minutes. The fabric's PFX spends
 * about 2000 × (1 MAC + 2 per encrypted bag) ≈ 10⁴.
 */
export const MAX_TOTAL_ITERATIONS = 2_000_000;
let iterationBudget = Infinity;

/** Charges `n` iterations to the running `parsePfx`; throws `Pkcs12Error` when its budget is spent. */
export function chargeIterations(n: number): void {
  if (!Number.isFinite(n) || n < 1 || n > MAX_ITERATIONS) throw new Pkcs12Error(`iteration count ${n} out of range`);
  iterationBudget -= n;
  if (iterationBudget < 0) throw new Pkcs12Error(`more than ${MAX_TOTAL_ITERATIONS} key-derivation iterations in one PKCS#12 blob`);
}

type HashName = 'sha1' | 'sha256';
const HASH_LEN: Record<HashName, number> = { sha1: 20, sha256: 32 };
type OneShot = (alg: string, data: Buffer, enc: 'buffer') => Buffer;
const oneShot = (crypto as unknown as { hash?: OneShot }).hash; // Node ≥ 20.12 / 21.7: much cheaper than createHash
const digest: (alg: HashName, data: Buffer) => Buffer = oneShot
  ? (alg, data) => oneShot(alg, data, 'buffer')
  : (alg, data) => crypto.createHash(alg).update(data).digest();

/** Repeats `b` to fill a multiple of `v` bytes (empty stays empty). */
function fill(b: Buffer, v: number, len = v * Math.ceil(b.length / v)): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) out[i] = b[i % b.length];
  return out;
}

/**
 * The PKCS#12 key derivation (RFC 7292 appendix B.2): `id` 1 = cipher key, 2 = IV, 3 = MAC key. The password is
 * encoded as a BMPString with its terminator, so the empty password is the two bytes `00 00` (as the fabric uses).
 */
export function pkcs12Kdf(password: string, salt: Buffer, id: 1 | 2 | 3, iterations: number, n: number, hash: HashName = 'sha1'): Buffer {
  const u = HASH_LEN[hash]; const v = 64;
  const pw = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) pw.writeUInt16BE(password.charCodeAt(i), i * 2);
  const I = Buffer.concat([fill(salt, v), fill(pw, v)]);
  const D = Buffer.alloc(v, id);
  const c = Math.ceil(n / u);
  chargeIterations(iterations);
  if (c > 1) chargeIterations(iterations * (c - 1));
  const out = Buffer.alloc(c * u);
  for (let i = 0; i < c; i++) {
    let A = digest(hash, Buffer.concat([D, I]));
    for (let r = 1; r < iterations; r++) A = digest(hash, A);
    A.copy(out, i * u);
    if (i + 1 < c) { // I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block
      const B = fill(A, v, v);
      for (let j = 0; j < I.length; j += v) {
        let carry = 1;
        for (let k = v - 1; k >= 0; k--) {
          const sum = I[j + k] + B[k] + carry;
          I[j + k] = sum & 0xff; carry = sum >> 8;
        }
      }
    }
  }
  return out.subarray(0, n);
}

/**
 * Verifies the PFX MAC (HMAC over the authenticated safe content, key from the KDF with ID 3). Returns undefined when
 * there is no MAC or its hash is unsupported (noted), else whether it matched. Throws `der.DerError` on a bad shape.
 */
export function verifyMac(mac: { hashOid: string; salt: Buffer; iterations: number; digest: Buffer }, authSafe: Buffer, password: string, notes: PfxNotes): boolean | undefined {
  const hash: HashName | undefined = mac.hashOid === OID.sha1 ? 'sha1' : mac.hashOid === OID.sha256 ? 'sha256' : undefined;
  if (!hash) { notes.push(['warn', `PKCS#12 MAC algorithm ${mac.hashOid} unsupported: not verified`]); return undefined; }
  if (mac.iterations < 1 || mac.iterations > MAX_ITERATIONS) throw new Pkcs12Error(`MAC iteration count ${mac.iterations} out of range`);
  const key = pkcs12Kdf(password, mac.salt, 3, mac.iterations, HASH_LEN[hash], hash);
  const got = crypto.createHmac(hash, key).update(authSafe).digest();
  return got.length === mac.digest.length && crypto.timingSafeEqual(got, mac.digest);
}

/** Internal: the native walk met something it does not handle; the forge walk should try. */
class NeedsForge extends Error {}

type Node = der.Node;

function kids(n: Node | undefined, what: string): Node[] {
  if (!n || !n.constructed) throw new NeedsForge(`${what} is not a constructed value`);
  return der.children(n);
}
function need(n: Node | undefined, what: string): Node {
  if (!n) throw new NeedsForge(`${what} missing`);
  return n;
}
/** ContentInfo(data) → the OCTET STRING content. */
function dataContent(ci: Node | undefined, what: string): Buffer {
  const [type, ctx] = kids(ci, what);
  if (der.oid(type) !== OID.data) throw new NeedsForge(`${what} is not pkcs7-data`);
  return der.content(need(kids(ctx, `${what}.content`)[0], `${what}.content`));
}

/** Decrypts a 3DES PKCS#12 PBE blob; other schemes go to forge. */
function pbeDecrypt(algId: Node | undefined, data: Buffer, password: string, what: string): Buffer {
  const [oidA, params] = kids(algId, `${what} algorithm`);
  const alg = der.oid(oidA);
  if (alg !== OID.pbeSha3Des) throw new NeedsForge(`${what} is encrypted with ${alg}`);
  const [saltA, iterA] = kids(params, `${what} PBE parameters`);
  if (!der.is(saltA, der.TAG.OCTET_STRING)) throw new NeedsForge(`${what} PBE salt is not an OCTET STRING`);
  const salt = der.content(saltA);
  const iterations = iterA ? der.smallInt(iterA) : 1;
  if (iterations < 1 || iterations > MAX_ITERATIONS) throw new Pkcs12Error(`${what}: iteration count ${iterations} out of range`);
  const key = pkcs12Kdf(password, salt, 1, iterations, 24);
  const iv = pkcs12Kdf(password, salt, 2, iterations, 8);
  try {
    const d = crypto.createDecipheriv('des-ede3-cbc', key, iv);
    return Buffer.concat([d.update(data), d.final()]);
  } catch {
    throw new Pkcs12Error(`${what}: decryption failed (wrong password or corrupt data)`);
  }
}

function readBag(bag: Node, what: string, password: string, out: PfxContents, notes: PfxNotes): void {
  const [idA, valueA] = kids(bag, what);
  const id = der.oid(idA);
  const value = kids(valueA, `${what}.bagValue`)[0];
  if (id === OID.certBag) {
    const [certType, certValue] = kids(value, `${what}.CertBag`);
    if (der.oid(certType) !== OID.x509Certificate) { notes.push(['warn', `PKCS#12: ${what} is not X.509, skipped`]); return; }
    out.certs.push(Buffer.from(der.content(need(kids(certValue, `${what}.certValue`)[0], `${what}.certValue`))));
  } else if (id === OID.shroudedKeyBag || id === OID.keyBag) {
    let pkcs8: Buffer;
    if (id === OID.shroudedKeyBag) {
      const [algId, data] = kids(value, `${what}.EncryptedPrivateKeyInfo`);
      if (!der.is(data, der.TAG.OCTET_STRING)) throw new NeedsForge(`${what}.encryptedData is not an OCTET STRING`);
      const plain = pbeDecrypt(algId, der.content(data), password, what);
      try { pkcs8 = Buffer.from(der.raw(der.parse(plain))); } catch (e) { throw new Pkcs12Error(`${what} PrivateKeyInfo is not DER: ${(e as Error).message}`); }
    } else {
      pkcs8 = Buffer.from(der.raw(need(value, `${what} keyBag`)));
    }
    try {
      out.keys.push(crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
    } catch (e) {
      notes.push(['warn', `PKCS#12: private key in ${what} unreadable: ${(e as Error).message}`]);
    }
  } else {
    notes.push(['verbose', `PKCS#12: ignoring bag type ${id}`]);
  }
}

function parseNative(input: Buffer, password: string, notes: PfxNotes): PfxContents {
  const pfx = kids(der.parse(input), 'PFX');
  const authSafe = dataContent(pfx[1], 'PFX.authSafe');
  let macOk: boolean | undefined;
  if (pfx[2]) {
    const [digestInfo, saltA, iterA] = kids(pfx[2], 'MacData');
    const [algId, digestA] = kids(digestInfo, 'MacData.mac');
    macOk = verifyMac({
      hashOid: der.oid(kids(algId, 'mac algorithm')[0]), salt: der.content(need(saltA, 'macSalt')),
      iterations: iterA ? der.smallInt(iterA) : 1, digest: der.content(need(digestA, 'mac digest')),
    }, authSafe, password, notes);
  }
  const out: PfxContents = { certs: [], keys: [], macOk };
  for (const [i, ci] of kids(der.parse(authSafe), 'AuthenticatedSafe').entries()) {
    const what = `AuthenticatedSafe[${i}]`;
    const [typeA, ctx] = kids(ci, what);
    const type = der.oid(typeA);
    let safeContents: Buffer;
    if (type === OID.data) safeContents = dataContent(ci, what);
    else if (type === OID.encryptedData) {
      const ed = kids(kids(ctx, what)[0], `${what}.EncryptedData`);
      const [, algId, content] = kids(ed[1], `${what}.EncryptedContentInfo`);
      if (!der.is(content, 0, der.CLASS.CONTEXT)) throw new NeedsForge(`${what} has no encryptedContent`);
      safeContents = pbeDecrypt(algId, der.content(content), password, what);
    } else {
      notes.push(['warn', `PKCS#12: skipping ${what} of unsupported type ${type}`]);
      continue;
    }
    let sc: Node;
    try { sc = der.parse(safeContents); } catch (e) { throw new Pkcs12Error(`${what} SafeContents is not DER: ${(e as Error).message}`); }
    for (const [j, bag] of kids(sc, `${what} SafeContents`).entries()) readBag(bag, `${what}.bag[${j}]`, password, out, notes);
  }
  return out;
}

let lastPath: 'native' | 'forge' | undefined;

/** Which walk produced the result of the last `parsePfx` call (for tests and diagnostics). */
export function lastPfxPath(): 'native' | 'forge' | undefined {
  return lastPath;
}

/**
 * Parses a PKCS#12 blob with the given password (default: the empty password, encoded `00 00` as the fabric uses):
 * natively for 3DES bags, through node-forge otherwise. A MAC mismatch is logged as a warning and parsing continues;
 * structural or decryption errors throw `Pkcs12Error`.
 */
export function parsePfx(input: Buffer, password = ''): PfxContents {
  iterationBudget = MAX_TOTAL_ITERATIONS;
  try { return parsePfxBudgeted(input, password); } finally { iterationBudget = Infinity; }
}

function parsePfxBudgeted(input: Buffer, password: string): PfxContents {
  let notes: PfxNotes = [];
  let out: PfxContents;
  try {
    out = parseNative(input, password, notes);
    lastPath = 'native';
  } catch (e) {
    if (!(e instanceof NeedsForge || e instanceof der.DerError)) throw e;
    log.verbose(`PKCS#12: ${e.message}; using node-forge`);
    notes = [];
    iterationBudget = MAX_TOTAL_ITERATIONS; // the forge walk starts afresh
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { parsePfxForge } = require('./pkcs12-forge') as typeof import('./pkcs12-forge');
    out = parsePfxForge(input, password, notes);
    lastPath = 'forge';
  }
  if (out.macOk === false) log.warn('PKCS#12 MAC does not match; continuing (as WALinuxAgent does)');
  for (const [level, msg] of notes) {
    if (level === 'warn') log.warn(msg); else log.verbose(msg);
  }
  return out;
}
