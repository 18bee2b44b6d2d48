/**
 * XML at the edge: txml does the fast parse; this wrapper adds what txml lacks (TOOLCHAIN.md): a tag-balance check
 * (txml accepts unclosed tags), entity decoding (named and numeric) of text and attributes, CDATA kept literal,
 * whitespace kept (a password may contain spaces), lookup by local name (prefix-blind, as WALinuxAgent does for fabric
 * documents) and by namespace URI + local name (ovf-env.xml).
 */
import { parse as txmlParse } from 'txml';

export interface XmlElement {
  /** Tag as written, with its prefix (`wa:ProvisioningSection`). */
  tag: string;
  /** Local name (`ProvisioningSection`). */
  local: string;
  /** Attributes, entity-decoded, keyed as written. */
  attrs: Record<string, string>;
  children: XmlNode[];
  parent?: XmlElement;
}
export type XmlNode = XmlElement | string;

export class XmlError extends Error {
  constructor(what: string, detail: string) { super(`Malformed ${what}: ${detail}`); this.name = 'XmlError'; }
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Decodes the five named entities and numeric character references; unknown entities are left as written. */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (m, body: string) => {
    if (body[0] === '#') {
      const cp = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return Number.isFinite(cp) && cp >= 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return NAMED[body] ?? m;
  });
}

/** Escapes text for element content or attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Deepest element nesting accepted. Fabric and OVF documents nest < 15 deep; the tree walks below recurse. */
export const MAX_XML_DEPTH = 128;

const isNameEnd = (c: number): boolean =>
  c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x2f /* / */ || c === 0x3e /* > */;

/**
 * One linear pass over the markup (issue 10 item 3: the old regular expressions were quadratic on `<a <a <a …`):
 * checks that tags are balanced and properly nested (txml silently accepts unclosed tags), that there is one root,
 * that nesting stays within MAX_XML_DEPTH and that no `<` stands alone; skips comments, processing instructions and a
 * DOCTYPE; and replaces each CDATA section by its escaped text, so that entity decoding later restores it literally.
 * Every search starts where the previous one ended, and a failed search ends the scan: O(length).
 */
