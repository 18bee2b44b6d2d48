/**
 * The files of a handler directory that the agent owns or reads first (extensions.md §2, §7): where everything lives
 * (handler directory, config/status folders, settings/status/heartbeat files, the per-handler log folder of D19),
 * `HandlerManifest.json` parsed into a typed value (§7.4, defensive), `HandlerEnvironment.json` (§7.3) and the
 * settings files (§7.1, 0600; protected settings copied verbatim, never decrypted, never logged).
 *
 * All paths here are agent paths (`/var/lib/waagent/...`); they reach the disk through the OS object's `HostFs`, which
 * maps them through the root prefix (D13). Every file is written atomically with an explicit mode (§2.4).
 */
import * as path from 'node:path';
import type { HostFs } from '../os/os';
import { log, errorText } from '../core/log';
import { FileTooLargeError } from '../core/files';
import { RawJson } from '../fabric/status';
import { ExtensionError, ExtErrorCode } from './errors';
import { pyJson } from './py-json';

export type HandlerOperation = 'install' | 'enable' | 'disable' | 'update' | 'uninstall';

/** The error code of a failed operation (§5.2, §6.6). */
export const OPERATION_ERROR_CODES: Record<HandlerOperation, number> = {
  install: ExtErrorCode.PluginInstallProcessingFailed,
  enable: ExtErrorCode.PluginEnableProcessingFailed,
  disable: ExtErrorCode.PluginDisableProcessingFailed,
  update: ExtErrorCode.PluginUpdateProcessingFailed,
  uninstall: ExtErrorCode.PluginProcessingError,
};

// ---- where things live (§2.1, D19) ---------------------------------------------------------------------------------

/** `<L>/<N>-<V>`: a direct child of Lib.Dir, named exactly `<N>-<V>` (§2.3: extensions derive both from it). */
export function handlerDir(libDir: string, name: string, version: string): string {
  if (!name || name.includes('/') || name === '.' || name === '..' || !version || version.includes('/')) {
    throw new ExtensionError(`Invalid handler name or version: ${JSON.stringify(name)} ${JSON.stringify(version)}`);
  }
  return path.posix.join(libDir, `${name}-${version}`);
}

const VERSION_RE = /^\d+(\.\d+)*((alpha|beta|rc)\d*)?$/;

/**
 * Whether a directory entry of `<L>` is a handler directory (§2.2) and, if so, its name and version: split at the
 * last `-`, the right part a version, not `WALinuxAgent-*`, `history` or `events`. (The caller checks it is a directory.)
 */
export function parseHandlerDirName(entry: string): { name: string; version: string } | undefined {
  if (entry.startsWith('WALinuxAgent-') || entry === 'history' || entry === 'events') return undefined;
  const i = entry.lastIndexOf('-');
  if (i <= 0) return undefined;
  const name = entry.slice(0, i); const version = entry.slice(i + 1);
  return VERSION_RE.test(version) ? { name, version } : undefined;
}

export const manifestPath = (h: string): string => `${h}/HandlerManifest.json`;
export const environmentPath = (h: string): string => `${h}/HandlerEnvironment.json`;
export const configDir = (h: string): string => `${h}/config`;
export const statusDir = (h: string): string => `${h}/status`;
export const heartbeatPath = (h: string): string => `${h}/heartbeat.log`;
export const mrseqPath = (h: string): string => `${h}/mrseq`;
export const handlerStatePath = (h: string): string => `${h}/config/HandlerState`;
export const handlerStatusPath = (h: string): string => `${h}/config/HandlerStatus`;

