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
import { retryProvisioning } from '../../src/daemon/daemon';
import type { HandlerResult } from '../../src/daemon/provisioning-handler';

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

test('retryProvisioning: storage failures are tried again with doubling waits until success; others are not; SIGTERM ends the wait at once', async () => {
  const bed = makeBed();
  const fail = (retryable: boolean): HandlerResult => ({ kind: 'provisioned', mode: 'builtin', outcome: { success: false, error: 'x', agentDisabled: false, retryable } });
  const ok: HandlerResult = { kind: 'provisioned', mode: 'builtin', outcome: { success: true, agentDisabled: false } };
  try {
    // Two more storage failures, then success: three attempts in all, waits of 20 then 40 ms.
    const seq = [fail(true), fail(true), ok];
    const at: number[] = [];
    const t0 = Date.now();
    const r = await retryProvisioning(bed.ctx, fail(true), async () => { at.push(Date.now() - t0); return seq.shift()!; }, new AbortController().signal, 20);
    assert.equal(r, ok);
    assert.equal(at.length, 3);
    assert.ok(at[0] >= 19 && at[1] - at[0] >= 39 && at[2] - at[1] >= 79, `waits ${at.join(', ')}`);
    // Not a storage failure: no second attempt.
    let calls = 0;
    assert.deepEqual(await retryProvisioning(bed.ctx, fail(false), async () => { calls++; return ok; }, new AbortController().signal, 1), fail(false));
    assert.equal(calls, 0);
    // SIGTERM during the wait: 'stopped' at once, no attempt.
    const stop = new AbortController();
    const t1 = Date.now();
    const p = retryProvisioning(bed.ctx, fail(true), async () => { calls++; return ok; }, stop.signal, 60_000);
    setTimeout(() => stop.abort(), 50);
    assert.equal(await p, 'stopped');
    assert.ok(Date.now() - t1 < 1000);
    assert.equal(calls, 0);
  } finally { bed.cleanup(); }
});
