// JIT users (fabric-protocol.md §2.6, §3.6) without root: the RemoteAccess parser and dates, UTF-16 password text,
// decryption with the transport key (tenant keys as fallback), the reconcile rules on a temp-dir root with simulated
// useradd/userdel, and the duty end to end against the fabric simulator on loopback (user created with its expiry,
// password hash and sudo line; removed when the goal state drops it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { parseRemoteAccess, parseExpiration, decodeUtf16, decryptPassword } from '../../src/fabric/remote-access';
import { reconcileJitUsers, jitUsersDuty, accountExpiry, JIT_COMMENT } from '../../src/daemon/jit-users/duty';
import { generateTransportPair } from '../../src/crypto/transport';
import { cryptPassword } from '../../src/crypto/password-crypt';
import { envelopePkcs7, makeTenantCertificate } from '../fabric/certgen';
import { remoteAccessXml } from '../fabric/documents';
import { defaultScenario } from '../fabric/scenario';
import { startSimulator } from '../fabric/simulator';
import { startFabricLink } from '../../src/fabric/link';
import { startDuties } from '../../src/daemon/duties';
import { makeBed, TEST_GID, TEST_UID, type TestBed } from './provision-helpers';
import { fastClock } from '../integration/fabric-helpers';

const pair = generateTransportPair();
const enc = (pw: string, certPem = pair.certPem): string => envelopePkcs7(Buffer.from(pw, 'utf16le'), certPem, 'AES128_CBC').toString('base64');
const FUTURE = 'Fri, 01 Jan 2100 00:00:00 GMT';
const PAST = 'Mon, 01 Jan 2018 00:00:00 GMT';

test('RemoteAccess: users parsed (RFC 1123 and YYYY-MM-DD dates, whitespace in the base64), duplicates and nameless dropped', () => {
  const xml = remoteAccessXml(3, [
    { name: 'jit1', encryptedPassword: 'QUJD\n  REVG', expiration: FUTURE },
    { name: 'jit2', encryptedPassword: 'eA==', expiration: '2019-01-01' },
    { name: 'jit1', encryptedPassword: 'dup', expiration: FUTURE },
    { name: '', encryptedPassword: 'x', expiration: FUTURE },
    { name: 'jit3', encryptedPassword: 'x', expiration: 'next tuesday' },
  ]);
  const d = parseRemoteAccess(xml);
  assert.equal(d.incarnation, '3');
  assert.deepEqual(d.users.map((u) => [u.name, u.encryptedPassword, u.expiration?.toISOString()]), [
    ['jit1', 'QUJDREVG', '2100-01-01T00:00:00.000Z'], ['jit2', 'eA==', '2019-01-01T00:00:00.000Z'], ['jit3', 'x', undefined]]);
  assert.equal(parseRemoteAccess('<RemoteAccess><Version>1</Version></RemoteAccess>').users.length, 0);
  assert.throws(() => parseRemoteAccess('<GoalState/>'), /root element is GoalState/);
  assert.throws(() => parseRemoteAccess('<RemoteAccess><Users>'), /Malformed/);
  assert.equal(parseExpiration('Tue, 01 Jul 2025 13:14:15 GMT')?.toISOString(), '2025-07-01T13:14:15.000Z');
  assert.equal(parseExpiration('2025-13-45'), undefined);
  assert.equal(accountExpiry(new Date('2025-07-01T13:14:15Z')), '2025-07-02');
});

test('UTF-16 text: BOM honoured (LE, BE), little-endian without one, trailing NULs dropped', () => {
  assert.equal(decodeUtf16(Buffer.from('pässwörd€', 'utf16le')), 'pässwörd€');
  assert.equal(decodeUtf16(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('ab\0\0', 'utf16le')])), 'ab');
  const be = Buffer.from('zé', 'utf16le'); be.swap16();
  assert.equal(decodeUtf16(Buffer.concat([Buffer.from([0xfe, 0xff]), be])), 'zé');
});

test('passwords decrypt with the transport key; a tenant key is the fallback; a wrong key or junk is an error', () => {
  assert.equal(decryptPassword(enc('S3cret pass!'), [pair]), 'S3cret pass!');
  const tenant = makeTenantCertificate({ cn: 'tenant' });
  const t = { keyPem: tenant.keyPem!, certPem: tenant.certPem };
  assert.equal(decryptPassword(enc('via tenant', tenant.certPem), [pair, t]), 'via tenant');
  assert.throws(() => decryptPassword(enc('x', tenant.certPem), [pair]), /cannot decrypt the password/);
  assert.throws(() => decryptPassword('bm90IGEgQ01T', [pair]), /cannot decrypt the password/);
  assert.throws(() => decryptPassword('', [pair]), /empty/);
});

