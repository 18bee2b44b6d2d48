// Hang guards for the parsers' worst shapes (issue 10 item 3). Speed itself is measured by test/bench/parsers.ts;
// these bounds are generous (10–50× the measured time) and only catch a return of the quadratic or recursive forms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { parseXml, XmlError, MAX_XML_DEPTH } from '../../src/core/xml';
import { Config } from '../../src/config/config';
import * as der from '../../src/crypto/der';

function timed(f: () => unknown): number {
  const t0 = performance.now();
  try { f(); } catch { /* the error is checked separately */ }
  return performance.now() - t0;
}

test('XML: 1 MB of "<a " is refused in linear time (was 26 s for 240 KB)', () => {
  const s = '<a '.repeat(350_000);
  assert.throws(() => parseXml(s, 'x'), XmlError);
  assert.ok(timed(() => parseXml(s, 'x')) < 2000);
  for (const unit of ['<!--', '<![CDATA[', '<?', '<a b="', '<a>']) {
    const h = `<r>${unit.repeat(200_000)}`;
    assert.throws(() => parseXml(h, 'x'), XmlError, unit);
    assert.ok(timed(() => parseXml(h, 'x')) < 2000, unit);
  }
});

test('XML: nesting deeper than MAX_XML_DEPTH is refused (no stack overflow in the tree walks)', () => {
  const deep = (n: number): string => '<a>'.repeat(n) + '</a>'.repeat(n);
  assert.equal(parseXml(deep(MAX_XML_DEPTH), 'x').local, 'a');
  assert.throws(() => parseXml(deep(MAX_XML_DEPTH + 1), 'x'), /nested deeper/);
  assert.throws(() => parseXml(deep(200_000), 'x'), /nested deeper/);
});

test('XML: what the old checker accepted still parses; stray "<" and two roots are refused', () => {
  const el = parseXml('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "x">]><!-- c --><r a=\'>\' b="<"><x/><![CDATA[<&>]]>t</r><!-- after -->', 'x');
  assert.equal(el.attrs.a, '>');
  assert.equal(el.children.filter((c) => typeof c === 'string').join(''), '<&>t');
  assert.throws(() => parseXml('<r>1 < 2</r>', 'x'), /stray/);
  assert.throws(() => parseXml('<r/><s/>', 'x'), /more than one root/);
  assert.throws(() => parseXml('<r></s>', 'x'), /closes/);
});

test('waagent.conf: a long inner run of spaces or quotes parses in linear time (was 39 s for 240 KB)', () => {
  const spaces = `Provisioning.Agent=a${' '.repeat(1_000_000)}b\n`;
  assert.ok(timed(() => Config.parse(spaces, 'w.conf')) < 1000);
  assert.equal(Config.parse(spaces, 'w.conf').values.get('Provisioning.Agent'), `a${' '.repeat(1_000_000)}b`);
  assert.equal(Config.parse('A.B= " x y " \n', 'w.conf').values.get('A.B'), 'x y');
  assert.ok(timed(() => Config.parse(`A=x${'" '.repeat(500_000)}y\n`, 'w.conf')) < 1000);
});

test('DER: deeply nested indefinite lengths are a DerError, not a stack overflow', () => {
  const b = Buffer.alloc(200_000).map((_, i) => (i % 2 ? 0x80 : 0x30));
  assert.throws(() => der.parse(Buffer.from(b)), der.DerError);
  const ok = Buffer.from([0x30, 0x80, 0x30, 0x80, 0x00, 0x00, 0x00, 0x00]);
  assert.equal(der.parse(ok).end, 8);
});
