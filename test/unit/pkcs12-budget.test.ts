// PKCS#12 key derivation is bounded (issue 10 fuzz campaign): an iteration count a blob names is checked on the
// node-forge path too (forge would run any count), and one blob may not spend more than MAX_TOTAL_ITERATIONS in all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import forge from 'node-forge';
import { parsePfx, Pkcs12Error, MAX_TOTAL_ITERATIONS, MAX_ITERATIONS } from '../../src/crypto/pkcs12';
import { makePfx, makeTenantCertificate } from '../fabric/certgen';

/** Rewrites every INTEGER 2000 (the iteration counts makePfx uses) in the DER tree to `count`. */
function withIterations(pfx: Buffer, count: number): Buffer {
  const A = forge.asn1;
  const walk = (a: forge.asn1.Asn1): void => {
    if (Array.isArray(a.value)) { for (const c of a.value) walk(c); return; }
    if (a.type === A.Type.INTEGER && a.tagClass === A.Class.UNIVERSAL && a.value === '\x07\xd0') a.value = A.integerToDer(count).getBytes();
    // nested DER inside OCTET STRINGs (the authSafe) is rewritten too
    if (a.type === A.Type.OCTETSTRING && typeof a.value === 'string' && a.value.length > 16 && a.value.charCodeAt(0) === 0x30) {
      try { const inner = A.fromDer(a.value); walk(inner); a.value = A.toDer(inner).getBytes(); } catch { /* not DER */ }
    }
  };
  const root = A.fromDer(pfx.toString('binary'));
  walk(root);
  return Buffer.from(A.toDer(root).getBytes(), 'binary');
}

test('an RC2 (node-forge path) bag naming 2^31-1 iterations is refused at once', () => {
  const t = makeTenantCertificate({ cn: 'budget' });
  const pfx = withIterations(makePfx([{ certPem: t.certPem }], { certBagCipher: 'rc2-40' }), 0x7fffffff);
  const t0 = performance.now();
  assert.throws(() => parsePfx(pfx), Pkcs12Error);
  assert.ok(performance.now() - t0 < 5000);
});

test('the iterations of all bags together are capped at MAX_TOTAL_ITERATIONS', () => {
  assert.ok(MAX_TOTAL_ITERATIONS < 3 * MAX_ITERATIONS);
  const t = makeTenantCertificate({ cn: 'budget2' });
  // MAC + key bag (key, iv) + cert bag (key, iv) at MAX_ITERATIONS each: 5 × 10⁶ > the total
  const pfx = withIterations(makePfx([{ certPem: t.certPem, keyPem: t.keyPem }]), MAX_ITERATIONS);
  assert.throws(() => parsePfx(pfx), /key-derivation iterations in one PKCS#12 blob|out of range/);
  // the normal blob still parses
  const ok = parsePfx(makePfx([{ certPem: t.certPem, keyPem: t.keyPem }]));
  assert.equal(ok.certs.length, 1);
  assert.equal(ok.keys.length, 1);
});
