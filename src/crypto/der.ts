/**
 * A tiny ASN.1 DER reader and writer on Buffers: just what the CMS envelope, the PKCS#12 walk and the transport
 * certificate need, so the first boot does not load node-forge. The reader also accepts BER indefinite lengths and
 * constructed strings (the fabric's blobs come from Windows).
 */

/** The bytes are not the ASN.1 the caller expected (truncated, bad length, wrong tag). */
export class DerError extends Error {
  constructor(msg: string) { super(msg); this.name = 'DerError'; }
}

export const CLASS = { UNIVERSAL: 0, APPLICATION: 1, CONTEXT: 2, PRIVATE: 3 } as const;
export const TAG = {
  BOOLEAN: 1, INTEGER: 2, BIT_STRING: 3, OCTET_STRING: 4, NULL: 5, OID: 6, UTF8: 12, SEQUENCE: 16, SET: 17,
  UTC_TIME: 23, GENERALIZED_TIME: 24,
} as const;

/** One parsed element: positions into `buf` (no copies). */
export interface Node {
  buf: Buffer;
  cls: number;
  constructed: boolean;
  tag: number;
  /** Offset of the identifier octet. */
  start: number;
  contentStart: number;
  contentEnd: number;
  /** Offset just past the element (after the end-of-contents octets for an indefinite length). */
  end: number;
}

/** Deepest nesting of BER indefinite-length elements parsed (the fabric's CMS and PFX nest fewer than 10). */
export const MAX_INDEFINITE_DEPTH = 32;

/**
 * Parses the element at `off` (not beyond `limit`). Throws `DerError` on truncated or malformed input, and on
 * indefinite-length elements nested deeper than MAX_INDEFINITE_DEPTH (which are parsed recursively: without the
 * bound a few KB of `30 80` overflowed the stack, issue 10 fuzz campaign).
 */
