// Reading extension status and heartbeat files (extensions.md §8.1–8.3) from hostile files in a temp-dir root: invalid
// JSON, BOM, non-UTF-8, 10 MB, too large, missing, stale seqNo, array vs object, wrong shapes, truncation, heartbeat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { makeExtBed, type ExtBed } from './ext-run-helpers';
import {
  readExtensionStatus, readExtensionStatusSync, interpretStatusFile, readHeartbeat, latestSettingsSeqNo, settingsExtensionNames, type ReadStatusOptions,
} from '../../src/extensions/status-file';

const N = 'Microsoft.OSTCExtensions.VMAccessForLinux';
const V = '1.5.20';
const H = `/var/lib/waagent/${N}-${V}`;

function read(bed: ExtBed, seqNo: number, extra: Partial<ReadStatusOptions> = {}) {
  return readExtensionStatus({ fs: bed.ctx.os.fs, handlerDir: H, name: N, version: V, seqNo, retryDelayMs: 10, ...extra });
}
const statusDoc = (status: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  JSON.stringify([{ version: 1.0, timestampUTC: '2025-01-01T00:00:00Z', status: { name: 'x', ...status }, ...extra }]);

test('a valid status: fields passed through (string code kept), unknown keys ignored, null substatus items skipped', async () => {
  const bed = makeExtBed();
  try {
    bed.write(`${H}/status/3.status`, statusDoc({
      status: 'success', code: '0', operation: 'Enable', configurationAppliedTime: '2025-01-01T00:00:01Z',
      formattedMessage: { lang: 'en-US', message: 'Enable succeeded' },
      substatus: [null, { name: 'StdOut', status: 'success', formattedMessage: { lang: 'en-US', message: 'hello' } }, { name: 'StdErr', status: 'warning', code: 5, formattedMessage: null }],
    }, { snapshotInfo: [1, 2] }));
    const r = await read(bed, 3);
    assert.equal(r.kind, 'ok');
    assert.equal(r.path, `${H}/status/3.status`);
    assert.deepEqual(r.status, {
      status: 'success', code: '0', operation: 'Enable', configurationAppliedTime: '2025-01-01T00:00:01Z',
      formattedMessage: { lang: 'en-US', message: 'Enable succeeded' },
      substatus: [
        { name: 'StdOut', status: 'success', code: 0, formattedMessage: { lang: 'en-US', message: 'hello' } },
        { name: 'StdErr', status: 'warning', code: 5, formattedMessage: undefined },
      ],
    });
    // the BOM of a file written by some tools is accepted
    bed.write(`${H}/status/4.status`, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(statusDoc({ status: 'transitioning' }))]));
    const b = await read(bed, 4);
    assert.equal(b.kind, 'ok');
    assert.equal(b.status.status, 'transitioning');
    assert.equal(b.status.code, 0);
  } finally { bed.cleanup(); }
});

test('status values are case-sensitive: an unknown top-level value becomes error silently', () => {
  for (const s of ['Success', 'failed', 42]) {
    const r = interpretStatusFile(Buffer.from(statusDoc({ status: s, code: 7 })), { name: N, version: V, seqNo: 0 }, 'p');
    assert.equal(r.kind, 'ok');
    assert.equal(r.status.status, 'error');
    assert.equal(r.status.code, 7);
  }
});

test('missing file, stale file of another seqNo, empty array → transitioning, code 0, WALA message; MC naming', async () => {
  const bed = makeExtBed();
  try {
    const missing = `This status is being reported by the Guest Agent since no status file was reported by extension ${N}: [ExtensionStatusError] Status file ${H}/status/2.status does not exist`;
    let r = await read(bed, 2);
    assert.equal(r.kind, 'missing');
    assert.deepEqual(r.status, { status: 'transitioning', code: 0, formattedMessage: { lang: 'en-US', message: missing } });
    bed.write(`${H}/status/1.status`, statusDoc({ status: 'success' }));
    r = await read(bed, 2);
    assert.equal(r.kind, 'missing', 'a status of seqNo 1 is never presented for seqNo 2');
    bed.write(`${H}/status/2.status`, '[]');
    r = await read(bed, 2);
    assert.equal(r.kind, 'missing');
    assert.equal(r.status.status, 'transitioning');
    const mc = await read(bed, 0, { extensionName: 'run-cmd.1' });
    assert.equal(mc.path, `${H}/status/run-cmd.1.0.status`);
    assert.match(mc.status.formattedMessage!.message, new RegExp(`extension ${N.replace(/\./g, '\\.')}\\.run-cmd\\.1: \\[ExtensionStatusError\\] Status file ${H.replace(/\./g, '\\.')}/status/run-cmd\\.1\\.0\\.status does not exist$`));
  } finally { bed.cleanup(); }
});

