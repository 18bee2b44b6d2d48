// core/safe-names: the patterns every outside value must match before it names a file (issue 10 item 1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isSafeIncarnation, isSafeHandlerName, isSafeExtensionName, isSafeVersion, isSafeThumbprint, isSafeSeqNo, isSafeFileName,
  assertSafeIncarnation, assertSafeThumbprint, UnsafeNameError,
} from '../../src/core/safe-names';
import { parseGoalState } from '../../src/fabric/documents';
import { writeCertificateFiles } from '../../src/crypto/certificates';

const HOSTILE = ['', '.', '..', '../x', '../../../../../etc/cron.d/evil', 'a/b', 'a\\b', '/abs', 'a\0b', '.hidden', '-rf',
  'a..b', 'x\n', ' 1', '1 ', 'a b', '%2e%2e', 'é'];

test('every check refuses traversal, separators, NUL, dot names and odd characters', () => {
  for (const f of [isSafeIncarnation, isSafeHandlerName, isSafeExtensionName, isSafeVersion, isSafeThumbprint, isSafeSeqNo, isSafeFileName]) {
    for (const h of HOSTILE) assert.equal(f(h), false, `${f.name}(${JSON.stringify(h)})`);
    assert.equal(f(undefined), false);
    assert.equal(f(42), false);
  }
});

test('real values pass', () => {
  for (const s of ['1', '42', '2147483647', 'abc-1_2.3']) assert.ok(isSafeIncarnation(s), s);
  assert.equal(isSafeIncarnation('1'.repeat(65)), false);
  for (const s of ['Microsoft.Azure.Extensions.CustomScript', 'Microsoft.OSTCExtensions.VMAccessForLinux', 'Microsoft.CPlat.Core.RunCommandLinux']) {
    assert.ok(isSafeHandlerName(s), s);
  }
  for (const s of ['2.1.7', '1.0', '1', '1.2.3.4', '1.2.3.4.5', '2.0.0-beta1', '2.0rc1', '1.0.alpha']) assert.ok(isSafeVersion(s), s);
  for (const s of ['1.2.3.4.5.6.7.8.9', '1.', '.1', '1..2', '1.x', '1234567890', '1.*', '1.0-gamma', '1.0 ', '1/0']) assert.equal(isSafeVersion(s), false, s);
  // `__` separates name and version in `<name>__<version>.zip`: never inside a handler name
  assert.equal(isSafeHandlerName('Evil__1.0'), false);
  assert.ok(isSafeThumbprint('F6ABAA61098A301EBB8A571C3C7CF77F355F7FA9'));
  assert.ok(isSafeThumbprint('f6abaa61098a301ebb8a571c3c7cf77f355f7fa9'));
  assert.equal(isSafeThumbprint('F6ABAA61098A301EBB8A571C3C7CF77F355F7FA'), false);
  assert.ok(isSafeSeqNo('0') && isSafeSeqNo('12'));
  assert.ok(isSafeFileName('7f3a9b2c.myvm') && isSafeFileName('5d2c0c3e-0000-4000-8000-000000000001'));
});

test('assert* throws UnsafeNameError naming the role, and returns the value when safe', () => {
  assert.throws(() => assertSafeIncarnation('../../etc/x'), (e: Error) => e instanceof UnsafeNameError && /unsafe incarnation/.test(e.message));
  assert.throws(() => assertSafeThumbprint('../x'), /unsafe thumbprint/);
  assert.equal(assertSafeIncarnation('7'), '7');
});

test('parseGoalState refuses an Incarnation that is a path', () => {
  const gs = (inc: string): string => `<GoalState><Incarnation>${inc}</Incarnation><Container><ContainerId>c</ContainerId></Container></GoalState>`;
  assert.equal(parseGoalState(gs('3')).incarnation, '3');
  for (const h of ['../../../../../etc/cron.d/evil', 'a/b', '..']) assert.throws(() => parseGoalState(gs(h)), /unsafe Incarnation/, h);
});

test('writeCertificateFiles refuses an unsafe thumbprint before writing anything', () => {
  const written: string[] = [];
  const fakeFs = { mkdir: () => undefined, write: (p: string) => { written.push(p); } } as unknown as Parameters<typeof writeCertificateFiles>[0];
  assert.throws(() => writeCertificateFiles(fakeFs, '/lib', '<x/>', Buffer.alloc(1), [
    { thumbprint: 'F6ABAA61098A301EBB8A571C3C7CF77F355F7FA9', certPem: 'c', subject: 's' },
    { thumbprint: '../../etc/evil', certPem: 'c', subject: 's' },
  ]), UnsafeNameError);
  assert.deepEqual(written, []);
});
