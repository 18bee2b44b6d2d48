/**
 * crypt(3)-compatible password hashes in TypeScript (provisioning-and-os.md §3.9, DECISIONS.md D2): SHA-512-crypt
 * (`$6$`), SHA-256-crypt (`$5$`) per Ulrich Drepper's published algorithm with the default 5000 rounds and no
 * `rounds=` prefix, and MD5-crypt (`$1$`). Salts come from a CSPRNG over [A-Za-z0-9]. No openssl binary is needed.
 */
import { createHash, randomInt } from 'node:crypto';

export type CryptId = '1' | '5' | '6';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SALT_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A salt of `length` characters from [A-Za-z0-9], drawn with the CSPRNG. Throws on a length outside 1..16. */
export function randomSalt(length: number): string {
  if (!Number.isInteger(length) || length < 1 || length > 16) throw new Error(`Invalid password salt length ${length} (expected 1..16)`);
  let s = '';
  for (let i = 0; i < length; i++) s += SALT_CHARS[randomInt(SALT_CHARS.length)];
  return s;
}

function b64From24(b2: number, b1: number, b0: number, n: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let out = '';
  for (let i = 0; i < n; i++) { out += ITOA64[w & 0x3f]; w >>>= 6; }
  return out;
}

/** Repeats `src` cyclically to `len` bytes. */
function stretch(src: Buffer, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) out[i] = src[i % src.length];
  return out;
}

const SHA512_ORDER = [[0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48],
  [28, 49, 7], [50, 8, 29], [9, 30, 51], [31, 52, 10], [53, 11, 32], [12, 33, 54], [34, 55, 13], [56, 14, 35],
  [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41]];
const SHA256_ORDER = [[0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14], [15, 25, 5], [6, 16, 26],
  [27, 7, 17], [18, 28, 8], [9, 19, 29]];

function shaCrypt(alg: 'sha256' | 'sha512', id: '5' | '6', pw: Buffer, salt: Buffer): string {
  const H = (...parts: Buffer[]) => { const h = createHash(alg); for (const p of parts) h.update(p); return h.digest(); };
  const hlen = alg === 'sha512' ? 64 : 32;
  const b = H(pw, salt, pw);
  const a = createHash(alg);
  a.update(pw); a.update(salt);
  let n = pw.length;
  for (; n > hlen; n -= hlen) a.update(b);
  a.update(b.subarray(0, n));
  for (let i = pw.length; i > 0; i >>= 1) a.update((i & 1) !== 0 ? b : pw);
  let c = a.digest();
  const dp = createHash(alg); for (let i = 0; i < pw.length; i++) dp.update(pw);
  const p = stretch(dp.digest(), pw.length);
  const ds = createHash(alg); for (let i = 0; i < 16 + c[0]; i++) ds.update(salt);
  const s = stretch(ds.digest(), salt.length);
  for (let r = 0; r < 5000; r++) {
    const h = createHash(alg);
    h.update((r & 1) !== 0 ? p : c);
    if (r % 3 !== 0) h.update(s);
    if (r % 7 !== 0) h.update(p);
    h.update((r & 1) !== 0 ? c : p);
    c = h.digest();
  }
  let out = '';
  if (alg === 'sha512') {
    for (const [x, y, z] of SHA512_ORDER) out += b64From24(c[x], c[y], c[z], 4);
    out += b64From24(0, 0, c[63], 2);
  } else {
    for (const [x, y, z] of SHA256_ORDER) out += b64From24(c[x], c[y], c[z], 4);
    out += b64From24(0, c[31], c[30], 3);
  }
  return `$${id}$${salt.toString('latin1')}$${out}`;
}

function md5Crypt(pw: Buffer, salt: Buffer): string {
  const magic = Buffer.from('$1$');
  const alt = createHash('md5').update(pw).update(salt).update(pw).digest();
  const ctx = createHash('md5');
  ctx.update(pw); ctx.update(magic); ctx.update(salt);
  for (let pl = pw.length; pl > 0; pl -= 16) ctx.update(alt.subarray(0, Math.min(16, pl)));
  for (let i = pw.length; i > 0; i >>= 1) ctx.update((i & 1) !== 0 ? Buffer.from([0]) : pw.subarray(0, 1));
  let f = ctx.digest();
  for (let i = 0; i < 1000; i++) {
    const h = createHash('md5');
    h.update((i & 1) !== 0 ? pw : f);
    if (i % 3 !== 0) h.update(salt);
    if (i % 7 !== 0) h.update(pw);
    h.update((i & 1) !== 0 ? f : pw);
    f = h.digest();
  }
  let out = '';
  for (const [x, y, z] of [[0, 6, 12], [1, 7, 13], [2, 8, 14], [3, 9, 15], [4, 10, 5]]) out += b64From24(f[x], f[y], f[z], 4);
  out += b64From24(0, 0, f[11], 2);
  return `$1$${salt.toString('latin1')}$${out}`;
}

/**
 * Hashes `password` (UTF-8) with crypt id `1` (MD5, salt cut to 8), `5` (SHA-256) or `6` (SHA-512; salt cut to 16).
 * Throws on any other id (e.g. `2a`, which cannot work with a `$id$salt` setting) and on a salt with characters
 * outside [A-Za-z0-9./], so a hash is never silently invalid.
 */
export function cryptPassword(password: string, id: string, salt: string): string {
  if (id !== '1' && id !== '5' && id !== '6') {
    throw new Error(`Unsupported Provisioning.PasswordCryptId '${id}': use 1 (MD5), 5 (SHA-256) or 6 (SHA-512)`);
  }
  if (!/^[A-Za-z0-9./]+$/.test(salt)) throw new Error('Invalid password salt: use characters from [A-Za-z0-9./]');
  const pw = Buffer.from(password, 'utf8');
  if (id === '1') return md5Crypt(pw, Buffer.from(salt.slice(0, 8), 'latin1'));
  return shaCrypt(id === '6' ? 'sha512' : 'sha256', id, pw, Buffer.from(salt.slice(0, 16), 'latin1'));
}