test('invalid JSON → error 1012 with the parser error and the first 2000 characters; retried while a write is in progress', async () => {
  const bed = makeExtBed();
  try {
    const junk = `[{"status": {"status": "succ${'x'.repeat(3000)}`;
    bed.write(`${H}/status/0.status`, junk);
    const t0 = Date.now();
    const r = await read(bed, 0, { retryDelayMs: 20 });
    assert.ok(Date.now() - t0 >= 80, 'retried 5 times, 20 ms apart');
    assert.equal(r.kind, 'invalid-json');
    assert.equal(r.status.status, 'error');
    assert.equal(r.status.code, 1012);
    const m = r.status.formattedMessage!.message;
    assert.ok(m.startsWith(`The status reported by the extension ${N}-${V}(Sequence number 0), was in an incorrect format and the agent could not parse it correctly. Failed due to `), m.slice(0, 300));
    assert.ok(m.endsWith(` \n First 2000 Bytes of status file:\n ${junk.slice(0, 2000)}`));
    // the synchronous variant makes one attempt only
    const t2 = Date.now();
    const once = readExtensionStatusSync({ fs: bed.ctx.os.fs, handlerDir: H, name: N, version: V, seqNo: 0, retryDelayMs: 1000 });
    assert.ok(Date.now() - t2 < 500);
    assert.deepEqual(once, r);
    // a file that becomes valid between attempts is read
    setTimeout(() => bed.write(`${H}/status/0.status`, statusDoc({ status: 'success' })), 60);
    const ok = await read(bed, 0, { retryDelayMs: 100 });
    assert.equal(ok.kind, 'ok');
    assert.equal(ok.status.status, 'success');
    // never past the budget
    bed.write(`${H}/status/0.status`, '{');
    const t1 = Date.now();
    await read(bed, 0, { retryDelayMs: 200, budgetMs: 300 });
    assert.ok(Date.now() - t1 < 1000);
  } finally { bed.cleanup(); }
});

test('non-UTF-8 status file is an invalid-JSON error of that extension only, never a crash', async () => {
  const bed = makeExtBed();
  try {
    bed.write(`${H}/status/0.status`, Buffer.concat([Buffer.from('[{"status": {"status": "success", "formattedMessage": {"lang": "en-US", "message": "caf'), Buffer.from([0xe9, 0xff]), Buffer.from('"}}}]')]));
    const r = await read(bed, 0, { attempts: 1 });
    assert.equal(r.kind, 'invalid-json');
    assert.equal(r.status.code, 1012);
    assert.match(r.status.formattedMessage!.message, /utf-8/);
    assert.match(r.status.formattedMessage!.message, /caf\\xe9\\xff/);
  } finally { bed.cleanup(); }
});

test('wrong shapes → malformed 1012 with WALA wording; substatus parsed before the failure are kept', () => {
  const id = { name: N, version: V, seqNo: 1 };
  const pre = `Could not get a valid status from the extension ${N}-${V}. Encountered the following error: `;
  const cases: [string, string][] = [
    [JSON.stringify({ status: { status: 'success' } }), 'The extension status must be an array: {"status":{"status":"success"}}'],
    ['"just a string"', 'The extension status must be an array: "just a string"'],
    [JSON.stringify([{ version: 1 }]), 'Invalid status format by extension: Missing status key'],
    [JSON.stringify([{ status: { code: 0 } }]), 'Invalid status format by extension: Missing status/status key'],
    [JSON.stringify([5]), 'Invalid status format by extension: Missing status key'],
    [statusDoc({ status: 'success', formattedMessage: { message: 'm' } }), 'Invalid status format by extension: Missing formattedMessage/lang key'],
    [statusDoc({ status: 'success', formattedMessage: { lang: 'en-US' } }), 'Invalid status format by extension: Missing formattedMessage/message key'],
  ];
  for (const [text, detail] of cases) {
    const r = interpretStatusFile(Buffer.from(text), id, 'p');
    assert.equal(r.kind, 'malformed', text);
    assert.equal(r.status.status, 'error');
    assert.equal(r.status.code, 1012);
    assert.equal(r.status.formattedMessage?.message, pre + detail, text);
  }
  const r = interpretStatusFile(Buffer.from(statusDoc({ status: 'success', operation: 'Enable', substatus: [{ name: 'a', status: 'success' }, { name: 'b', status: 'Failed' }, { name: 'c', status: 'success' }] })), id, 'p');
  assert.equal(r.kind, 'malformed');
  assert.deepEqual(r.status.substatus?.map((x) => x.name), ['a']);
  assert.equal(r.status.operation, 'Enable');
  assert.match(r.status.formattedMessage!.message, /Invalid value "Failed" in range .* for substatus\/status$/);
});