/** A bed whose useradd records -c and -e in /etc/passwd and /etc/shadow, and whose userdel removes the lines. */
function jitBed(): TestBed {
  const bed = makeBed({ 'Provisioning.PasswordCryptId': '6' }, (argv, _o, b) => {
    if (argv[0] === 'useradd') {
      const name = argv[argv.length - 1];
      const c = argv.indexOf('-c') >= 0 ? argv[argv.indexOf('-c') + 1] : '';
      const e = argv.indexOf('-e') >= 0 ? argv[argv.indexOf('-e') + 1] : '';
      fs.appendFileSync(b.p('/etc/passwd'), `${name}:x:${TEST_UID}:${TEST_GID}:${c}:/home/${name}:/bin/bash\n`);
      fs.appendFileSync(b.p('/etc/shadow'), `${name}:!:19000:0:99999:7::${e}:\n`);
      return { code: 0 };
    }
    if (argv[0] === 'userdel') {
      const name = argv[argv.length - 1];
      for (const f of ['/etc/passwd', '/etc/shadow']) fs.writeFileSync(b.p(f), b.read(f).split('\n').filter((l) => !l.startsWith(`${name}:`)).join('\n'));
      return { code: 0 };
    }
    if (argv[0] === 'visudo') return { code: 0 };
    return undefined;
  });
  return bed;
}
const shadowOf = (bed: TestBed, u: string): string[] | undefined => bed.read('/etc/shadow').split('\n').find((l) => l.startsWith(`${u}:`))?.split(':');
const passwdOf = (bed: TestBed, u: string): string[] | undefined => bed.read('/etc/passwd').split('\n').find((l) => l.startsWith(`${u}:`))?.split(':');

test('reconcile: new users created (comment, expiry + 1 day, hash of the password, sudo); expired and unlisted removed; others never touched', async () => {
  const bed = jitBed();
  try {
    const doc1 = remoteAccessXml(1, [
      { name: 'jitA', encryptedPassword: enc('Pa55 A'), expiration: 'Fri, 01 Jan 2100 10:00:00 GMT' },
      { name: 'jitOld', encryptedPassword: enc('old'), expiration: PAST },
      { name: 'azureuser', encryptedPassword: enc('hijack'), expiration: FUTURE },
      { name: '-rf', encryptedPassword: enc('x'), expiration: FUTURE },
      { name: '..', encryptedPassword: enc('x'), expiration: FUTURE },
      { name: 'a/../../etc', encryptedPassword: enc('x'), expiration: FUTURE },
      { name: 'jitBad', encryptedPassword: enc('x', makeTenantCertificate({ cn: 'other' }).certPem), expiration: FUTURE },
    ]);
    fs.appendFileSync(bed.p('/etc/passwd'), `azureuser:x:${TEST_UID}:${TEST_GID}::/home/azureuser:/bin/bash\n`);
    await reconcileJitUsers(bed.ctx, doc1, undefined, pair);
    const useradds = bed.run.calls.filter((c) => c.argv[0] === 'useradd').map((c) => c.argv.join(' '));
    assert.deepEqual(useradds, [`useradd -m -e 2100-01-02 -c ${JIT_COMMENT} jitA`], 'expired, foreign, invalid and undecryptable users are not created');
    assert.equal(passwdOf(bed, 'jitA')?.[4], JIT_COMMENT);
    const hash = shadowOf(bed, 'jitA')![1];
    const m = /^\$6\$([^$]+)\$/.exec(hash)!;
    assert.equal(cryptPassword('Pa55 A', '6', m[1]), hash, 'the hash is of the decrypted password');
    assert.match(bed.read('/etc/sudoers.d/waagent'), /^jitA ALL=\(ALL\) ALL$/m);
    assert.ok(!bed.run.calls.some((c) => c.argv.includes('hijack') || c.argv.join(' ').includes('Pa55 A')), 'no password in argv');

    // the same document again: nothing happens
    const before = bed.run.calls.length;
    await reconcileJitUsers(bed.ctx, doc1, undefined, pair);
    assert.equal(bed.run.calls.filter((c) => c.argv[0] === 'useradd' || c.argv[0] === 'userdel').length, bed.run.calls.slice(0, before).filter((c) => c.argv[0] === 'useradd' || c.argv[0] === 'userdel').length);

    // jitA expires
    await reconcileJitUsers(bed.ctx, remoteAccessXml(2, [{ name: 'jitA', encryptedPassword: enc('Pa55 A'), expiration: PAST }]), undefined, pair);
    assert.equal(passwdOf(bed, 'jitA'), undefined);
    assert.doesNotMatch(bed.read('/etc/sudoers.d/waagent'), /jitA/);

    // jitB created, then dropped from the document; no document at all removes what is left; azureuser stays
    await reconcileJitUsers(bed.ctx, remoteAccessXml(3, [{ name: 'jitB', encryptedPassword: enc('b'), expiration: FUTURE }, { name: 'jitC', encryptedPassword: enc('c'), expiration: FUTURE }]), undefined, pair);
    assert.ok(passwdOf(bed, 'jitB') && passwdOf(bed, 'jitC'));
    await reconcileJitUsers(bed.ctx, remoteAccessXml(4, [{ name: 'jitC', encryptedPassword: enc('c'), expiration: FUTURE }]), undefined, pair);
    assert.equal(passwdOf(bed, 'jitB'), undefined);
    assert.ok(passwdOf(bed, 'jitC'));
    assert.equal(await reconcileJitUsers(bed.ctx, undefined, undefined, pair), true);
    assert.equal(passwdOf(bed, 'jitC'), undefined);
    assert.ok(passwdOf(bed, 'azureuser'), 'an account the agent did not create is never removed');
    assert.deepEqual(bed.run.calls.filter((c) => c.argv[0] === 'userdel').map((c) => c.argv.at(-1)), ['jitA', 'jitB', 'jitC']);
  } finally { bed.cleanup(); }
});

