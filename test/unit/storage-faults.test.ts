// Storage faults and missing tools, below the VM tests (issue 10 "disk full and read-only", "missing tools"): write
// errors name the file and keep their errno code; a storage cause marks a provisioning failure retryable and is named
// in the description; a program that is not installed is said so in the reported reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../../src/core/files';
import { diagnoseStorage, withStorageHint } from '../../src/provision/storage';
import { provision } from '../../src/provision/provision';
import type { OvfEnv } from '../../src/provision/ovf';
import { makeBed, fakeFabric } from './provision-helpers';

function ovf(): OvfEnv {
  return {
    version: '1.0', hostName: 'vm-test', userName: 'azureuser', userPassword: 'Sup3r-secret-pw',
    disableSshPasswordAuthentication: false, customData: undefined, publicKeys: [], keyPairs: [], provisionGuestAgent: true,
  };
}

test('writeFileAtomic: an error names the target file (not the temp file) and keeps its code', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-storage-'));
  try {
    const f = path.join(dir, 'missing-dir', 'ovf-env.xml');
    assert.throws(() => writeFileAtomic(f, 'x', { mode: 0o600 }), (e: NodeJS.ErrnoException) => {
      assert.ok(e.message.startsWith(`Cannot write ${f}: `), e.message);
      assert.equal(e.code, 'ENOENT');
      return true;
    });
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('diagnoseStorage: ENOSPC/EROFS on the error or a cause → retryable; other errors are not; the hint is appended once', () => {
  const bed = makeBed();
  try {
    const nested = new Error('Cannot write /var/lib/waagent/x', { cause: Object.assign(new Error('no space'), { code: 'ENOSPC' }) });
    assert.equal(diagnoseStorage(bed.ctx, nested).retryable, true);
    assert.equal(diagnoseStorage(bed.ctx, Object.assign(new Error('ro'), { code: 'EROFS' })).retryable, true);
    assert.equal(diagnoseStorage(bed.ctx, new Error('invalid user name')).retryable, false);
    assert.equal(diagnoseStorage(bed.ctx, new Error('x')).hint, undefined, 'a temp dir with space is no storage problem');
    assert.equal(withStorageHint('Failed: x', { hint: '/etc is on a read-only file system', retryable: true }), 'Failed: x (/etc is on a read-only file system)');
    assert.equal(withStorageHint('Failed: /etc is on a read-only file system', { hint: '/etc is on a read-only file system', retryable: true }), 'Failed: /etc is on a read-only file system');
  } finally { bed.cleanup(); }
});

test('provision(): useradd not installed → ProvisioningFailed saying so, not retryable', async () => {
  const bed = makeBed({}, (argv) => (argv[0] === 'useradd' ? { code: -1, spawnError: 'useradd: spawn useradd ENOENT' } : undefined));
  try {
    const fabric = fakeFabric();
    const out = await provision(bed.ctx, { ovf: ovf(), fabric });
    assert.equal(out.success, false);
    assert.match(out.error ?? '', /useradd is not installed/);
    assert.equal(out.retryable, false);
    const failed = fabric.reports.find((r) => r.state === 'NotReady' && r.subStatus === 'ProvisioningFailed');
    assert.match(failed && failed.state === 'NotReady' ? failed.description ?? '' : '', /useradd is not installed/);
  } finally { bed.cleanup(); }
});
