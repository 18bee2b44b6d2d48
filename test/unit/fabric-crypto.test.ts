import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import forge from 'node-forge';
import { SysRoot } from '../../src/core/sysroot';
import { HostFs } from '../../src/os/os';
import { log, memoryAppender, Level } from '../../src/core/log';
import {
  buildTransportCertificate, startTransportPair, generateTransportPair, generateTransportPairAsync, TRANSPORT_CERT_FILE, TRANSPORT_KEY_FILE,
} from '../../src/crypto/transport';
import { decryptEnvelopedData, Pkcs7Error } from '../../src/crypto/pkcs7';
import { decryptCertificates, parsePfx, pairKeys, writeCertificateFiles, thumbprint, lastPfxPath } from '../../src/crypto/certificates';
import { pkcs12Kdf } from '../../src/crypto/pkcs12';
import * as der from '../../src/crypto/der';
import { sshPublicKeyFromPem, SshKeyError } from '../../src/crypto/ssh-keys';
import { makeTenantCertificate, makePfx, envelopePkcs7, subjectKeyIdentifierOf } from '../fabric/certgen';

function tempFs(): { hostFs: HostFs; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-crypto-'));
  return { hostFs: new HostFs(new SysRoot(dir)), dir };
}

const transport = generateTransportPair();
const tenantA = makeTenantCertificate({ cn: 'tenant-a' });
const tenantB = makeTenantCertificate({ cn: 'tenant-b' });