test('FreeBSD: pw useradd gets the expiry as dd-mm-yyyy and the JIT comment', async () => {
  const bed = makeBed({}, (argv) => (argv[0] === 'pw' && argv[1] === 'useradd' ? { code: 1, stderr: 'stop here' } : undefined), { id: 'freebsd', version: '14.1' });
  try {
    await reconcileJitUsers(bed.ctx, remoteAccessXml(1, [{ name: 'jitF', encryptedPassword: enc('f'), expiration: 'Tue, 01 Jul 2098 00:00:00 GMT' }]), undefined, pair);
    assert.deepEqual(bed.run.calls.map((c) => c.argv.join(' ')), [`pw useradd jitF -m -e 02-07-2098 -c ${JIT_COMMENT}`]);
  } finally { bed.cleanup(); }
});

test('a user whose password cannot be set is removed again (never half-created)', async () => {
  const bed = jitBed();
  const inner = bed.run;
  try {
    // chpasswd fails: the account made by useradd is deleted
    const failing = ((argv: string[], o?: object) => (argv[0] === 'chpasswd' ? Promise.resolve({ argv, code: 1, signal: null, stdout: '', stderr: 'chpasswd: PAM failure', timedOut: false }) : inner(argv, o))) as typeof inner;
    Object.assign(bed.ctx.os, { run: failing });
    await reconcileJitUsers(bed.ctx, remoteAccessXml(1, [{ name: 'jitP', encryptedPassword: enc('p'), expiration: FUTURE }]), undefined, pair);
    assert.equal(passwdOf(bed, 'jitP'), undefined);
    assert.deepEqual(inner.calls.filter((c) => ['useradd', 'userdel'].includes(c.argv[0])).map((c) => c.argv[0]), ['useradd', 'userdel']);
  } finally { bed.cleanup(); }
});

test('duty against the simulator: the user appears after provisioning, and goes when the goal state drops it', { timeout: 60_000 }, async () => {
  const bed = jitBed();
  const sc = defaultScenario();
  sc.certificates = [];
  sc.remoteAccess = { users: [{ name: 'jituser', password: 'Jit P@ss wörd', expiration: FUTURE }] };
  const sim = await startSimulator(sc, { host: '127.0.0.1', port: 0 });
  bed.ctx.os.fs.write('/var/lib/waagent/WireServerEndpoint', `127.0.0.1:${sim.port}`, { mode: 0o600 });
  // the link makes its own transport pair, in memory only: the duty must use it
  const link = startFabricLink(bed.ctx, { hostPluginPort: sim.hostPluginPort, clock: fastClock(), connectRetryMs: 20, notReadyDelayMs: 5, dhcpProbe: false });
  const abort = new AbortController();
  let provisionedDone!: () => void;
  const provisioned = new Promise<void>((r) => { provisionedDone = r; });
  const handle = startDuties([jitUsersDuty()], { ctx: bed.ctx, link, signal: abort.signal, provisioned });
  const until = async (pred: () => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 400 && !pred(); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(pred(), what);
  };
  try {
    await link.connected();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(passwdOf(bed, 'jituser'), undefined, 'nothing before provisioning completed');
    provisionedDone();
    await until(() => passwdOf(bed, 'jituser') !== undefined && !!shadowOf(bed, 'jituser')?.[1].startsWith('$'), 'JIT user created');
    assert.equal(passwdOf(bed, 'jituser')![4], JIT_COMMENT);
    assert.equal(shadowOf(bed, 'jituser')![7], '2100-01-02');
    const hash = shadowOf(bed, 'jituser')![1];
    assert.equal(cryptPassword('Jit P@ss wörd', '6', /^\$6\$([^$]+)\$/.exec(hash)![1]), hash);
    const ra = sim.requests.filter((r) => r.kind === 'remoteAccess');
    assert.equal(ra.length, 1);
    assert.equal(ra[0].headers['x-ms-cipher-name'], 'AES128_CBC');
    assert.deepEqual(sim.summary().failures, []);

    const next = { ...sc, remoteAccess: undefined };
    sim.setScenario(next);
    sim.bumpIncarnation();
    await link.pollOnce({ status: false });
    await until(() => passwdOf(bed, 'jituser') === undefined, 'JIT user removed');
    assert.equal(sim.requests.filter((r) => r.kind === 'remoteAccess').length, 1);
  } finally {
    abort.abort();
    await handle.stopped;
    link.close();
    await sim.close();
    bed.cleanup();
  }
});