test('over 128 KiB: message cut to 1024, substatus fields to 10240 with the suffix, items past the budget dropped; null fields fine', () => {
  const id = { name: N, version: V, seqNo: 0 };
  const subs = Array.from({ length: 20 }, (_, i) => ({ name: `s${i}`, status: 'success', formattedMessage: { lang: 'en-US', message: `m${i}`.padEnd(20000, 'y') } }));
  const text = statusDoc({ status: 'success', formattedMessage: { lang: 'en-US', message: 'M'.repeat(5000) }, substatus: subs });
  assert.ok(text.length > 131072);
  const r = interpretStatusFile(Buffer.from(text), id, 'p');
  assert.equal(r.kind, 'ok');
  assert.equal(r.truncated, true);
  assert.equal(r.status.formattedMessage!.message, `${'M'.repeat(1024)} ... [TRUNCATED]`);
  const kept = r.status.substatus!;
  // each item: name 2–3 chars + message 10240 + 16; total from 1040 stays ≤ 131072 → 12 items
  assert.equal(kept.length, 12);
  assert.equal(kept[0].formattedMessage!.message, `${'m0'.padEnd(10240, 'y')} ... [TRUNCATED]`);
  assert.equal(kept[11].name, 's11');
  assert.equal(r.status.status, 'success');
  // a huge file whose messages are null (HEAD crashed the whole report here)
  const nul = statusDoc({ status: 'success', formattedMessage: null, substatus: [{ name: null, status: 'success', formattedMessage: null }, { name: 'big', status: 'success', formattedMessage: { lang: 'en-US', message: 'z'.repeat(140000) } }] });
  const n = interpretStatusFile(Buffer.from(nul), id, 'p');
  assert.equal(n.kind, 'ok');
  assert.equal(n.status.formattedMessage, undefined);
  assert.deepEqual(n.status.substatus?.map((x) => [x.name, x.formattedMessage?.message.length]), [['', undefined], ['big', 10240 + 16]]);
  // exactly at the limit: a field of 1024 characters already gets the suffix (≥), a shorter one does not
  const edge = interpretStatusFile(Buffer.from(statusDoc({ status: 'success', formattedMessage: { lang: 'en-US', message: 'e'.repeat(1023) }, pad: 'p'.repeat(140000) })), id, 'p');
  assert.equal(edge.status.formattedMessage!.message.length, 1023);
});

test('a 10 MB status file is read and cut; a file over the byte limit is refused unparsed (1012); a directory is unreadable (−1)', async () => {
  const bed = makeExtBed();
  try {
    const big = statusDoc({ status: 'warning', code: 3, formattedMessage: { lang: 'en-US', message: 'B'.repeat(10 * 1024 * 1024) } });
    bed.write(`${H}/status/0.status`, big);
    const r = await read(bed, 0);
    assert.equal(r.kind, 'ok');
    assert.equal(r.status.status, 'warning');
    assert.equal(r.status.formattedMessage!.message.length, 1024 + 16);
    const t = await read(bed, 0, { maxBytes: 1024 * 1024 });
    assert.equal(t.kind, 'malformed');
    assert.equal(t.status.code, 1012);
    assert.match(t.status.formattedMessage!.message, /^Could not get a valid status from the extension .*: status file too large/);
    fs.mkdirSync(bed.p(`${H}/status/1.status`), { recursive: true });
    const d = await read(bed, 1);
    assert.equal(d.kind, 'unreadable');
    assert.equal(d.status.code, -1);
    assert.match(d.status.formattedMessage!.message, new RegExp(`^We couldn't read any status for ${N.replace(/\./g, '\\.')}-${V.replace(/\./g, '\\.')} extension, for the sequence number 1\\. It failed due to `));
  } finally { bed.cleanup(); }
});