test('transport certificate has the fabric-required shape', () => {
  const cert = forge.pki.certificateFromPem(transport.certPem);
  assert.equal(cert.subject.getField('CN').value, 'LinuxTransport');
  assert.equal(cert.issuer.getField('CN').value, 'LinuxTransport');
  assert.equal(forge.pki.oids[cert.siginfo.algorithmOid], 'sha256WithRSAEncryption');
  const x = new crypto.X509Certificate(transport.certPem);
  assert.equal(x.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  assert.equal(x.publicKey.asymmetricKeyDetails?.publicExponent, 65537n);
  const pkcs1 = x.publicKey.export({ type: 'pkcs1', format: 'der' });
  const ski = crypto.createHash('sha1').update(pkcs1).digest();
  assert.deepEqual(transport.ski, ski);
  assert.deepEqual(subjectKeyIdentifierOf(transport.certPem), ski);
  const aki = cert.getExtension('authorityKeyIdentifier') as { value: string } | null;
  assert.ok(aki, 'AKI present');
  assert.ok(Buffer.from(aki.value, 'binary').includes(ski), 'AKI keyid = SKI');
  const bc = cert.getExtension('basicConstraints') as { cA: boolean; critical: boolean } | null;
  assert.equal(bc?.cA, true);
  assert.equal(bc?.critical, true);
  assert.ok(x.verify(x.publicKey), 'self-signed');
  assert.equal(transport.certHeader, Buffer.from(x.raw).toString('base64'));
  assert.ok(!transport.certHeader.includes('\n'));
  assert.ok(x.checkPrivateKey(crypto.createPrivateKey(transport.keyPem)));
  assert.match(transport.keyPem, /^-----BEGIN PRIVATE KEY-----/);
});

const openssl = spawnSync('openssl', ['version']).error ? undefined : 'openssl';

test('transport certificate passes openssl x509 -text and openssl verify (self-signed CA)', { skip: openssl ? false : 'openssl not installed' }, async () => {
  const pair = await generateTransportPairAsync();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-transport-'));
  const f = path.join(dir, 'cert.pem');
  fs.writeFileSync(f, pair.certPem);
  const text = spawnSync('openssl', ['x509', '-noout', '-text', '-in', f], { encoding: 'utf8' });
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /Version: 3 \(0x2\)/);
  assert.match(text.stdout, /Signature Algorithm: sha256WithRSAEncryption/);
  assert.match(text.stdout, /Issuer: CN ?= ?LinuxTransport/);
  assert.match(text.stdout, /Subject: CN ?= ?LinuxTransport/);
  assert.match(text.stdout, /Public-Key: \(2048 bit\)/);
  assert.match(text.stdout, /Exponent: 65537/);
  assert.match(text.stdout, /X509v3 Basic Constraints: critical\s+CA:TRUE/);
  const skiHex = pair.ski.toString('hex').toUpperCase().match(/../g)!.join(':');
  assert.match(text.stdout, new RegExp(`X509v3 Subject Key Identifier:\\s+${skiHex}`));
  assert.match(text.stdout, new RegExp(`X509v3 Authority Key Identifier:\\s+(keyid:)?${skiHex}`));
  const verify = spawnSync('openssl', ['verify', '-CAfile', f, f], { encoding: 'utf8' });
  assert.equal(verify.status, 0, verify.stderr + verify.stdout);
  assert.match(verify.stdout, /: OK/);
  // validity: now - 5 min → now + 730 days
  const x = new crypto.X509Certificate(pair.certPem);
  const days = (Date.parse(x.validTo) - Date.parse(x.validFrom)) / 86400_000;
  assert.ok(Math.abs(days - 730 - 5 / 1440) < 1 / 1440, `validity ${days} days`);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('transport certificate: UTCTime before 2050, GeneralizedTime after; serial positive', () => {
  const priv = crypto.createPrivateKey(transport.keyPem);
  const pub = crypto.createPublicKey(priv);
  const times = (certDer: Buffer): der.Node[] => der.children(der.children(der.children(der.parse(certDer))[0])[4]);
  const late = buildTransportCertificate(pub, priv, new Date('2049-06-01T12:00:00Z'));
  const [nb, na] = times(late);
  assert.equal(nb.tag, der.TAG.UTC_TIME);
  assert.equal(der.content(nb).toString(), '490601115500Z');
  assert.equal(na.tag, der.TAG.GENERALIZED_TIME);
  assert.equal(der.content(na).toString(), '20510601120000Z');
  const x = new crypto.X509Certificate(late);
  assert.equal(new Date(x.validTo).toISOString(), '2051-06-01T12:00:00.000Z');
  assert.ok(x.verify(pub));
  const serial = der.content(der.children(der.children(der.parse(late))[0])[1]);
  assert.equal(serial.length, 16);
  assert.ok(serial[0] > 0 && serial[0] < 0x80);
});

test('startTransportPair: a new pair at every start, in memory only; stale transport files are removed (issue 10)', async () => {
  const { hostFs, dir } = tempFs();
  const lib = '/var/lib/waagent';
  hostFs.mkdir(lib, 0o700);
  // what an older agent (or the captured image) left behind
  fs.writeFileSync(path.join(dir, lib, TRANSPORT_KEY_FILE), transport.keyPem, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, lib, TRANSPORT_CERT_FILE), transport.certPem, { mode: 0o600 });
  const a = await startTransportPair(hostFs, lib);
  assert.notEqual(a.certPem, transport.certPem, 'the stored pair is not reused');
  assert.deepEqual(fs.readdirSync(path.join(dir, lib)), [], 'no key on disk');
  const b = await startTransportPair(hostFs, lib);
  assert.notEqual(b.keyPem, a.keyPem, 'new at every start');
  assert.ok(new crypto.X509Certificate(b.certPem).checkPrivateKey(crypto.createPrivateKey(b.keyPem)));
});

for (const cipher of ['AES128_CBC', 'DES_EDE3_CBC'] as const) {
  test(`CMS EnvelopedData ${cipher} decrypts to the content`, () => {
    const content = crypto.randomBytes(1000);
    const der = envelopePkcs7(content, transport.certPem, cipher);
    assert.deepEqual(decryptEnvelopedData(der, transport), content);
  });
}

/** Re-encodes an envelope with its encryptedContent as a constructed [0] of 100-byte OCTET STRING chunks. */
function chunkEncryptedContent(der: Buffer): Buffer {
  const root = forge.asn1.fromDer(der.toString('binary'));
  const env = ((root.value as forge.asn1.Asn1[])[1].value as forge.asn1.Asn1[])[0];
  const eci = (env.value as forge.asn1.Asn1[])[2];
  const content = (eci.value as forge.asn1.Asn1[])[2];
  const bytes = content.value as string;
  const chunks: forge.asn1.Asn1[] = [];
  for (let i = 0; i < bytes.length; i += 100) {
    chunks.push(forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, bytes.slice(i, i + 100)));
  }
  (eci.value as forge.asn1.Asn1[])[2] = forge.asn1.create(forge.asn1.Class.CONTEXT_SPECIFIC, 0, true, chunks);
  return Buffer.from(forge.asn1.toDer(root).getBytes(), 'binary');
}