export function parse(buf: Buffer, off = 0, limit = buf.length, depth = 0): Node {
  const start = off;
  if (depth > MAX_INDEFINITE_DEPTH) throw new DerError(`indefinite-length elements nested deeper than ${MAX_INDEFINITE_DEPTH} at ${off}`);
  if (off + 2 > limit) throw new DerError(`truncated element at ${off}`);
  const id = buf[off++];
  const cls = id >> 6; const constructed = (id & 0x20) !== 0;
  let tag = id & 0x1f;
  if (tag === 0x1f) {
    tag = 0;
    for (let b = 0x80; b & 0x80;) {
      if (off >= limit || tag > 0xffffff) throw new DerError(`bad tag at ${start}`);
      b = buf[off++]; tag = tag * 128 + (b & 0x7f);
    }
  }
  if (off >= limit) throw new DerError(`truncated length at ${start}`);
  const l0 = buf[off++];
  if (l0 === 0x80) { // BER indefinite length: children until 00 00
    if (!constructed) throw new DerError(`indefinite length on a primitive at ${start}`);
    const contentStart = off;
    while (true) {
      if (off + 2 > limit) throw new DerError(`missing end-of-contents for element at ${start}`);
      if (buf[off] === 0 && buf[off + 1] === 0) return { buf, cls, constructed, tag, start, contentStart, contentEnd: off, end: off + 2 };
      off = parse(buf, off, limit, depth + 1).end;
    }
  }
  let len = l0;
  if (l0 & 0x80) {
    const n = l0 & 0x7f;
    if (n > 4 || off + n > limit) throw new DerError(`bad length at ${start}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off++];
  }
  if (off + len > limit) throw new DerError(`element at ${start} overruns its container (${len} bytes)`);
  return { buf, cls, constructed, tag, start, contentStart: off, contentEnd: off + len, end: off + len };
}

/** The children of a constructed element. Throws `DerError` for a primitive one or malformed content. */
export function children(n: Node): Node[] {
  if (!n.constructed) throw new DerError(`element at ${n.start} is not constructed`);
  const out: Node[] = [];
  for (let off = n.contentStart; off < n.contentEnd;) {
    const c = parse(n.buf, off, n.contentEnd);
    out.push(c); off = c.end;
  }
  return out;
}

/** The content octets; for a constructed string (BER chunks), the concatenation of its pieces. */
export function content(n: Node): Buffer {
  if (!n.constructed) return n.buf.subarray(n.contentStart, n.contentEnd);
  return Buffer.concat(children(n).map(content));
}

/** The whole encoded element (identifier, length, content). */
export function raw(n: Node): Buffer {
  return n.buf.subarray(n.start, n.end);
}

/** True when `n` is the universal type `tag` (or context-specific `[tag]` with `cls`). */
export function is(n: Node | undefined, tag: number, cls: number = CLASS.UNIVERSAL): n is Node {
  return !!n && n.cls === cls && n.tag === tag;
}

/** Dotted OID of an OBJECT IDENTIFIER element. Throws `DerError` if it is not one. */
export function oid(n: Node | undefined): string {
  if (!is(n, TAG.OID) || n.constructed || n.contentEnd === n.contentStart) throw new DerError('expected an OBJECT IDENTIFIER');
  const b = content(n);
  const parts: number[] = [];
  let v = 0;
  for (const byte of b) {
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** A small non-negative INTEGER (iteration counts, versions). Throws `DerError` if negative or above 2^48. */
export function smallInt(n: Node | undefined): number {
  if (!is(n, TAG.INTEGER)) throw new DerError('expected an INTEGER');
  const b = content(n);
  if (b.length === 0 || b.length > 7 || b[0] & 0x80) throw new DerError('INTEGER out of range');
  return b.reduce((acc, x) => acc * 256 + x, 0);
}

// ---- writer ----

function lengthBytes(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  const bytes: number[] = [];
  for (let l = len; l > 0; l = Math.floor(l / 256)) bytes.unshift(l & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Encodes one element with a low tag number (< 31). */
export function tlv(tag: number, body: Buffer, cls: number = CLASS.UNIVERSAL, constructed = false): Buffer {
  return Buffer.concat([Buffer.from([(cls << 6) | (constructed ? 0x20 : 0) | tag]), lengthBytes(body.length), body]);
}
export const seq = (...items: Buffer[]): Buffer => tlv(TAG.SEQUENCE, Buffer.concat(items), CLASS.UNIVERSAL, true);
export const set = (...items: Buffer[]): Buffer => tlv(TAG.SET, Buffer.concat(items), CLASS.UNIVERSAL, true);
export const octetString = (b: Buffer): Buffer => tlv(TAG.OCTET_STRING, b);
export const bitString = (b: Buffer): Buffer => tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), b]));
export const bool = (v: boolean): Buffer => tlv(TAG.BOOLEAN, Buffer.from([v ? 0xff : 0]));
export const nul = (): Buffer => tlv(TAG.NULL, Buffer.alloc(0));
export const utf8 = (s: string): Buffer => tlv(TAG.UTF8, Buffer.from(s, 'utf8'));
/** `[n] EXPLICIT` (constructed context-specific wrapper). */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(n, inner, CLASS.CONTEXT, true);
/** `[n] IMPLICIT` primitive context-specific element. */
export const implicit = (n: number, body: Buffer): Buffer => tlv(n, body, CLASS.CONTEXT, false);

/** INTEGER from unsigned big-endian magnitude bytes (a 0x00 is prepended when the top bit is set). */
export function uint(mag: Buffer): Buffer {
  let i = 0;
  while (i < mag.length - 1 && mag[i] === 0) i++;
  const m = mag.subarray(i);
  return tlv(TAG.INTEGER, m[0] & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : Buffer.from(m));
}

/** OBJECT IDENTIFIER from dotted form. */
export function oidDer(dotted: string): Buffer {
  const p = dotted.split('.').map(Number);
  const arcs = [p[0] * 40 + p[1], ...p.slice(2)];
  const out: number[] = [];
  for (const a of arcs) {
    const chunk: number[] = [a & 0x7f];
    for (let v = Math.floor(a / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(TAG.OID, Buffer.from(out));
}

/** X.509 Time: UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5), whole seconds, `Z`. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z';
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(digits.slice(2), 'ascii'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(digits, 'ascii'));
}
