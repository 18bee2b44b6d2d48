// Handler files (extensions.md §2, §7): paths, HandlerManifest.json parsed defensively, HandlerEnvironment.json byte
// for byte, settings files 0600 with protected settings verbatim and never in the log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { makeExtBed } from './ext-run-helpers';
import { log, memoryAppender, Level } from '../../src/core/log';
import { ExtensionError } from '../../src/extensions/errors';
import {
  handlerDir, parseHandlerDirName, settingsPath, statusPath, handlerLogDir, commandExecutionLogPath, heartbeatPath,
  parseHandlerManifest, readHandlerManifest, manifestCommand, installDuringUpdate, copyHandlerManifest,
  handlerEnvironmentText, writeHandlerEnvironment, settingsFileText, writeSettings, ensureHandlerFolders,
} from '../../src/extensions/handler-files';

const N = 'Microsoft.Azure.Extensions.CustomScript';

test('paths: handler directory, settings/status per SC and MC, log folder without version (D19)', () => {
  const h = handlerDir('/var/lib/waagent', N, '2.1.10');
  assert.equal(h, `/var/lib/waagent/${N}-2.1.10`);
  assert.equal(settingsPath(h, 4), `${h}/config/4.settings`);
  assert.equal(settingsPath(h, 0, 'MCExt1'), `${h}/config/MCExt1.0.settings`);
  assert.equal(statusPath(h, 4), `${h}/status/4.status`);
  assert.equal(statusPath(h, 7, 'run-cmd.x'), `${h}/status/run-cmd.x.7.status`);
  assert.equal(heartbeatPath(h), `${h}/heartbeat.log`);
  assert.equal(handlerLogDir('/var/log/azure', N), `/var/log/azure/${N}`);
  assert.equal(commandExecutionLogPath(`/var/log/azure/${N}`), `/var/log/azure/${N}/CommandExecution.log`);
  assert.equal(commandExecutionLogPath(`/var/log/azure/${N}`, 'X1'), `/var/log/azure/${N}/CommandExecution_X1.log`);
  assert.throws(() => handlerDir('/var/lib/waagent', '../etc', '1.0'), ExtensionError);
  assert.throws(() => handlerDir('/var/lib/waagent', N, '1/0'), ExtensionError);
  assert.throws(() => settingsPath(h, -1), ExtensionError);
  assert.throws(() => settingsPath(h, 1.5), ExtensionError);
  assert.throws(() => statusPath(h, 1, '../x'), ExtensionError);
});

test('handler directory names split at the last dash; non-handler directories are not recognised (§2.2)', () => {
  assert.deepEqual(parseHandlerDirName('Microsoft.AKS.Compute.AKS-Engine.Linux.Billing-1.0.0'), { name: 'Microsoft.AKS.Compute.AKS-Engine.Linux.Billing', version: '1.0.0' });
  assert.deepEqual(parseHandlerDirName('A.B-2.0rc1'), { name: 'A.B', version: '2.0rc1' });
  for (const d of ['custom-script', 'run-command-handler', 'WALinuxAgent-2.9.1.1', 'history', 'events', 'noversion', '-1.0']) {
    assert.equal(parseHandlerDirName(d), undefined, d);
  }
});