test('CMS: constructed (chunked) encryptedContent is accepted', () => {
  const content = crypto.randomBytes(777);
  const der = chunkEncryptedContent(envelopePkcs7(content, transport.certPem, 'AES128_CBC'));
  assert.deepEqual(decryptEnvelopedData(der, transport), content);
});

test('CMS: an envelope for another recipient or garbage fails with Pkcs7Error', () => {
  const der = envelopePkcs7(Buffer.from('secret'), tenantA.certPem, 'AES128_CBC');
  const other = generateTransportPair();
  assert.throws(() => decryptEnvelopedData(der, other), Pkcs7Error);
  assert.throws(() => decryptEnvelopedData(Buffer.from('not der at all'), transport), Pkcs7Error);
  // a 3DES/PKCS#1 v1.5 envelope decrypted with the wrong key must not yield garbage silently
  const des = envelopePkcs7(Buffer.from('secret'), tenantA.certPem, 'DES_EDE3_CBC');
  assert.throws(() => decryptEnvelopedData(des, { keyPem: tenantB.keyPem, certPem: tenantA.certPem }), Pkcs7Error);
});

for (const bagCipher of ['3des', 'rc2-40'] as const) {
  test(`PKCS#12 with ${bagCipher} certificate bags: thumbprints, pairing, keys`, () => {
    const pfx = makePfx([{ certPem: tenantA.certPem, keyPem: tenantA.keyPem }, { certPem: tenantB.certPem }], { certBagCipher: bagCipher });
    const contents = parsePfx(pfx);
    // 3DES everywhere: native (no node-forge); RC2-40 certificate bags: the node-forge fallback
    assert.equal(lastPfxPath(), bagCipher === '3des' ? 'native' : 'forge');
    assert.equal(contents.macOk, true);
    const certs = pairKeys(contents);
    assert.deepEqual(certs.map((c) => c.thumbprint).sort(), [tenantA.thumbprint, tenantB.thumbprint].sort());
    const a = certs.find((c) => c.thumbprint === tenantA.thumbprint);
    const b = certs.find((c) => c.thumbprint === tenantB.thumbprint);
    assert.ok(a?.keyPem && !b?.keyPem);
    const pubA = crypto.createPublicKey(a.keyPem).export({ type: 'spki', format: 'der' });
    assert.deepEqual(pubA, new crypto.X509Certificate(tenantA.certPem).publicKey.export({ type: 'spki', format: 'der' }));
    assert.match(a.keyPem, /^-----BEGIN PRIVATE KEY-----/);
  });
}

test('PKCS#12: a MAC mismatch is logged, not fatal', () => {
  const pfx = makePfx([{ certPem: tenantA.certPem, keyPem: tenantA.keyPem }]);
  // the MAC digest is the 20 bytes after the last SHA-1 AlgorithmIdentifier: flip its last byte via the ASN.1 tree
  const root = forge.asn1.fromDer(pfx.toString('binary'));
  const macData = (root.value as forge.asn1.Asn1[])[2];
  const digest = ((macData.value as forge.asn1.Asn1[])[0].value as forge.asn1.Asn1[])[1];
  const d = Buffer.from(digest.value as string, 'binary'); d[19] ^= 0xff; digest.value = d.toString('binary');
  const bad = Buffer.from(forge.asn1.toDer(root).getBytes(), 'binary');
  const mem = memoryAppender(Level.WARNING);
  log.addAppender(mem);
  try {
    const contents = parsePfx(bad);
    assert.equal(contents.macOk, false);
    assert.equal(pairKeys(contents)[0].thumbprint, tenantA.thumbprint);
    assert.ok(mem.lines.some((l) => /MAC does not match/.test(l)));
  } finally {
    log.removeAppender(mem);
  }
});