function prepare(s: string, what: string): string {
  const out: string[] = [];
  const stack: string[] = [];
  let last = 0; let i = 0; let roots = 0;
  const need = (needle: string, from: number, thing: string): number => {
    const e = s.indexOf(needle, from);
    if (e < 0) throw new XmlError(what, `${thing} is not closed`);
    return e;
  };
  for (;;) {
    const lt = s.indexOf('<', i);
    if (lt < 0) break;
    if (s.startsWith('<!--', lt)) { i = need('-->', lt + 4, 'comment') + 3; continue; }
    if (s.startsWith('<![CDATA[', lt)) {
      const e = need(']]>', lt + 9, 'CDATA section');
      if (stack.length === 0) throw new XmlError(what, 'CDATA outside the root element');
      out.push(s.slice(last, lt), escapeXml(s.slice(lt + 9, e)));
      i = last = e + 3;
      continue;
    }
    if (s.startsWith('<?', lt)) { i = need('?>', lt + 2, 'processing instruction') + 2; continue; }
    if (s.startsWith('<!', lt)) {
      if (s.slice(lt, lt + 9).toUpperCase() !== '<!DOCTYPE' || roots || stack.length) throw new XmlError(what, `unexpected markup at offset ${lt}`);
      const gt = need('>', lt + 9, 'DOCTYPE');
      const br = s.indexOf('[', lt + 9);
      i = br >= 0 && br < gt ? need('>', need(']', br + 1, 'DOCTYPE subset') + 1, 'DOCTYPE') + 1 : gt + 1;
      continue;
    }
    let j = lt + 1;
    const close = s.charCodeAt(j) === 0x2f;
    if (close) j++;
    const nameStart = j;
    while (j < s.length && !isNameEnd(s.charCodeAt(j))) j++;
    const name = s.slice(nameStart, j);
    if (!name || /[<!?"'=]/.test(name)) throw new XmlError(what, `stray "<" at offset ${lt}`);
    // to the end of the tag, stepping over quoted attribute values (a quote is searched for once, from here)
    for (;;) {
      if (j >= s.length) throw new XmlError(what, `<${close ? '/' : ''}${name.slice(0, 40)} is not closed`);
      const c = s.charCodeAt(j);
      if (c === 0x3e) break;
      if (c === 0x22 || c === 0x27) j = need(c === 0x22 ? '"' : "'", j + 1, `attribute value in <${name.slice(0, 40)}>`) + 1;
      else if (c === 0x3c) throw new XmlError(what, `<${name.slice(0, 40)} is not closed`);
      else j++;
    }
    const selfClose = !close && s.charCodeAt(j - 1) === 0x2f;
    if (close) {
      const top = stack.pop();
      if (top !== name) throw new XmlError(what, top ? `</${name.slice(0, 40)}> closes <${top.slice(0, 40)}>` : `unexpected </${name.slice(0, 40)}>`);
    } else {
      if (stack.length === 0) roots++;
      if (roots > 1) throw new XmlError(what, 'more than one root element');
      if (!selfClose) {
        stack.push(name);
        if (stack.length > MAX_XML_DEPTH) throw new XmlError(what, `elements nested deeper than ${MAX_XML_DEPTH}`);
      }
    }
    i = j + 1;
  }
  if (stack.length) throw new XmlError(what, `<${stack[stack.length - 1].slice(0, 40)}> is not closed`);
  if (roots !== 1) throw new XmlError(what, 'no root element');
  if (last === 0) return s;
  out.push(s.slice(last));
  return out.join('');
}

function convert(n: unknown, parent: XmlElement | undefined): XmlNode | undefined {
  if (typeof n === 'string') return decodeEntities(n);
  const t = n as { tagName: string; attributes: Record<string, string | null>; children: unknown[] };
  if (!t || typeof t.tagName !== 'string' || t.tagName.startsWith('?') || t.tagName.startsWith('!')) return undefined;
  const colon = t.tagName.indexOf(':');
  const el: XmlElement = { tag: t.tagName, local: colon >= 0 ? t.tagName.slice(colon + 1) : t.tagName, attrs: {}, children: [], parent };
  for (const [k, v] of Object.entries(t.attributes ?? {})) el.attrs[k] = decodeEntities(v ?? '');
  for (const c of t.children ?? []) { const x = convert(c, el); if (x !== undefined) el.children.push(x); }
  return el;
}

/**
 * Parses a document into its root element. `what` names the document in errors ("goal state", "ovf-env.xml").
 * Strips a BOM, NUL bytes and anything before the first `<` (as the W20 agent did for ovf-env.xml).
 */
export function parseXml(text: string, what: string): XmlElement {
  let s = text.replace(/^\uFEFF/, '').replace(/\0/g, '');
  const lt = s.indexOf('<');
  if (lt < 0) throw new XmlError(what, 'no XML content');
  s = prepare(s.slice(lt), what);
  let nodes: unknown[];
  try { nodes = txmlParse(s, { keepWhitespace: true, keepComments: false }) as unknown[]; } catch (e) {
    throw new XmlError(what, (e as Error).message.split('\n')[0]);
  }
  for (const n of nodes) {
    const el = convert(n, undefined);
    if (el && typeof el !== 'string') return el;
  }
  throw new XmlError(what, 'no root element');
}

function* descendants(el: XmlElement): Generator<XmlElement> {
  for (const c of el.children) if (typeof c !== 'string') { yield c; yield* descendants(c); }
}

/** First descendant (document order) with this local name, whatever its prefix. */
export function find(el: XmlElement | undefined, local: string): XmlElement | undefined {
  if (!el) return undefined;
  for (const d of descendants(el)) if (d.local === local) return d;
  return undefined;
}

/** All descendants with this local name. */
export function findAll(el: XmlElement | undefined, local: string): XmlElement[] {
  if (!el) return [];
  const out: XmlElement[] = [];
  for (const d of descendants(el)) if (d.local === local) out.push(d);
  return out;
}

/** Follows a path of local names, each step a descendant search (`findPath(gs, 'Container', 'ContainerId')`). */
export function findPath(el: XmlElement | undefined, ...locals: string[]): XmlElement | undefined {
  let cur = el;
  for (const l of locals) cur = find(cur, l);
  return cur;
}

/** The namespace URI of an element, resolved through the xmlns declarations of it and its ancestors. */
export function namespaceOf(el: XmlElement): string {
  const colon = el.tag.indexOf(':');
  const key = colon >= 0 ? `xmlns:${el.tag.slice(0, colon)}` : 'xmlns';
  for (let e: XmlElement | undefined = el; e; e = e.parent) if (key in e.attrs) return e.attrs[key];
  return '';
}

/** First descendant with this namespace URI and local name (prefixes do not matter). */
export function findNs(el: XmlElement | undefined, ns: string, local: string): XmlElement | undefined {
  if (!el) return undefined;
  for (const d of descendants(el)) if (d.local === local && namespaceOf(d) === ns) return d;
  return undefined;
}

export function findAllNs(el: XmlElement | undefined, ns: string, local: string): XmlElement[] {
  if (!el) return [];
  const out: XmlElement[] = [];
  for (const d of descendants(el)) if (d.local === local && namespaceOf(d) === ns) out.push(d);
  return out;
}

/**
 * Text of an element: its text children joined (CDATA included), not trimmed. `undefined` when the element is missing
 * or has no text (WALinuxAgent: "an empty element yields absent").
 */
export function textOf(el: XmlElement | undefined): string | undefined {
  if (!el) return undefined;
  const t = el.children.filter((c): c is string => typeof c === 'string').join('');
  return t.length ? t : undefined;
}

/** Text of the first descendant with this local name. */
export function childText(el: XmlElement | undefined, local: string): string | undefined {
  return textOf(find(el, local));
}

/** Attribute by name (or by local name, whatever its prefix); '' when missing. */
export function attr(el: XmlElement | undefined, name: string): string {
  if (!el) return '';
  if (name in el.attrs) return el.attrs[name];
  for (const [k, v] of Object.entries(el.attrs)) if (k.slice(k.indexOf(':') + 1) === name) return v;
  return '';
}
