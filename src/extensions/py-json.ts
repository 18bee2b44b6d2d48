/**
 * Python-compatible text, as WALinuxAgent produces it: JSON the way its Python writes it (`json.dumps` defaults:
 * `", "` and `": "` separators, non-ASCII as `\uXXXX`) for the files and variables extensions read (extensions.md
 * §6.3 last bullets, §7.1, §7.3) — parsers do not care, byte equality with WALA is free, so we take it; `RawJson`
 * pieces (the literal `1.0`, D8) are inserted verbatim, `undefined` members dropped — and UTF-8 decoding with
 * Python's `errors='backslashreplace'` (§6.4 command output, §8.2 status file excerpts).
 */
import { RawJson } from '../fabric/status';

function str(s: string): string {
  return JSON.stringify(s).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function pyJson(v: unknown): string {
  if (v instanceof RawJson) return v.text;
  if (typeof v === 'string') return str(v);
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : pyJson(x))).join(', ')}]`;
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined) parts.push(`${str(k)}: ${pyJson(x)}`);
  return `{${parts.join(', ')}}`;
}

/** Decodes UTF-8 like Python's `errors='backslashreplace'`: every byte of an invalid sequence becomes `\xNN`. */
export function decodeBackslashReplace(buf: Buffer): string {
  let out = ''; let i = 0; let start = 0;
  const flush = (end: number): void => { if (end > start) out += buf.toString('utf8', start, end); };
  while (i < buf.length) {
    const b = buf[i];
    let n = 0; let lo = 0x80; let hi = 0xbf;
    if (b < 0x80) { i++; continue; }
    if (b >= 0xc2 && b <= 0xdf) n = 1;
    else if (b >= 0xe0 && b <= 0xef) { n = 2; if (b === 0xe0) lo = 0xa0; if (b === 0xed) hi = 0x9f; }
    else if (b >= 0xf0 && b <= 0xf4) { n = 3; if (b === 0xf0) lo = 0x90; if (b === 0xf4) hi = 0x8f; }
    let ok = n > 0 && i + n < buf.length;
    for (let k = 1; ok && k <= n; k++) {
      const c = buf[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) ok = false;
    }
    if (ok) { i += n + 1; continue; }
    flush(i);
    out += `\\x${b.toString(16).padStart(2, '0')}`;
    i++; start = i;
  }
  flush(i);
  return out;
}