test('pkcs12Kdf matches node-forge (multi-block, non-empty password, SHA-256)', () => {
  const salt = crypto.randomBytes(20);
  for (const [pw, id, n, it] of [['', 1, 24, 2000], ['', 2, 8, 2000], ['pässwörd', 1, 24, 7], ['x', 3, 20, 1], ['long password '.repeat(6), 1, 70, 3]] as const) {
    const want = Buffer.from(forge.pkcs12.generateKey(pw, forge.util.createBuffer(salt.toString('binary')), id, it, n).getBytes(), 'binary');
    assert.deepEqual(pkcs12Kdf(pw, salt, id, it, n), want, `${pw}/${id}/${n}/${it}`);
  }
  const want256 = Buffer.from(forge.pkcs12.generateKey('', forge.util.createBuffer(salt.toString('binary')), 3, 5, 32, forge.md.sha256.create()).getBytes(), 'binary');
  assert.deepEqual(pkcs12Kdf('', salt, 3, 5, 32, 'sha256'), want256);
});

/** Re-encodes a DER tree with BER indefinite lengths on every constructed element (as Windows encoders may). */
function toIndefinite(bytes: Buffer): Buffer {
  const walk = (n: der.Node): Buffer => {
    if (!n.constructed) return Buffer.from(der.raw(n));
    const id = Buffer.from(der.raw(n).subarray(0, 1));
    return Buffer.concat([id, Buffer.from([0x80]), ...der.children(n).map(walk), Buffer.from([0, 0])]);
  };
  return walk(der.parse(bytes));
}

test('PKCS#12 and CMS with BER indefinite lengths are read natively', () => {
  const pfx = makePfx([{ certPem: tenantA.certPem, keyPem: tenantA.keyPem }]);
  const contents = parsePfx(toIndefinite(pfx));
  assert.equal(lastPfxPath(), 'native');
  assert.equal(contents.macOk, true);
  assert.equal(pairKeys(contents)[0].thumbprint, tenantA.thumbprint);
  const content = crypto.randomBytes(300);
  assert.deepEqual(decryptEnvelopedData(toIndefinite(envelopePkcs7(content, transport.certPem, 'AES128_CBC')), transport), content);
});

