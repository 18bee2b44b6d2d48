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

test('fuzz finds: a MacData iteration count wider than 32 bits (forge path) is a Pkcs12Error, not forge\'s plain Error', () => {
  const t = makeTenantCertificate({ cn: 'macwide' });
  const A = forge.asn1;
  const root = A.fromDer(makePfx([{ certPem: t.certPem }], { certBagCipher: 'rc2-40' }).toString('binary'));
  const macData = (root.value as forge.asn1.Asn1[])[2];
  (macData.value as forge.asn1.Asn1[])[2].value = '\x01'.repeat(20); // a 160-bit INTEGER
  const pfx = Buffer.from(A.toDer(root).getBytes(), 'binary');
  assert.throws(() => parsePfx(pfx), Pkcs12Error);
});

test('fuzz finds: a tenant certificate whose public key cannot be decoded is skipped, not a crash', async () => {
  const crypto = await import('node:crypto');
  const { pairKeys } = await import('../../src/crypto/certificates');
  const good = makeTenantCertificate({ cn: 'good' });
  const bad = makeTenantCertificate({ cn: 'bad' });
  const der = Buffer.from(new crypto.X509Certificate(bad.certPem).raw);
  const spki = crypto.createPublicKey(bad.certPem).export({ type: 'spki', format: 'der' });
  der[der.indexOf(spki) + 24] ^= 0x01; // inside the RSAPublicKey: the certificate parses, its key does not
  const x = new crypto.X509Certificate(der);
  assert.throws(() => x.publicKey, 'the corruption reaches the key only');
  const out = pairKeys({ certs: [der, Buffer.from(new crypto.X509Certificate(good.certPem).raw)], keys: [], macOk: true });
  assert.equal(out.length, 1);
  assert.equal(out[0].subject.includes('good'), true);
});

test('fuzz finds: an OID arc wider than 53 bits in an encrypted bag (forge path) is a Pkcs12Error, not forge\'s plain Error', () => {
  // The long fuzz run's input (seed 7): a PFX whose EncryptedData content-encryption OID carries a huge arc.
  const input = Buffer.from('MIIDcgYJKoZIhvcNAQcBoIIDYwSCA18wggNbMIIDVwYJKoZIhvcNAQcGoIIDSDCCA0QCAQAwggM9BgkqhkiG9w0BBwEwHAYKKoZIhvcNAQwBBjAOBAi7UdUJBHQU/gICB9CAggMQYBJ4LYpi7H/2sSTF0LSeUkEr558eYOw6q6rFdJwiVrtXdBhDr9vnDxO9zIVVy1JFM0mrHX9pGk/ydifAdBERyQAynXVf+m+mfXKBhp7lu6M3FqUnt5ls5bThnU7ZyuWAgBOYHVd3n3MwU8yrI4nXdfoOgVg5WFwJLhZKV0mNCxVQcQsITuo8wjLPx5shAlkbVDN0VWrCUBUYt4P0WGvmlNHQy8/P93lbUSJrhFHa/YV1LQYF9he1fc54Gsyef53ZoVFITPTcYvYX1ynOdZZnY+BcOgoWJqc1RR1mMxB0vnxXybyQ7/N5ejtSZeaCjOjNYa56VQQmubCWiqhHffl5XOWpmiO58yOrpxQvmUtJkbkQG+ZGcqiekjdVSjqtXGjmPmFchTty/xduvwO/QNI0TBMj8kUEEDEInSfG4OnCQTxkp2oCT07j6tJyMItG/NNX663KCgEU9whBiRfmxKU/nEpTCeuAibhCPlXLFVzb7vfwz4b9Zx4bvz0TD12R9zYgbeDodGzMnXzt+oqI5CJth2d5a0dx1SZWlbE95CNgMFGs9V+UprZWYQQQA1u48neZv6xNETRbrSXn008y86QrDUo3Qfz3j9MzA9eeqEBgxIF35+umwRzQsimPGLxjlLHn8n2/i+nXaVG9prQ/oqz9ZGZX8C0OCKHsSW+yODL2VrIoJjMSqVBMPOQmMTbmqdqezHueq3yOEykgltchBLLO9ztAXfdZLNL7HxRSIm/VwtdrDUd/8Nxti2aS6z0mD2BzFawX+4peC5F8g4s0MXQ2jZiI3fM5/yEo9wV9BpH5Cx4S9EPgsG+ccCzxyYEwolkprGiqikEIoaULYjD4iGiy+zo1k+io62su1VWvxJhnrmw4MnRV71Qq8CU+dPYc69KWqa4l4eHA9/hDQi/ITP70tob/23jGIpx2tXdPsRGowk/EHhlsprWv8u3vnL6Z+wCAlqdRi1N4+xQE8YTxaN0E8xQHzZhaFg2mVJmWRHn85FswPTAhMAkGBSsOAwIaBQAEFCGI3iyOfcH+j3EZrZJrv1J2Fj4XBBTdwho=', 'base64');
  assert.throws(() => parsePfx(input), (e: Error) => e instanceof Pkcs12Error && /not a valid OID/.test(e.message));
});
