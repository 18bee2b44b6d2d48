/**
 * The RemoteAccess document (fabric-protocol.md §2.6, §3.6): JIT users, parsed at the edge into typed values, and
 * their passwords — base64 CMS EnvelopedData addressed to the transport certificate — decrypted in-process
 * (crypto/pkcs7.ts) into text (UTF-16 with its BOM honoured, little-endian otherwise; trailing NULs dropped).
 */
import { parseXml, find, findAll, childText } from '../core/xml';
import { decryptEnvelopedData, type Recipient } from '../crypto/pkcs7';
import { DocumentError } from './documents';

export interface RemoteAccessUser {
  name: string;
  /** The base64 CMS as sent. */
  encryptedPassword: string;
  /** When the account expires (undefined: the text did not parse). */
  expiration?: Date;
  /** The Expiration text as sent (for messages). */
  expirationText: string;
}

export interface RemoteAccessDoc {
  incarnation: string;
  users: RemoteAccessUser[];
}

/**
 * Parses `%a, %d %b %Y %H:%M:%S %Z` (always GMT from the fabric) and plain `YYYY-MM-DD` dates (as UTC midnight).
 * Returns undefined for anything else.
 */
export function parseExpiration(text: string): Date | undefined {
  const t = text.trim();
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) {
    const d = new Date(`${t}T00:00:00Z`);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  if (!/^[A-Za-z]{3}, \d{1,2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} (GMT|UTC|Z)$/.test(t)) return undefined;
  const ms = Date.parse(t.replace(/ UTC$/, ' GMT'));
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/** Parses the RemoteAccess document. Users without a name are dropped; a repeated name keeps its first entry. */
export function parseRemoteAccess(xml: string): RemoteAccessDoc {
  const root = parseXml(xml, 'RemoteAccess');
  if (root.local !== 'RemoteAccess') throw new DocumentError('RemoteAccess', `root element is ${root.tag}`);
  const users: RemoteAccessUser[] = [];
  const seen = new Set<string>();
  for (const u of findAll(find(root, 'Users'), 'User')) {
    const name = (childText(u, 'Name') ?? '').trim();
    if (!name || seen.has(name)) continue;
    seen.add(name);
    const expirationText = (childText(u, 'Expiration') ?? '').trim();
    users.push({ name, encryptedPassword: (childText(u, 'Password') ?? '').replace(/\s+/g, ''), expiration: parseExpiration(expirationText), expirationText });
  }
  return { incarnation: (childText(root, 'Incarnation') ?? '').trim(), users };
}

/** UTF-16 text: BOM honoured (FF FE little-endian, FE FF big-endian), little-endian without one; NULs at the end dropped. */
export function decodeUtf16(buf: Buffer): string {
  let b = buf;
  let le = true;
  if (b.length >= 2 && b[0] === 0xfe && b[1] === 0xff) { le = false; b = b.subarray(2); }
  else if (b.length >= 2 && b[0] === 0xff && b[1] === 0xfe) b = b.subarray(2);
  if (b.length % 2) b = b.subarray(0, b.length - 1);
  if (!le) { const s = Buffer.from(b); s.swap16(); b = s; }
  return b.toString('utf16le').replace(/\0+$/, '');
}

/**
 * Decrypts a JIT password with the first recipient that opens it (the transport pair; the tenant keys as a fallback).
 * Throws when none does or when the result is empty.
 */
export function decryptPassword(encrypted: string, recipients: Recipient[]): string {
  const der = Buffer.from(encrypted, 'base64');
  if (der.length === 0) throw new Error('the password is empty');
  let last: unknown;
  for (const r of recipients) {
    try {
      const pw = decodeUtf16(decryptEnvelopedData(der, r));
      if (!pw) throw new Error('the decrypted password is empty');
      return pw;
    } catch (e) { last = e; }
  }
  throw new Error(`cannot decrypt the password: ${last instanceof Error ? last.message : String(last ?? 'no key')}`);
}
