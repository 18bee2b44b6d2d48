/**
 * A deliberately strict XML reader for the fabric simulator: the real WireServer rejects documents that are not
 * well-formed, so the simulator must too. It is independent of the agent's own (lenient) parser on purpose, so a bug
 * in one cannot hide a bug in the other. Supports what health and role-property reports contain: an optional XML
 * declaration, comments, elements with quoted attributes, text with the five named and numeric character
 * references, CDATA. Namespaces are kept as written (prefix:name); `local` strips the prefix.
 */

export interface SElement {
  name: string;
  local: string;
  attrs: Record<string, string>;
  children: SElement[];
  text: string;
}

/** Thrown for any well-formedness error; the message names the byte offset. */
export class StrictXmlError extends Error {}

const NAME = /^[A-Za-z_][A-Za-z0-9._:-]*/;

function decode(s: string, at: number): string {
  return s.replace(/&([^;&<]*);|&/g, (m, ref: string | undefined) => {
    if (ref === undefined) throw new StrictXmlError(`bare '&' in text near offset ${at}`);
    switch (ref) {
      case 'amp': return '&';
      case 'lt': return '<';
      case 'gt': return '>';
      case 'quot': return '"';
      case 'apos': return "'";
    }
    const num = /^#(x[0-9a-fA-F]+|[0-9]+)$/.exec(ref);
    if (!num) throw new StrictXmlError(`unknown entity '&${ref};' near offset ${at}`);
    const code = num[1].startsWith('x') ? parseInt(num[1].slice(1), 16) : parseInt(num[1], 10);
    if (!(code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0x10ffff))) {
      throw new StrictXmlError(`invalid character reference '&${ref};' near offset ${at}`);
    }
    return String.fromCodePoint(code);
  });
}

/** Parses a complete document; throws StrictXmlError unless it is well-formed with exactly one root element. */
export function parseStrictXml(input: string): SElement {
  let s = input;
  if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
  let i = 0;
  const stack: SElement[] = [];
  let root: SElement | undefined;
  const skipWs = (): void => { while (i < s.length && /\s/.test(s[i])) i++; };
  const fail = (msg: string): never => { throw new StrictXmlError(`${msg} at offset ${i}`); };

  skipWs();
  if (s.startsWith('<?xml', i)) {
    const end = s.indexOf('?>', i);
    if (end < 0) fail('unterminated XML declaration');
    const decl = s.slice(i, end + 2);
    if (!/^<\?xml\s+version\s*=\s*("1\.[0-9]"|'1\.[0-9]')(\s+encoding\s*=\s*("[A-Za-z0-9._-]+"|'[A-Za-z0-9._-]+'))?(\s+standalone\s*=\s*("(yes|no)"|'(yes|no)'))?\s*\?>$/.test(decl)) {
      fail('malformed XML declaration');
    }
    i = end + 2;
  }
  while (i < s.length) {
    if (s[i] === '<') {
      if (s.startsWith('<!--', i)) {
        const end = s.indexOf('-->', i + 4);
        if (end < 0) fail('unterminated comment');
        i = end + 3;
        continue;
      }
      if (s.startsWith('<![CDATA[', i)) {
        if (!stack.length) fail('CDATA outside the root element');
        const end = s.indexOf(']]>', i);
        if (end < 0) fail('unterminated CDATA');
        stack[stack.length - 1].text += s.slice(i + 9, end);
        i = end + 3;
        continue;
      }
      if (s.startsWith('<?', i)) {
        const end = s.indexOf('?>', i);
        if (end < 0) fail('unterminated processing instruction');
        i = end + 2;
        continue;
      }
      if (s.startsWith('<!', i)) fail('DOCTYPE and declarations are not accepted');
      if (s[i + 1] === '/') {
        i += 2;
        const m = NAME.exec(s.slice(i));
        if (!m) fail('bad closing tag');
        const name = m![0];
        i += name.length;
        skipWs();
        if (s[i] !== '>') fail(`bad closing tag </${name}`);
        i++;
        const open = stack.pop();
        if (!open || open.name !== name) fail(`closing tag </${name}> does not match <${open?.name ?? '(none)'}>`);
        continue;
      }
      i++;
      const m = NAME.exec(s.slice(i));
      if (!m) fail('bad element name');
      const name = m![0];
      i += name.length;
      const el: SElement = { name, local: name.includes(':') ? name.slice(name.indexOf(':') + 1) : name, attrs: {}, children: [], text: '' };
      for (;;) {
        const before = i;
        skipWs();
        if (s.startsWith('/>', i) || s[i] === '>') break;
        if (i === before) fail(`missing whitespace before attribute in <${name}>`);
        const am = NAME.exec(s.slice(i));
        if (!am) fail(`bad attribute in <${name}>`);
        const an = am![0];
        i += an.length;
        skipWs();
        if (s[i] !== '=') fail(`attribute ${an} without value`);
        i++;
        skipWs();
        const q = s[i];
        if (q !== '"' && q !== "'") fail(`unquoted attribute ${an}`);
        const end = s.indexOf(q, i + 1);
        if (end < 0) fail(`unterminated attribute ${an}`);
        const raw = s.slice(i + 1, end);
        if (raw.includes('<')) fail(`'<' in attribute ${an}`);
        if (an in el.attrs) fail(`duplicate attribute ${an}`);
        el.attrs[an] = decode(raw, i);
        i = end + 1;
      }
      if (stack.length) stack[stack.length - 1].children.push(el);
      else if (root) fail('more than one root element');
      else root = el;
      if (s.startsWith('/>', i)) { i += 2; continue; }
      i++;
      stack.push(el);
      continue;
    }
    const next = s.indexOf('<', i);
    const chunk = s.slice(i, next < 0 ? s.length : next);
    if (!stack.length) {
      if (chunk.trim() !== '') fail('text outside the root element');
    } else {
      if (chunk.includes(']]>')) fail("']]>' in text");
      stack[stack.length - 1].text += decode(chunk, i);
    }
    i = next < 0 ? s.length : next;
  }
  if (stack.length) throw new StrictXmlError(`unclosed element <${stack[stack.length - 1].name}> at end of document`);
  if (!root) throw new StrictXmlError('no root element');
  return root;
}

/** The first descendant of `el` (document order) with local name `local`. */
export function descendant(el: SElement, local: string): SElement | undefined {
  for (const c of el.children) {
    if (c.local === local) return c;
    const d = descendant(c, local);
    if (d) return d;
  }
  return undefined;
}

/** The direct children of `el` with local name `local`. */
export function kids(el: SElement, local: string): SElement[] {
  return el.children.filter((c) => c.local === local);
}

/** The single direct child with local name `local`; throws StrictXmlError if there is none or more than one. */
export function one(el: SElement, local: string): SElement {
  const k = kids(el, local);
  if (k.length !== 1) throw new StrictXmlError(`<${el.local}> must contain exactly one <${local}>, found ${k.length}`);
  return k[0];
}
