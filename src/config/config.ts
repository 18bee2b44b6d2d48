/**
 * /etc/waagent.conf: the parser (WALinuxAgent HEAD rules, provisioning-and-os.md §2.2) and typed access
 * through the option table. An invalid value names the file, line and option and falls back to the default; an
 * unknown option is logged once.
 */
import { OPTION_BY_NAME, OPTIONS, SILENT_KEYS, type OptionDef } from './options';

export interface ConfigProblem { line: number; key: string; message: string }

/**
 * Drops leading and trailing `"` and spaces (WALinuxAgent strips them). A loop, not `/^[" ]+|[" ]+$/`: that regular
 * expression backtracks quadratically on a long inner run of spaces (240 KB took 39 s; issue 10 fuzz campaign).
 */
function stripQuotesAndSpaces(v: string): string {
  let a = 0; let b = v.length;
  while (a < b && (v[a] === '"' || v[a] === ' ')) a++;
  while (b > a && (v[b - 1] === '"' || v[b - 1] === ' ')) b--;
  return v.slice(a, b);
}

export class Config {
  /** Raw values by key (after `None` → unset). */
  readonly values = new Map<string, string>();
  readonly problems: ConfigProblem[] = [];
  readonly unknownKeys: string[] = [];
  /** Line number of each key's effective value (for messages). */
  private lines = new Map<string, number>();

  constructor(readonly source = '(defaults)', overrides: Record<string, string> = {}) {
    for (const [k, v] of Object.entries(overrides)) this.values.set(k, v);
  }

  /** Parses file content. Throws on an empty file ("cannot parse empty configuration"). */
  static parse(text: string, source: string, defaults: Record<string, string> = {}): Config {
    if (text.trim().length === 0) throw new Error(`Configuration file ${source} is empty: cannot parse empty configuration`);
    const c = new Config(source, defaults);
    const lines = text.replace(/^\uFEFF/, '').split('\n');
    lines.forEach((raw, i) => {
      if (raw.startsWith('#') || !raw.includes('=')) return;
      const eq = raw.indexOf('=');
      const key = raw.slice(0, eq).trim();
      let value = raw.slice(eq + 1);
      const hash = value.indexOf('#');
      if (hash >= 0) value = value.slice(0, hash);
      value = stripQuotesAndSpaces(value.trim()).trim();
      if (!key) return;
      c.lines.set(key, i + 1);
      if (value === 'None') c.values.delete(key); else c.values.set(key, value);
      if (!OPTION_BY_NAME.has(key) && !SILENT_KEYS.includes(key) && !c.unknownKeys.includes(key)) c.unknownKeys.push(key);
    });
    for (const o of OPTIONS) c.validate(o);
    return c;
  }

  private validate(o: OptionDef): void {
    const v = this.values.get(o.name);
    if (v === undefined) return;
    const bad = (why: string) => this.problems.push({ line: this.lines.get(o.name) ?? 0, key: o.name, message: `${this.source}:${this.lines.get(o.name) ?? 0}: invalid value '${v}' for ${o.name} (${why}); using the default ${show(o, o.def)}` });
    if (o.type === 'switch' && !/^[yn]$/i.test(v)) bad('expected y or n');
    if (o.type === 'int' && !/^[+-]?\d+$/.test(v)) bad('expected an integer');
  }

  private def(name: string): OptionDef {
    const o = OPTION_BY_NAME.get(name);
    if (!o) throw new Error(`unknown option ${name}`);
    return o;
  }

  /** Whether the key is present in the file (with a value other than None). */
  has(name: string): boolean { return this.values.has(name); }

  bool(name: string): boolean {
    const o = this.def(name);
    const v = this.values.get(name)?.toLowerCase();
    if (v === 'y') return true;
    if (v === 'n') return false;
    return o.def as boolean;
  }

  str(name: string): string | null {
    const o = this.def(name);
    const v = this.values.get(name);
    return v !== undefined ? v : (o.def as string | null);
  }

  /** String option with a non-null default (throws if the table has None). */
  s(name: string): string {
    const v = this.str(name);
    if (v === null) throw new Error(`option ${name} has no value`);
    return v;
  }

  int(name: string): number | null {
    const o = this.def(name);
    const v = this.values.get(name);
    if (v !== undefined && /^[+-]?\d+$/.test(v)) return parseInt(v, 10);
    return o.def as number | null;
  }

  /** Every known option with its effective value, sorted by key in byte order (for -show-configuration). */
  effective(): [string, string][] {
    return OPTIONS.map((o): [string, string] => {
      const val = o.type === 'switch' ? this.bool(o.name) : o.type === 'int' ? this.int(o.name) : this.str(o.name);
      return [o.name, show(o, val)];
    }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }
}

function show(o: OptionDef, v: boolean | string | number | null): string {
  if (v === null) return 'None';
  if (o.type === 'switch') return v ? 'True' : 'False';
  return String(v);
}