test('heartbeat: missing, fresh, stale (Unresponsive), invalid JSON, missing keys, non-UTF-8, not a file', () => {
  const bed = makeExtBed();
  try {
    const fsx = bed.ctx.os.fs;
    const hb = `${H}/heartbeat.log`;
    assert.deepEqual(readHeartbeat({ fs: fsx, handlerDir: H }), { kind: 'error', code: -1, message: '[ExtensionError] Failed to get heart beat file' });
    bed.write(hb, '[{"version": 1.0, "heartbeat": {"status": "ready", "code": 0, "Message": "ignored", "formattedMessage": {"lang": "en-US", "message": "hb"}}}]');
    assert.deepEqual(readHeartbeat({ fs: fsx, handlerDir: H }), { kind: 'ok', status: 'ready', message: 'hb' });
    bed.write(hb, '[{"heartbeat": {"status": "NotReady", "code": 1}}]');
    assert.deepEqual(readHeartbeat({ fs: fsx, handlerDir: H }), { kind: 'ok', status: 'NotReady' });
    const old = new Date(Date.now() - 700_000);
    fs.utimesSync(bed.p(hb), old, old);
    const s = readHeartbeat({ fs: fsx, handlerDir: H });
    assert.equal(s.kind, 'unresponsive');
    assert.equal(readHeartbeat({ fs: fsx, handlerDir: H, now: new Date(old.getTime() + 599_000) }).kind, 'ok', 'younger than 600 s');
    for (const bad of ['not json', '[]', '{"heartbeat": {"status": "ready"}}', '[{"hb": {}}]', '[{"heartbeat": {"code": 0}}]', '[{"heartbeat": {"status": "ready", "formattedMessage": {"message": "x"}}}]']) {
      bed.write(hb, bad);
      const r = readHeartbeat({ fs: fsx, handlerDir: H });
      assert.equal(r.kind, 'error', bad);
      assert.ok(r.kind === 'error' && r.code === -1 && r.message.startsWith('[ExtensionError] Malformed heartbeat file: '), bad);
    }
    bed.write(hb, Buffer.from([0x5b, 0xff, 0x5d]));
    assert.match((readHeartbeat({ fs: fsx, handlerDir: H }) as { message: string }).message, /^\[ExtensionError\] Malformed heartbeat file: /);
    fs.rmSync(bed.p(hb));
    fs.mkdirSync(bed.p(hb));
    assert.equal(readHeartbeat({ fs: fsx, handlerDir: H }).kind, 'error');
  } finally { bed.cleanup(); }
});

test('seqNo fallback: the most recently modified settings file of that extension (§8.1); MC names with dots and dashes', () => {
  const bed = makeExtBed();
  try {
    const fsx = bed.ctx.os.fs;
    const at = (f: string, ageS: number) => { bed.write(`${H}/config/${f}`, ''); const t = new Date(Date.now() - ageS * 1000); fs.utimesSync(bed.p(`${H}/config/${f}`), t, t); };
    assert.equal(latestSettingsSeqNo(fsx, H), undefined);
    at('5.settings', 300); at('0.settings', 100); at('2.settings', 200);
    at('run-cmd.v2.7.settings', 50); at('run-cmd.v2.3.settings', 10); at('Other.9.settings', 1);
    bed.write(`${H}/config/HandlerState`, 'Enabled');
    assert.equal(latestSettingsSeqNo(fsx, H), 0, 'newest, not highest');
    assert.equal(latestSettingsSeqNo(fsx, H, 'run-cmd.v2'), 3);
    assert.equal(latestSettingsSeqNo(fsx, H, 'Other'), 9);
    assert.equal(latestSettingsSeqNo(fsx, H, 'none'), undefined);
    assert.deepEqual(settingsExtensionNames(fsx, H), ['Other', 'run-cmd.v2']);
  } finally { bed.cleanup(); }
});
