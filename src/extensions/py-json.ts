/**
 * JSON text the way WALinuxAgent's Python writes it (`json.dumps` defaults: `", "` and `": "` separators, non-ASCII
 * as `\uXXXX`), for the files and variables extensions read (extensions.md §6.3 last bullets, §7.1, §7.3). Parsers do
 * not care; byte equality with WALA is free, so we take it. `RawJson` pieces (e.g. the literal `1.0`, D8) are
 * inserted verbatim; `undefined` members are dropped.
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
