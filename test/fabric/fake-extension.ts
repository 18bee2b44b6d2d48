/**
 * The scripted fake extension of extensions.md §13.2: one POSIX `sh` script (test/fabric/fake-ext.sh, packaged as
 * `bin/fake.sh <op>`; no Python, no jq)
 * plus `HandlerManifest.json` in the variants §13.2 lists, zipped at test time. Each call appends one JSON line to
 * `<L>/fake-ext-record.log` (operation, arguments, ids, umask, process group and session, open file descriptors, the
 * whole environment, settings file facts) and then does what the public setting `fake` says: space-separated
 * `key=value` (all operations) or `<op>.key=value` (one operation; wins) — see FAKE_DIRECTIVES.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildZip, type ZipEntrySpec } from './zip';
import type { ExtensionPackageSpec } from './scenario';

/** Name of the record log in Lib.Dir (outside the handler directory, so it survives uninstall). */
export const FAKE_LOG = 'fake-ext-record.log';

/** The directives `fake.sh` understands (documentation for test authors; the script is the authority). */
export const FAKE_DIRECTIVES = [
  'exit=<n>', 'sleep=<s>', 'status=<kind>', 'code=<n>', 'out=<n>', 'err=<n>', 'daemon=<s>', 'escape=<s>', 'child=<s>',
  'heartbeat=<word>|invalid', 'heartbeatage=<s>', 'mrseq=1', 'skipifseen=1', 'decrypt=1', 'tld=<n>', 'etp=<n>',
  'restartagent=1',
] as const;

/** Status kinds of `status=<kind>` (§8.2 cases). */
export const FAKE_STATUS_KINDS = [
  'transitioning', 'success', 'error', 'warning', 'none', 'invalidjson', 'notarray', 'emptyarray', 'nostatuskey',
  'badsubstatus', 'stringcode', 'nonutf8', 'huge', 'hugenull', 'Success',
] as const;

/** Source of the script: test/fabric/fake-ext.sh (read from the source tree; tsc does not copy it). */
export const FAKE_SCRIPT_PATH = path.join(__dirname, '..', '..', '..', 'test', 'fabric', 'fake-ext.sh');
/** The script text. */
export const FAKE_SCRIPT = fs.readFileSync(FAKE_SCRIPT_PATH, 'utf8');

export interface FakeManifestOptions {
  reportHeartbeat?: boolean;
  continueOnUpdateFailure?: boolean;
  updateMode?: string;
  /** The string "true" (as real manifests write it) or a boolean. */
  supportsMultipleExtensions?: boolean | string;
  /** Commands written with a leading `/` (`/bin/fake.sh enable`). */
  leadingSlash?: boolean;
  /** `resourceLimits` object, e.g. `{ cpuQuotaPercentage: 5 }`. */
  resourceLimits?: Record<string, unknown>;
  /** Put the manifest in `pkg/HandlerManifest.json` with a UTF-8 BOM. */
  inSubdirWithBom?: boolean;
  /** More handlerManifest fields. */
  extra?: Record<string, unknown>;
  /** Leave the manifest out of the package. */
  omit?: boolean;
}

/** The HandlerManifest.json text for the fake. */
export function fakeHandlerManifest(o: FakeManifestOptions = {}): string {
  const cmd = (op: string): string => `${o.leadingSlash ? '/' : ''}bin/fake.sh ${op}`;
  const hm: Record<string, unknown> = {
    installCommand: cmd('install'), uninstallCommand: cmd('uninstall'), updateCommand: cmd('update'),
    enableCommand: cmd('enable'), disableCommand: cmd('disable'),
    rebootAfterInstall: false, reportHeartbeat: o.reportHeartbeat ?? false,
  };
  if (o.continueOnUpdateFailure !== undefined) hm.continueOnUpdateFailure = o.continueOnUpdateFailure;
  if (o.updateMode !== undefined) hm.updateMode = o.updateMode;
  if (o.supportsMultipleExtensions !== undefined) hm.supportsMultipleExtensions = o.supportsMultipleExtensions;
  if (o.resourceLimits !== undefined) hm.resourceLimits = o.resourceLimits;
  return JSON.stringify([{ version: 1.0, handlerManifest: { ...hm, ...o.extra } }], null, 2);
}

/** The package entries: the manifest and `bin/fake.sh` (0755). */
export function fakeExtensionEntries(o: FakeManifestOptions = {}): ZipEntrySpec[] {
  const entries: ZipEntrySpec[] = [{ name: 'bin/', unixMode: 0o040755 }, { name: 'bin/fake.sh', data: FAKE_SCRIPT, unixMode: 0o100755 }];
  if (!o.omit) {
    entries.unshift(o.inSubdirWithBom
      ? { name: 'pkg/HandlerManifest.json', data: '\uFEFF' + fakeHandlerManifest(o) }
      : { name: 'HandlerManifest.json', data: fakeHandlerManifest(o) });
  }
  return entries;
}

/** The fake as a zip. */
export function fakeExtensionZip(o: FakeManifestOptions = {}): Buffer {
  return buildZip(fakeExtensionEntries(o));
}

/** The fake as a scenario package (served by the simulator, listed in its manifest). */
export function fakeExtensionPackage(name: string, version: string, o: FakeManifestOptions & { mirrors?: number; internal?: boolean } = {}): ExtensionPackageSpec {
  return { name, version, zipBase64: fakeExtensionZip(o).toString('base64'), mirrors: o.mirrors, internal: o.internal };
}

/** One line of the record log: a call record, or an event (`event` set) such as `exit`, `decrypt`, `daemon`. */
export interface FakeRecord {
  time: string;
  op: string;
  event?: string;
  epoch?: number;
  argc?: number;
  args?: string;
  pwd?: string;
  uid?: string;
  umask?: string;
  pid?: number;
  ppid?: string;
  pgid?: string;
  sid?: string;
  handlerDir?: string;
  seq?: string;
  extName?: string;
  settingsFile?: string;
  settingsExists?: boolean;
  settingsMtime?: string;
  handlerEnvExists?: boolean;
  fake?: string;
  fds?: Record<string, string>;
  env?: Record<string, string>;
  [k: string]: unknown;
}

/** Reads the record log (real path); lines that do not parse are returned as `{ op: '?', raw }`. */
export function readFakeLog(file: string): FakeRecord[] {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch { return []; }
  return text.split('\n').filter(Boolean).map((l) => {
    try { return JSON.parse(l) as FakeRecord; } catch { return { time: '', op: '?', raw: l }; }
  });
}

/** The call records only (no events), as `<op>@<handler dir basename>` — the command order tests compare. */
export function fakeCallOrder(records: FakeRecord[]): string[] {
  return records.filter((r) => !r.event && r.op !== '?').map((r) => `${r.op}@${(r.handlerDir ?? '').split('/').pop()}`);
}