function seqText(seqNo: number): string {
  if (!Number.isSafeInteger(seqNo) || seqNo < 0) throw new ExtensionError(`Invalid sequence number: ${seqNo}`);
  return String(seqNo);
}
function extPrefix(extensionName: string | undefined): string {
  if (extensionName === undefined) return '';
  if (!extensionName || extensionName.includes('/') || extensionName.startsWith('.')) throw new ExtensionError(`Invalid extension name: ${JSON.stringify(extensionName)}`);
  return `${extensionName}.`;
}
/** `<H>/config/<seq>.settings` (SC) or `<H>/config/<X>.<seq>.settings` (MC), §7.1. */
export function settingsPath(h: string, seqNo: number, extensionName?: string): string {
  return `${configDir(h)}/${extPrefix(extensionName)}${seqText(seqNo)}.settings`;
}
/** `<H>/status/<seq>.status` (SC) or `<H>/status/<X>.<seq>.status` (MC), §8.1. */
export function statusPath(h: string, seqNo: number, extensionName?: string): string {
  return `${statusDir(h)}/${extPrefix(extensionName)}${seqText(seqNo)}.status`;
}
/** `<E>/<N>`: the handler's log folder, without a version level (D19). */
export function handlerLogDir(extensionLogDir: string, name: string): string {
  if (!name || name.includes('/') || name === '.' || name === '..') throw new ExtensionError(`Invalid handler name: ${JSON.stringify(name)}`);
  return path.posix.join(extensionLogDir, name);
}
/** `<E>/<N>/CommandExecution.log` (SC) or `CommandExecution_<X>.log` (MC), §6.4. */
export function commandExecutionLogPath(logDir: string, extensionName?: string): string {
  return `${logDir}/CommandExecution${extensionName ? `_${extensionName}` : ''}.log`;
}
/** `<E>/<N>/events`: the extension telemetry drop folder (§10.2), advertised only when telemetry is supported. */
export const eventsFolder = (logDir: string): string => `${logDir}/events`;

// ---- HandlerManifest.json (§7.4) -----------------------------------------------------------------------------------

export interface ResourceLimits {
  cpuQuotaPercentage?: number;
  memoryQuotaInMB?: number;
  services: { name: string; cpuQuotaPercentage?: number }[];
}