const manifest = (hm: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  JSON.stringify([{ name: 'x', version: 1.0, handlerManifest: hm, ...extra }]);

test('HandlerManifest.json: commands, booleans as JSON or any-case "true" strings, updateMode, resourceLimits', () => {
  const m = parseHandlerManifest(manifest({
    installCommand: 'bin/fake.sh install', enableCommand: '/bin/fake.sh enable', disableCommand: 42,
    reportHeartbeat: 'TRUE', continueOnUpdateFailure: true, supportsMultipleExtensions: 'yes',
    rebootAfterInstall: false, updateMode: 'UpdateWithoutInstall',
  }, { resourceLimits: { cpuQuotaPercentage: 5, services: [{ name: 'a.service', cpuQuotaPercentage: 10 }, { bad: 1 }] } }), 'm');
  assert.equal(m.commands.install, 'bin/fake.sh install');
  assert.equal(m.commands.enable, '/bin/fake.sh enable');
  assert.equal(m.commands.disable, undefined);
  assert.equal(m.reportHeartbeat, true);
  assert.equal(m.continueOnUpdateFailure, true);
  assert.equal(m.supportsMultipleExtensions, false);
  assert.equal(m.rebootAfterInstall, false);
  assert.equal(installDuringUpdate(m), false);
  assert.deepEqual(m.resourceLimits, { cpuQuotaPercentage: 5, memoryQuotaInMB: undefined, services: [{ name: 'a.service', cpuQuotaPercentage: 10 }] });
  assert.equal(manifestCommand(m, 'install'), 'bin/fake.sh install');
  assert.throws(() => manifestCommand(m, 'disable'), (e: unknown) => e instanceof ExtensionError && e.code === 1010);
  assert.throws(() => manifestCommand(m, 'uninstall'), (e: unknown) => e instanceof ExtensionError && e.code === 1000);

  const d = parseHandlerManifest(`\ufeff${manifest({ updateMode: 'updatewithINSTALL', reportHeartbeat: 'false' })}`, 'm');
  assert.equal(installDuringUpdate(d), true);
  assert.equal(d.reportHeartbeat, false);
  assert.equal(installDuringUpdate(parseHandlerManifest(manifest({}), 'm')), true);
  const bad = parseHandlerManifest(manifest({ updateMode: 7 }), 'm');
  assert.throws(() => installDuringUpdate(bad), (e: unknown) => e instanceof ExtensionError && e.code === 1008);
  // a bare object is accepted too
  assert.equal(parseHandlerManifest(JSON.stringify({ handlerManifest: { enableCommand: 'e' } }), 'm').commands.enable, 'e');
});

test('HandlerManifest.json: invalid JSON → 1003, missing handlerManifest → −1, unreadable → 1002', () => {
  const bed = makeExtBed();
  try {
    const h = '/var/lib/waagent/A.B-1.0';
    assert.throws(() => readHandlerManifest(bed.ctx.os.fs, h), (e: unknown) => e instanceof ExtensionError && e.code === 1002 && /Failed to load manifest file \(\/var\/lib\/waagent\/A.B-1.0\/HandlerManifest.json\)/.test(e.message));
    bed.write(`${h}/HandlerManifest.json`, '[{"handlerManifest": ');
    assert.throws(() => readHandlerManifest(bed.ctx.os.fs, h), (e: unknown) => e instanceof ExtensionError && e.code === 1003 && /Malformed manifest file/.test(e.message));
    for (const t of ['[]', '[1]', '"x"', 'null']) {
      bed.write(`${h}/HandlerManifest.json`, t);
      assert.throws(() => readHandlerManifest(bed.ctx.os.fs, h), (e: unknown) => e instanceof ExtensionError && e.code === 1003, t);
    }
    bed.write(`${h}/HandlerManifest.json`, '[{"name": "x"}]');
    assert.throws(() => readHandlerManifest(bed.ctx.os.fs, h), (e: unknown) => e instanceof ExtensionError && e.code === -1);
    fs.rmSync(bed.p(`${h}/HandlerManifest.json`));
    fs.mkdirSync(bed.p(`${h}/HandlerManifest.json`));
    assert.throws(() => readHandlerManifest(bed.ctx.os.fs, h), (e: unknown) => e instanceof ExtensionError && e.code === 1002);
    fs.rmdirSync(bed.p(`${h}/HandlerManifest.json`));
    bed.write(`${h}/HandlerManifest.json`, Buffer.alloc(2 * 1024 * 1024, 0x20));
    assert.throws(() => readHandlerManifest(bed.ctx.os.fs, h), (e: unknown) => e instanceof ExtensionError && e.code === 1002);
  } finally { bed.cleanup(); }
});

test('copyHandlerManifest: first one breadth-first, BOM removed, 0644; none → −1 "HandlerManifest.json not found"', () => {
  const bed = makeExtBed();
  try {
    const h = '/var/lib/waagent/A.B-1.0';
    bed.write(`${h}/pkg/deep/HandlerManifest.json`, '[{"handlerManifest": {"enableCommand": "deep"}}]');
    bed.write(`${h}/pkg/HandlerManifest.json`, '\ufeff[{"handlerManifest": {"enableCommand": "pkg"}}]');
    bed.write(`${h}/config/HandlerManifest.json`, '[{"handlerManifest": {"enableCommand": "config"}}]');
    copyHandlerManifest(bed.ctx.os.fs, h);
    assert.equal(bed.read(`${h}/HandlerManifest.json`), '[{"handlerManifest": {"enableCommand": "pkg"}}]');
    assert.equal(bed.mode(`${h}/HandlerManifest.json`), 0o644);
    assert.equal(readHandlerManifest(bed.ctx.os.fs, h).commands.enable, 'pkg');
    const h2 = '/var/lib/waagent/A.B-2.0';
    bed.write(`${h2}/bin/x.sh`, '');
    assert.throws(() => copyHandlerManifest(bed.ctx.os.fs, h2), (e: unknown) => e instanceof ExtensionError && e.code === -1 && /HandlerManifest.json not found/.test(e.message));
  } finally { bed.cleanup(); }
});

test('HandlerEnvironment.json: exact bytes, version 1.0 literally, no telemetry keys by default; log folder 0755', () => {
  const bed = makeExtBed();
  try {
    const h = `/var/lib/waagent/${N}-2.1.10`;
    bed.write(`${h}/x`, '');
    writeHandlerEnvironment(bed.ctx.os.fs, { name: N, handlerDir: h, extensionLogDir: '/var/log/azure' });
    assert.equal(bed.read(`${h}/HandlerEnvironment.json`),
      `[{"name": "${N}", "version": 1.0, "handlerEnvironment": {"logFolder": "/var/log/azure/${N}", "configFolder": "/var/lib/waagent/${N}-2.1.10/config", "statusFolder": "/var/lib/waagent/${N}-2.1.10/status", "heartbeatFile": "/var/lib/waagent/${N}-2.1.10/heartbeat.log"}}]`);
    assert.equal(bed.mode(`${h}/HandlerEnvironment.json`), 0o644);
    assert.equal(bed.mode(`/var/log/azure/${N}`), 0o755);
    assert.equal(fs.existsSync(bed.p(`/var/log/azure/${N}/events`)), false);
    // an existing log folder keeps its mode
    fs.chmodSync(bed.p(`/var/log/azure/${N}`), 0o750);
    writeHandlerEnvironment(bed.ctx.os.fs, { name: N, handlerDir: h, extensionLogDir: '/var/log/azure' });
    assert.equal(bed.mode(`/var/log/azure/${N}`), 0o750);
    // telemetry advertised: the two events keys after heartbeatFile, events folder 0700
    const t = handlerEnvironmentText({ name: N, handlerDir: h, extensionLogDir: '/var/log/azure', telemetry: true });
    assert.match(t, /"heartbeatFile": "[^"]+", "eventsFolder": "\/var\/log\/azure\/[^"]+\/events", "eventsFolder_preview": "\/var\/log\/azure\/[^"]+\/events"\}\}\]$/);
    writeHandlerEnvironment(bed.ctx.os.fs, { name: N, handlerDir: h, extensionLogDir: '/var/log/azure', telemetry: true });
    assert.equal(bed.mode(`/var/log/azure/${N}/events`), 0o700);
    const parsed = JSON.parse(bed.read(`${h}/HandlerEnvironment.json`));
    assert.equal(parsed[0].handlerEnvironment.eventsFolder, `/var/log/azure/${N}/events`);
    ensureHandlerFolders(bed.ctx.os.fs, h);
    assert.equal(bed.mode(`${h}/config`), 0o700);
    assert.equal(bed.mode(`${h}/status`), 0o700);
  } finally { bed.cleanup(); }
});

test('settings file: exact one-line format, nulls for absent values, empty file without settings', () => {
  assert.equal(settingsFileText({ publicSettings: { commandToExecute: 'echo héllo' }, protectedSettings: 'MIIBabc+/=', protectedSettingsCertThumbprint: 'F6AB' }),
    '{"runtimeSettings": [{"handlerSettings": {"publicSettings": {"commandToExecute": "echo h\\u00e9llo"}, "protectedSettings": "MIIBabc+/=", "protectedSettingsCertThumbprint": "F6AB"}}]}');
  assert.equal(settingsFileText({ publicSettings: null, protectedSettings: null, protectedSettingsCertThumbprint: null }),
    '{"runtimeSettings": [{"handlerSettings": {"publicSettings": null, "protectedSettings": null, "protectedSettingsCertThumbprint": null}}]}');
  assert.equal(settingsFileText(null), '');
});

test('writeSettings: 0600 in a 0700 config folder, rewritten with a fresh mtime, protected settings never logged', () => {
  const bed = makeExtBed();
  const mem = memoryAppender(Level.VERBOSE);
  log.addAppender(mem);
  try {
    const h = `/var/lib/waagent/${N}-2.1.10`;
    const secret = 'MIIBsEcReTpRoTeCtEd0123456789abcdef==';
    const f = writeSettings(bed.ctx.os.fs, h, 3, { publicSettings: { a: 1 }, protectedSettings: secret, protectedSettingsCertThumbprint: 'T' });
    assert.equal(f, `${h}/config/3.settings`);
    assert.equal(bed.mode(f), 0o600);
    assert.equal(bed.mode(`${h}/config`), 0o700);
    assert.ok(bed.read(f).includes(secret), 'copied verbatim');
    const before = fs.statSync(bed.p(f)).mtimeMs;
    fs.utimesSync(bed.p(f), new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    writeSettings(bed.ctx.os.fs, h, 3, { publicSettings: { a: 1 }, protectedSettings: secret, protectedSettingsCertThumbprint: 'T' });
    assert.ok(fs.statSync(bed.p(f)).mtimeMs >= before - 1000, 'rewritten');
    writeSettings(bed.ctx.os.fs, h, 0, null, 'X1');
    assert.equal(bed.read(`${h}/config/X1.0.settings`), '');
    assert.equal(bed.mode(`${h}/config/X1.0.settings`), 0o600);
    // even if something later logs the protected string (e.g. an extension echoing it), it is redacted
    log.info(`extension said ${secret}`);
    assert.ok(mem.lines.length > 0);
    assert.ok(mem.lines.every((l) => !l.includes(secret)), mem.lines.join(''));
  } finally { log.removeAppender(mem); bed.cleanup(); }
});