test('DER reader rejects truncated and overlong input', () => {
  assert.throws(() => der.parse(Buffer.from([0x30, 0x05, 0x02, 0x01])), der.DerError);
  assert.throws(() => der.parse(Buffer.from([0x30, 0x85, 1, 1, 1, 1, 1])), der.DerError);
  assert.throws(() => der.parse(Buffer.from([0x30, 0x80, 0x02, 0x01, 0x00])), der.DerError);
  assert.equal(der.oid(der.parse(der.oidDer('1.2.840.113549.1.12.10.1.3'))), '1.2.840.113549.1.12.10.1.3');
  assert.equal(der.oid(der.parse(der.oidDer('2.999.3'))), '2.999.3');
  assert.throws(() => parsePfx(Buffer.from([0x30, 0x03, 0x02, 0x01])), /PKCS#12/);
});

test('a first boot (transport pair + 3DES/AES certificates) never loads node-forge', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-noforge-'));
  const cms = envelopePkcs7(makePfx([{ certPem: tenantA.certPem, keyPem: tenantA.keyPem }, { certPem: tenantB.certPem }]), transport.certPem, 'AES128_CBC');
  fs.writeFileSync(path.join(dir, 'cms.der'), cms);
  fs.writeFileSync(path.join(dir, 'pair.json'), JSON.stringify({ keyPem: transport.keyPem, certPem: transport.certPem }));
  const build = path.resolve(__dirname, '../../src');
  const script = `
    const fs = require('fs'), path = require('path');
    const { SysRoot } = require(${JSON.stringify(build + '/core/sysroot')});
    const { HostFs } = require(${JSON.stringify(build + '/os/os')});
    const { startTransportPair } = require(${JSON.stringify(build + '/crypto/transport')});
    const { decryptCertificates, lastPfxPath } = require(${JSON.stringify(build + '/crypto/certificates')});
    (async () => {
      const pair = await startTransportPair(new HostFs(new SysRoot(${JSON.stringify(dir)})), '/lib');
      const me = JSON.parse(fs.readFileSync(${JSON.stringify(path.join(dir, 'pair.json'))}, 'utf8'));
      const certs = decryptCertificates(fs.readFileSync(${JSON.stringify(path.join(dir, 'cms.der'))}), me);
      const forge = Object.keys(require.cache).filter((k) => k.includes('node-forge')).length;
      console.log(JSON.stringify({ certs: certs.length, header: pair.certHeader.length > 0, path: lastPfxPath(), forge }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { certs: 2, header: true, path: 'native', forge: 0 });
});

/** A self-signed ECDSA P-256 certificate built by hand (forge cannot build non-RSA certificates). */
function ecCertificate(): { certPem: string; keyPem: string } {
  const A = forge.asn1; const U = A.Class.UNIVERSAL; const T = A.Type;
  const kp = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const oid = (o: string): forge.asn1.Asn1 => A.create(U, T.OID, false, A.oidToDer(o).getBytes());
  const seq = (x: forge.asn1.Asn1[]): forge.asn1.Asn1 => A.create(U, T.SEQUENCE, true, x);
  const name = seq([A.create(U, T.SET, true, [seq([oid('2.5.4.3'), A.create(U, T.UTF8, false, 'ec-tenant')])])]);
  const sigAlg = seq([oid('1.2.840.10045.4.3.2')]);
  const spki = A.fromDer(kp.publicKey.export({ type: 'spki', format: 'der' }).toString('binary'));
  const tbs = seq([
    A.create(A.Class.CONTEXT_SPECIFIC, 0, true, [A.create(U, T.INTEGER, false, A.integerToDer(2).getBytes())]),
    A.create(U, T.INTEGER, false, A.integerToDer(4242).getBytes()),
    sigAlg, name,
    seq([A.create(U, T.UTCTIME, false, A.dateToUtcTime(new Date(Date.now() - 1000))), A.create(U, T.UTCTIME, false, A.dateToUtcTime(new Date(Date.now() + 86400_000)))]),
    name, spki,
  ]);
  const tbsDer = Buffer.from(A.toDer(tbs).getBytes(), 'binary');
  const sig = crypto.sign('sha256', tbsDer, kp.privateKey);
  const cert = seq([tbs, sigAlg, A.create(U, T.BITSTRING, false, '\x00' + sig.toString('binary'))]);
  const der = Buffer.from(A.toDer(cert).getBytes(), 'binary');
  return { certPem: new crypto.X509Certificate(der).toString(), keyPem: kp.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

test('PKCS#12: a key without certificate is dropped; an EC certificate and key pair up by public key', () => {
  const ec = ecCertificate();
  const pfx = makePfx([{ certPem: tenantB.certPem, keyPem: tenantA.keyPem }, { certPem: ec.certPem, keyPem: ec.keyPem }]);
  const certs = pairKeys(parsePfx(pfx));
  assert.equal(certs.length, 2);
  assert.equal(certs[0].thumbprint, tenantB.thumbprint);
  assert.equal(certs[0].keyPem, undefined);
  const der = Buffer.from(new crypto.X509Certificate(ec.certPem).raw);
  assert.equal(certs[1].thumbprint, crypto.createHash('sha1').update(der).digest('hex').toUpperCase());
  assert.ok(certs[1].keyPem);
  assert.match(sshPublicKeyFromPem(ec.certPem), /^ecdsa-sha2-nistp256 /);
});

test('decryptCertificates + writeCertificateFiles: the full chain and the files (0600), old files kept', () => {
  const { hostFs, dir } = tempFs();
  const lib = '/var/lib/waagent';
  hostFs.mkdir(lib, 0o700);
  hostFs.write(`${lib}/0000000000000000000000000000000000000000.crt`, 'old', { mode: 0o600 });
  for (const cipher of ['AES128_CBC', 'DES_EDE3_CBC'] as const) {
    const cms = envelopePkcs7(makePfx([{ certPem: tenantA.certPem, keyPem: tenantA.keyPem }, { certPem: tenantB.certPem }]), transport.certPem, cipher);
    const certs = decryptCertificates(cms, transport);
    writeCertificateFiles(hostFs, lib, '<CertificateFile/>', cms, certs);
  }
  const files = fs.readdirSync(path.join(dir, lib)).sort();
  assert.deepEqual(files, [
    '0000000000000000000000000000000000000000.crt', `${tenantA.thumbprint}.crt`, `${tenantA.thumbprint}.prv`,
    `${tenantB.thumbprint}.crt`, 'Certificates.p7m', 'Certificates.pem', 'Certificates.xml',
  ].sort());
  for (const f of files) assert.equal(fs.statSync(path.join(dir, lib, f)).mode & 0o777, 0o600, f);
  assert.equal(thumbprint(fs.readFileSync(path.join(dir, lib, `${tenantA.thumbprint}.crt`))), tenantA.thumbprint);
  const prv = fs.readFileSync(path.join(dir, lib, `${tenantA.thumbprint}.prv`), 'utf8');
  assert.ok(new crypto.X509Certificate(tenantA.certPem).checkPrivateKey(crypto.createPrivateKey(prv)));
  const p7m = fs.readFileSync(path.join(dir, lib, 'Certificates.p7m'), 'utf8');
  assert.match(p7m, /^MIME-Version:1\.0\nContent-Disposition: attachment; filename="\/var\/lib\/waagent\/Certificates\.p7m"\n/);
});

const sshKeygen = spawnSync('ssh-keygen', ['-?']).error ? undefined : 'ssh-keygen';

function viaSshKeygen(spkiPem: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-ssh-'));
  const f = path.join(dir, 'k.pub');
  fs.writeFileSync(f, spkiPem);
  const r = spawnSync('ssh-keygen', ['-i', '-m', 'PKCS8', '-f', f], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

for (const [name, gen] of [
  ['rsa', () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ['rsa-e3', () => crypto.generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 3 })],
  ['ec-p256', () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })],
  ['ec-p384', () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' })],
  ['ec-p521', () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-521' })],
] as const) {
  test(`sshPublicKeyFromPem ${name} is byte-identical to ssh-keygen -i -m PKCS8`, { skip: sshKeygen ? false : 'ssh-keygen not installed' }, () => {
    const kp = gen();
    const spki = kp.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const expected = viaSshKeygen(spki);
    assert.equal(sshPublicKeyFromPem(spki), expected);
    assert.equal(sshPublicKeyFromPem(kp.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()), expected);
    if (name.startsWith('rsa')) assert.equal(sshPublicKeyFromPem(kp.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()), expected);
  });
}

test('sshPublicKeyFromPem: certificate, Ed25519 wire format, comment, errors', () => {
  const fromCert = sshPublicKeyFromPem(tenantA.certPem, 'me@host');
  const fromKey = sshPublicKeyFromPem(tenantA.keyPem);
  assert.equal(fromCert, `${fromKey} me@host`);
  assert.ok(!fromKey.endsWith(' '));
  // RSA wire format by hand: string "ssh-rsa", mpint e, mpint n
  const blob = Buffer.from(fromKey.split(' ')[1], 'base64');
  assert.equal(blob.readUInt32BE(0), 7);
  assert.equal(blob.subarray(4, 11).toString(), 'ssh-rsa');
  assert.deepEqual(blob.subarray(11, 18), Buffer.from([0, 0, 0, 3, 1, 0, 1]));
  const ed = crypto.generateKeyPairSync('ed25519');
  const line = sshPublicKeyFromPem(ed.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const eb = Buffer.from(line.split(' ')[1], 'base64');
  const raw = ed.publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
  assert.deepEqual(eb, Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), raw]));
  assert.throws(() => sshPublicKeyFromPem('hello'), SshKeyError);
  const x448 = crypto.generateKeyPairSync('x448');
  assert.throws(() => sshPublicKeyFromPem(x448.publicKey.export({ type: 'spki', format: 'pem' }).toString()), SshKeyError);
});