export interface HandlerManifest {
  /** The five command strings as written (absent, or not a string → that operation fails when run). */
  commands: Partial<Record<HandlerOperation, string>>;
  reportHeartbeat: boolean;
  continueOnUpdateFailure: boolean;
  supportsMultipleExtensions: boolean;
  /** `updateMode` when it is a string; `undefined` when absent. */
  updateMode?: string;
  /** True when `updateMode` is present but not a string: the update then fails (HEAD). */
  updateModeInvalid: boolean;
  rebootAfterInstall: boolean;
  /** Top-level `resourceLimits` of the manifest element (§6.7), only its well-typed parts. */
  resourceLimits?: ResourceLimits;
  /** Top-level `signingInfo` (§4.3), kept as found. */
  signingInfo?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A JSON boolean, or a string equal to `true` in any case; anything else is false (§7.4). */
function manifestBool(v: unknown, key: string, where: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    log.verbose(`${where}: ${key} is a string (${JSON.stringify(v.slice(0, 20))}), read as ${v.toLowerCase() === 'true'}`);
    return v.toLowerCase() === 'true';
  }
  log.verbose(`${where}: ${key} is not a boolean; read as false`);
  return false;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function parseResourceLimits(v: unknown): ResourceLimits | undefined {
  if (!isObject(v)) return undefined;
  const services = Array.isArray(v.services)
    ? v.services.filter(isObject).filter((s) => typeof s.name === 'string' && s.name !== '')
      .map((s) => ({ name: s.name as string, cpuQuotaPercentage: num(s.cpuQuotaPercentage) }))
    : [];
  return { cpuQuotaPercentage: num(v.cpuQuotaPercentage), memoryQuotaInMB: num(v.memoryQuotaInMB), services };
}

function stripBom(s: string): string { return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s; }

/** Parses the text of a `HandlerManifest.json` (`where` names the file in errors). Throws ExtensionError 1003 / −1. */
export function parseHandlerManifest(text: string, where: string): HandlerManifest {
  let data: unknown;
  try { data = JSON.parse(stripBom(text)); } catch {
    throw new ExtensionError(`[ExtensionError] Malformed manifest file (${where}).`, ExtErrorCode.PluginHandlerManifestDeserializationError);
  }
  // WALA takes element 0 of an array; a bare object is accepted too (defensive).
  const el = Array.isArray(data) ? data[0] : data;
  if (!isObject(el)) {
    throw new ExtensionError(`[ExtensionError] Malformed manifest file (${where}).`, ExtErrorCode.PluginHandlerManifestDeserializationError);
  }
  const hm = el.handlerManifest;
  if (!isObject(hm)) throw new ExtensionError(`[ExtensionError] Malformed manifest file (${where}): no handlerManifest object.`, ExtErrorCode.PluginUnknownFailure);
  const commands: Partial<Record<HandlerOperation, string>> = {};
  for (const op of ['install', 'uninstall', 'update', 'enable', 'disable'] as HandlerOperation[]) {
    const c = hm[`${op}Command`];
    if (typeof c === 'string') commands[op] = c;
  }
  return {
    commands,
    reportHeartbeat: manifestBool(hm.reportHeartbeat, 'reportHeartbeat', where),
    continueOnUpdateFailure: manifestBool(hm.continueOnUpdateFailure, 'continueOnUpdateFailure', where),
    supportsMultipleExtensions: manifestBool(hm.supportsMultipleExtensions, 'supportsMultipleExtensions', where),
    updateMode: typeof hm.updateMode === 'string' ? hm.updateMode : undefined,
    updateModeInvalid: hm.updateMode !== undefined && hm.updateMode !== null && typeof hm.updateMode !== 'string',
    rebootAfterInstall: manifestBool(hm.rebootAfterInstall, 'rebootAfterInstall', where),
    resourceLimits: parseResourceLimits(el.resourceLimits),
    signingInfo: el.signingInfo,
  };
}

const MAX_MANIFEST_BYTES = 1024 * 1024;

/** Reads and parses `<H>/HandlerManifest.json` (the agent's copy). Unreadable → ExtensionError 1002; invalid → 1003. */
export function readHandlerManifest(fs: HostFs, h: string): HandlerManifest {
  const file = manifestPath(h);
  let text: string | undefined;
  try {
    text = fs.readText(file, MAX_MANIFEST_BYTES);
  } catch (e) {
    const why = e instanceof FileTooLargeError ? `larger than ${MAX_MANIFEST_BYTES} bytes` : errorText(e);
    throw new ExtensionError(`[ExtensionError] Failed to load manifest file (${file}): ${why}`, ExtErrorCode.PluginHandlerManifestNotFound);
  }
  if (text === undefined) {
    throw new ExtensionError(`[ExtensionError] Failed to load manifest file (${file}): [Errno 2] No such file or directory`, ExtErrorCode.PluginHandlerManifestNotFound);
  }
  return parseHandlerManifest(text, file);
}

/** The manifest's command for `op`; a missing one fails the operation with its code (§7.4). */
export function manifestCommand(m: HandlerManifest, op: HandlerOperation): string {
  const c = m.commands[op];
  if (c === undefined) throw new ExtensionError(`[ExtensionError] HandlerManifest.json has no ${op}Command`, OPERATION_ERROR_CODES[op]);
  return c;
}

/** Whether the update sequence runs the new version's install (§5.4 step 6); a non-string `updateMode` fails (1008). */
export function installDuringUpdate(m: HandlerManifest): boolean {
  if (m.updateModeInvalid) throw new ExtensionError('[ExtensionUpdateError] Invalid updateMode in HandlerManifest.json', ExtErrorCode.PluginUpdateProcessingFailed);
  return m.updateMode === undefined || m.updateMode.toLowerCase() === 'updatewithinstall';
}

/**
 * Copies the package's `HandlerManifest.json` to `<H>/HandlerManifest.json` (0644, UTF-8 BOM removed; §2.1): the first
 * one found walking `<H>` breadth-first (files of a directory before its subdirectories, names sorted). Never looks
 * into `config/` or `status/`. Throws ExtensionError −1 as §8.5 words it when none exists or the copy fails.
 */
export function copyHandlerManifest(fs: HostFs, h: string): void {
  const queue = [h];
  let found: string | undefined;
  for (let n = 0; queue.length && !found && n < 10_000; n++) {
    const dir = queue.shift()!;
    const names = fs.readdir(dir);
    const subdirs: string[] = [];
    for (const name of names) {
      const p = `${dir}/${name}`;
      const st = fs.lstat(p);
      if (!st) continue;
      if (st.isFile() && name === 'HandlerManifest.json') { found = p; break; }
      if (st.isDirectory() && !(dir === h && (name === 'config' || name === 'status'))) subdirs.push(p);
    }
    queue.push(...subdirs);
  }
  if (!found) throw new ExtensionError('Failed to download artifacts: [ExtensionDownloadError] HandlerManifest.json not found', ExtErrorCode.PluginUnknownFailure);
  try {
    const text = fs.readText(found, MAX_MANIFEST_BYTES) ?? '';
    fs.write(manifestPath(h), stripBom(text), { mode: 0o644 });
  } catch (e) {
    throw new ExtensionError(`Failed to download artifacts: [ExtensionDownloadError] Failed to save HandlerManifest.json: ${errorText(e)}`, ExtErrorCode.PluginUnknownFailure);
  }
}

// ---- HandlerEnvironment.json (§7.3) --------------------------------------------------------------------------------

export interface HandlerEnvironmentArgs {
  /** Handler name `<N>` as in the goal state. */
  name: string;
  /** The handler directory `<H>` (agent path). */
  handlerDir: string;
  /** `Extension.LogDir` (`<E>`). */
  extensionLogDir: string;
  /** Advertise the extension telemetry folder (§10.2). Off until telemetry is implemented (§10.3). */
  telemetry?: boolean;
}

/** The exact text of `HandlerEnvironment.json` (one line, Python separators, `"version": 1.0` literally, D8). */
export function handlerEnvironmentText(a: HandlerEnvironmentArgs): string {
  const logFolder = handlerLogDir(a.extensionLogDir, a.name);
  const env: Record<string, unknown> = {
    logFolder,
    configFolder: configDir(a.handlerDir),
    statusFolder: statusDir(a.handlerDir),
    heartbeatFile: heartbeatPath(a.handlerDir),
  };
  if (a.telemetry) { env.eventsFolder = eventsFolder(logFolder); env.eventsFolder_preview = eventsFolder(logFolder); }
  return pyJson([{ name: a.name, version: new RawJson('1.0'), handlerEnvironment: env }]);
}

/**
 * Writes `<H>/HandlerEnvironment.json` (0644) and creates the log folder `<E>/<N>` (0755, mode of an existing folder
 * left alone) and, with telemetry, its `events` folder (0700). Called at setup and for every handler directory at
 * every start (§5.10), so a VM switched from WALinuxAgent loses the telemetry keys (§10.3).
 */
export function writeHandlerEnvironment(fs: HostFs, a: HandlerEnvironmentArgs): void {
  const logFolder = handlerLogDir(a.extensionLogDir, a.name);
  if (!fs.stat(logFolder)?.isDirectory()) fs.mkdir(logFolder, 0o755);
  if (a.telemetry && !fs.stat(eventsFolder(logFolder))?.isDirectory()) fs.mkdir(eventsFolder(logFolder), 0o700);
  fs.write(environmentPath(a.handlerDir), handlerEnvironmentText(a), { mode: 0o644 });
}

/** Creates `<H>/config` and `<H>/status` (0700, §2.1) if missing; existing ones keep their content. */
export function ensureHandlerFolders(fs: HostFs, h: string): void {
  for (const d of [configDir(h), statusDir(h)]) fs.mkdir(d, 0o700);
}

// ---- settings files (§7.1, §7.2) -----------------------------------------------------------------------------------

/** One extension's settings as the goal state gave them (§3.1). */
export interface HandlerSettings {
  /** Any JSON value (normally an object); `null` when absent. */
  publicSettings: unknown;
  /** base64 of the CMS EnvelopedData, copied verbatim (never decrypted by the agent); `null` when absent. */
  protectedSettings: string | null;
  protectedSettingsCertThumbprint: string | null;
}

/**
 * The text of a settings file: one line `{"runtimeSettings": [{"handlerSettings": {...}}]}` with the three keys
 * always present (`null` when absent); an empty text for a handler without settings (§7.1).
 */
export function settingsFileText(s: HandlerSettings | null): string {
  if (s === null) return '';
  return pyJson({
    runtimeSettings: [{
      handlerSettings: {
        publicSettings: s.publicSettings === undefined ? null : s.publicSettings,
        protectedSettings: s.protectedSettings ?? null,
        protectedSettingsCertThumbprint: s.protectedSettingsCertThumbprint ?? null,
      },
    }],
  });
}

/**
 * Writes the settings file of `seqNo` (and extension `<X>` for MC) into `<H>/config/` with mode 0600, replacing the
 * file of the same name (§5.8: rewritten before every enable, so its mtime is fresh). `null` settings → an empty
 * `0.settings`-style file. The protected string is registered with the logger as a secret, so an extension that
 * prints it in its output never puts it into a log; the content itself is never logged. Returns the agent path.
 */
export function writeSettings(fs: HostFs, h: string, seqNo: number, settings: HandlerSettings | null, extensionName?: string): string {
  const file = settingsPath(h, seqNo, extensionName);
  if (settings?.protectedSettings) log.addSecret(settings.protectedSettings);
  if (!fs.stat(configDir(h))?.isDirectory()) fs.mkdir(configDir(h), 0o700);
  fs.write(file, settingsFileText(settings), { mode: 0o600 });
  log.verbose(`Wrote settings file ${file}`);
  return file;
}
