/**
 * The handler lifecycle (extensions.md §5, §9.3): for one plan item, the actions of §3.5 — setup, install, the update
 * sequence in the exact order and environment of §5.4 (continueOnUpdateFailure, updateMode, downgrade), enable,
 * disable, uninstall — with the states of §5.1 persisted after each successful step (so a kill -9 or a reboot repeats
 * the step, §5.10) and the handler statuses and codes of §5.2 / §8.5. Download, unzip, files and the command runner
 * come in through `ExtDeps` (ext-fetch and ext-run), so the order can be tested with recording fakes.
 */
import * as nodeFs from 'node:fs';
import type { HostFs } from '../os/os';
import type { Logger } from '../core/log';
import { errorText } from '../core/log';
import { ExtensionError, ExtErrorCode, errorCodeOf } from './errors';
import type { ExtSettings, HandlerSpec, PlanItem } from './plan';
import { itemName } from './plan';
import { isSafeVersion } from '../core/safe-names';
import { HandlerDir, installedVersion, compareExtVersions } from './handler-state';

export type Operation = 'install' | 'enable' | 'disable' | 'update' | 'uninstall';

/** What the agent reads of a package's HandlerManifest.json (§7.4), already typed by ext-run's reader. */
export interface HandlerManifestInfo {
  installCommand?: string;
  uninstallCommand?: string;
  updateCommand?: string;
  enableCommand?: string;
  disableCommand?: string;
  reportHeartbeat: boolean;
  continueOnUpdateFailure: boolean;
  supportsMultipleExtensions: boolean;
  /** Raw `updateMode` (string or anything else: a non-string fails the update, §7.4). */
  updateMode?: unknown;
}

/** The outcome of one command (ext-run's `runHandlerCommand`). */
export interface CommandOutcome {
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  /** `[stdout]\n…\n\n[stderr]\n…` (§6.4). */
  output: string;
  /** Node's signal name when the shell was killed by a signal. */
  signal?: string | null;
  /** The runner's own rendering of a failure (§6.6 code and message) and result string (§6.3), when it has one. */
  error?: { message: string; code: number };
  resultCode?: string;
  /** The agent stopped waiting (shutdown). */
  aborted?: boolean;
}

export interface RunCommandArgs {
  /** Agent path of `<H>` (the working directory). */
  handlerDir: string;
  /** The manifest's command string (leading `/` not yet stripped). */
  commandLine: string;
  operation: Operation;
  /** Only the variables the agent adds (§6.3); the runner merges the agent's environment over them. */
  env: Record<string, string>;
  timeoutMs: number;
  /** `<N>` (log folder) and `<N>.<X>` for MC logs. */
  name: string;
  extensionName?: string;
  version: string;
}

export interface ManifestVersions { versions: { version: string; uris: string[] }[] }

/** Everything the lifecycle needs from outside (download, files, commands). Errors are `ExtensionError`s. */
export interface ExtDeps {
  /** §4.1: the extension manifest of a handler. */
  fetchManifest(h: HandlerSpec): Promise<ManifestVersions>;
  /** §3.6: the version to use for `enabled`, in the manifest's spelling; undefined when none matches. */
  selectVersion(m: ManifestVersions, requested: string, installed: string | undefined): string | undefined;
  /** §4.2–4.4: download and unpack into `destDir` (idempotent; an existing complete directory is kept). */
  installPackage(args: { uris: string[]; destDir: string; name: string; version: string; handler: HandlerSpec; manifest: ManifestVersions }): Promise<void>;
  /** §7.4: the manifest copy of `<H>` (1002 unreadable / 1003 malformed). */
  readHandlerManifest(handlerDir: string): HandlerManifestInfo;
  /** §7.3. */
  writeHandlerEnvironment(handlerDir: string, name: string): void;
  /** §7.1: `config/<seq>.settings` (SC), `config/<X>.<seq>.settings` (MC), an empty `0.settings` without settings. */
  writeSettings(handlerDir: string, settings: ExtSettings | undefined, multiConfig: boolean): void;
  runCommand(args: RunCommandArgs): Promise<CommandOutcome>;
  /** Called before every command (§10.3 item 3: keep `<L>/events` small). */
  beforeCommand?(): void;
}

/** Per-operation timeouts in seconds (§6.5); tests replace the table. */
export const DEFAULT_TIMEOUTS: Record<Operation, number> = { install: 900, enable: 300, disable: 900, update: 900, uninstall: 300 };
export const OPERATION_CODES: Record<Operation, number> = {
  install: ExtErrorCode.PluginInstallProcessingFailed, enable: ExtErrorCode.PluginEnableProcessingFailed,
  disable: ExtErrorCode.PluginDisableProcessingFailed, update: ExtErrorCode.PluginUpdateProcessingFailed,
  uninstall: ExtErrorCode.PluginProcessingError,
};
const OPERATION_NAMES: Record<Operation, string> = { install: 'Install', enable: 'Enable', disable: 'Disable', update: 'Update', uninstall: 'UnInstall' };

/** A failed command: its code and message, and the result string other commands receive (§6.3). */
export class CommandFailure extends ExtensionError {
  constructor(message: string, code: number, readonly result: string) { super(message, code); this.name = 'CommandFailure'; }
}

export interface LifecycleOptions {
  fs: HostFs;
  libDir: string;
  log: Logger;
  deps: ExtDeps;
  /** Host of the WireServer (D24). */
  wireHost: string;
  timeouts?: Partial<Record<Operation, number>>;
}

/** The outcome of one item, for dependency handling (§3.4). */
export interface ItemOutcome {
  ok: boolean;
  /** The handler directory version the item acted on (reporting reads that directory). */
  version?: string;
  code?: number;
  message?: string;
}

/** Failures before the handler directory exists (manifest, version, download) are held here for the report. */
export interface MemoStatus { version: string; status: 'NotReady'; code: number; message: string }

const full = (dir: string, cmd: string): string => `${dir}/${cmd.replace(/^\/+/, '')}`;

/** Placeholder extension status file of §9.4 (MC failures, §11.2); written only where `status/` can be created. */
export function writePlaceholderStatus(fs: HostFs, dir: HandlerDir, fileName: string, name: string, operation: string | null,
  status: string, code: number, message: string, overwrite: boolean): void {
  const path = `${dir.statusDir}/${fileName}`;
  if (!overwrite && fs.exists(path)) return;
  if (!fs.lstat(dir.statusDir)?.isDirectory()) fs.mkdir(dir.statusDir, 0o700);
  const ts = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const body = `[{"version": 1.0, "timestampUTC": ${JSON.stringify(ts)}, "status": {"name": ${JSON.stringify(name)}, "operation": ${JSON.stringify(operation)}, "status": ${JSON.stringify(status)}, "code": ${code}, "formattedMessage": {"lang": "en-US", "message": ${JSON.stringify(message)}}}}]`;
  fs.write(path, body, { mode: 0o600 });
}

export class Lifecycle {
  private readonly fs: HostFs;
  private readonly libDir: string;
  private readonly log: Logger;
  private readonly deps: ExtDeps;
  private readonly timeouts: Record<Operation, number>;
  /** In-memory handler statuses for handlers without a directory yet (see `MemoStatus`). */
  readonly memo = new Map<string, MemoStatus>();

  constructor(private readonly o: LifecycleOptions) {
    this.fs = o.fs; this.libDir = o.libDir; this.log = o.log; this.deps = o.deps;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...o.timeouts };
  }

  private dir(name: string, version: string): HandlerDir { return new HandlerDir(this.fs, this.libDir, name, version); }

  /**
   * Runs one command of `dir`. Resolves with the result string `'0'` on success; throws `CommandFailure` (§6.6) on a
   * non-zero exit, a timeout (1011) or a launch failure.
   */
  async runOp(dir: HandlerDir, hm: HandlerManifestInfo, op: Operation, seqNo: number, extra: Record<string, string>, extName?: string): Promise<string> {
    const cmd = hm[`${op}Command` as const];
    const code = OPERATION_CODES[op];
    if (typeof cmd !== 'string') throw new CommandFailure(`[ExtensionError] ${op}Command not found in the handler manifest of ${dir.name}-${dir.version}`, code, String(code));
    const env: Record<string, string> = {
      AZURE_GUEST_AGENT_EXTENSION_PATH: dir.path,
      AZURE_GUEST_AGENT_EXTENSION_VERSION: dir.version,
      AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS: this.o.wireHost,
      ConfigSequenceNumber: String(seqNo),
      ...(extName !== undefined ? { ConfigExtensionName: extName } : {}),
      ...extra,
    };
    const label = extName !== undefined ? `${dir.name}.${extName}-${dir.version}` : `${dir.name}-${dir.version}`;
    this.log.info(`[${label}] ${OPERATION_NAMES[op]}: ${cmd} (${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')})`);
    try { this.deps.beforeCommand?.(); } catch (e) { this.log.warn(`events folder pruning failed: ${errorText(e)}`); }
    const fullCmd = full(dir.path, cmd);
    const timeout = this.timeouts[op];
    let r: CommandOutcome;
    try {
      r = await this.deps.runCommand({ handlerDir: dir.path, commandLine: cmd, operation: op, env, timeoutMs: timeout * 1000, name: dir.name, extensionName: extName, version: dir.version });
    } catch (e) {
      throw new CommandFailure(`[ExtensionError] Failed to launch '${fullCmd}': ${errorText(e)}`, code, String(code));
    }
    if (r.aborted) throw new CommandFailure(`[ExtensionError] ${fullCmd}: the agent stopped while the command ran`, code, String(code));
    if (r.error) {
      this.log.warn(`[${label}] ${OPERATION_NAMES[op]} failed (code ${r.error.code})`);
      throw new CommandFailure(r.error.message, r.error.code, r.resultCode ?? String(r.error.code));
    }
    if (r.timedOut) {
      this.log.warn(`[${label}] ${OPERATION_NAMES[op]} timed out after ${timeout} s`);
      throw new CommandFailure(`[ExtensionError] Timeout(${timeout}): ${fullCmd}\n${r.output}`, ExtErrorCode.PluginHandlerScriptTimedout, String(ExtErrorCode.PluginHandlerScriptTimedout));
    }
    if (r.exitCode === 0) {
      this.log.info(`[${label}] ${OPERATION_NAMES[op]} succeeded in ${r.durationMs} ms`);
      return '0';
    }
    const rc = r.exitCode ?? -(signalNumber(r.signal) ?? 9);
    this.log.warn(`[${label}] ${OPERATION_NAMES[op]} failed with exit code ${rc}`);
    throw new CommandFailure(`[ExtensionOperationError] Non-zero exit code: ${rc}, ${fullCmd}\n${r.output}`, code, String(rc));
  }

  /** Sets the handler status of `name` after a failure: on disk when its directory exists, else in memory. */
  private fail(h: HandlerSpec, version: string, e: unknown): ItemOutcome {
    const code = errorCodeOf(e);
    const message = e instanceof Error ? e.message : String(e);
    const d = this.dir(h.name, version);
    if (d.exists()) { d.setStatus('NotReady', code, message, h.supportsMultiConfig); this.memo.delete(h.name); } else this.memo.set(h.name, { version, status: 'NotReady', code, message });
    this.log.error(`[${h.name}-${version}] ${message.split('\n')[0]} (code ${code})`);
    return { ok: false, version, code, message };
  }

  /** Processes one item according to its handler's requested state (§3.5). Never throws. */
  async processItem(item: PlanItem): Promise<ItemOutcome> {
    const h = item.handler;
    try {
      if (h.state === 'enabled') return await this.enabled(item);
      if (h.state === 'disabled') return await this.disabled(item);
      return await this.uninstall(item);
    } catch (e) {
      return this.fail(h, installedVersion(this.fs, this.libDir, h.name) ?? h.version, e);
    }
  }

  /** Requested state `enabled` (§5.3, §9.3). */
  private async enabled(item: PlanItem): Promise<ItemOutcome> {
    const h = item.handler;
    const installed = installedVersion(this.fs, this.libDir, h.name);
    let manifest: ManifestVersions;
    try { manifest = await this.deps.fetchManifest(h); } catch (e) {
      return this.fail(h, installed ?? h.version, new ExtensionError(`[ExtensionError] Failed to get ext handler pkgs\nInner error: ${errorText(e)}`, ExtErrorCode.PluginUnknownFailure));
    }
    const selected = this.deps.selectVersion(manifest, h.version, installed);
    if (!selected) return this.fail(h, installed ?? h.version, new ExtensionError(`[ExtensionError] Unable to find version ${h.version} in manifest for extension ${h.name}`));
    if (!isSafeVersion(selected)) return this.fail(h, h.version, new ExtensionError(`[ExtensionError] Invalid version ${JSON.stringify(selected)} in manifest for extension ${h.name}`));
    if (selected !== h.version) this.log.info(`[${h.name}] version ${selected} selected for the requested ${h.version}`);
    const dir = this.dir(h.name, selected);
    const s = item.settings;
    const seqNo = s?.seqNo ?? 0;
    const mc = h.supportsMultiConfig;
    try {
      let uninstallResult = 'NOT_RUN';
      let hm: HandlerManifestInfo;
      const state = dir.state();
      if (state === 'NotInstalled' || state === 'FailedUpgrade') {
        const pkg = manifest.versions.find((v) => v.version === selected);
        if (!pkg || pkg.uris.length === 0) throw new ExtensionError('Failed to download artifacts: [ExtensionDownloadError] No package uri found', ExtErrorCode.PluginUnknownFailure);
        await this.deps.installPackage({ uris: pkg.uris, destDir: dir.path, name: h.name, version: selected, handler: h, manifest });
        dir.setState('NotInstalled');
        this.memo.delete(h.name);
        hm = this.deps.readHandlerManifest(dir.path);
        this.checkMultiConfig(h, hm);
        this.deps.writeHandlerEnvironment(dir.path, h.name);
        this.deps.writeSettings(dir.path, s, mc);
        if (installed === undefined) {
          await this.runOp(dir, hm, 'install', seqNo, { AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: 'NOT_RUN' }, mc ? s?.name : undefined);
          dir.setState('Installed');
          dir.setStatus('NotReady', 0, 'Plugin installed but not enabled', mc);
        } else if (compareExtVersions(installed, selected) !== 0) {
          uninstallResult = await this.update(item, this.dir(h.name, installed), dir, hm);
        } else {
          this.log.warn(`[${h.name}] directories ${installed} and ${selected} name the same version; nothing to install`);
        }
      } else {
        hm = this.deps.readHandlerManifest(dir.path);
        this.checkMultiConfig(h, hm);
        this.deps.writeSettings(dir.path, s, mc);
      }
      if (mc && s && s.state === 'disabled') return await this.deleteMcExtension(dir, hm, s, h);
      try {
        await this.runOp(dir, hm, 'enable', seqNo, { AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: uninstallResult }, mc ? s?.name : undefined);
      } catch (e) {
        if (mc && s) return this.mcFailure(dir, h, s, 'Enable', e, `Error processing MultiConfig extension ${h.name}.${s.name}: [MultiConfigExtensionEnableError] `);
        throw e;
      }
      if (mc && s) dir.setMcState(s.name, 'enabled');
      dir.setState('Enabled');
      dir.setStatus('Ready', 0, 'Plugin enabled', mc);
      return { ok: true, version: selected };
    } catch (e) {
      const out = this.fail(h, selected, e);
      if (mc && s && dir.exists()) this.mcPlaceholder(dir, h, s, e instanceof CommandFailure ? 'Install' : 'ExtensionProcessing', out.code ?? -1, out.message ?? '');
      return out;
    }
  }

  private checkMultiConfig(h: HandlerSpec, hm: HandlerManifestInfo): void {
    if (h.supportsMultiConfig && !hm.supportsMultipleExtensions) {
      throw new ExtensionError(`Ran into config errors: [ExtensionsGoalStateError] Handler ${h.name} does not support MultiConfig but CRP expects it, failing due to inconsistent data. \nPlease retry again as another operation with updated settings`);
    }
  }

  private mcPlaceholder(dir: HandlerDir, h: HandlerSpec, s: ExtSettings, operation: string, code: number, message: string): void {
    try { writePlaceholderStatus(this.fs, dir, `${s.name}.${s.seqNo}.status`, `${h.name}.${s.name}`, operation, 'error', code, message, false); } catch (e) { this.log.warn(`placeholder status for ${h.name}.${s.name}: ${errorText(e)}`); }
  }

  /** §9.3 step 3: an MC enable failure leaves the handler status alone and shows on the extension. */
  private mcFailure(dir: HandlerDir, h: HandlerSpec, s: ExtSettings, operation: string, e: unknown, prefix: string): ItemOutcome {
    const code = errorCodeOf(e);
    const message = prefix + (e instanceof Error ? e.message : String(e));
    this.mcPlaceholder(dir, h, s, operation, code, message);
    this.log.error(`[${h.name}.${s.name}-${dir.version}] ${message.split('\n')[0]} (code ${code})`);
    return { ok: false, version: dir.version, code, message };
  }

  /** §9.3 step 4: an MC extension the user deleted. */
  private async deleteMcExtension(dir: HandlerDir, hm: HandlerManifestInfo, s: ExtSettings, h: HandlerSpec): Promise<ItemOutcome> {
    if (dir.mcState(s.name) !== 'disabled' || this.fs.readdir(dir.configDir).some((f) => f.startsWith(`${s.name}.`))) {
      if (dir.mcState(s.name) === 'enabled') {
        try { await this.runOp(dir, hm, 'disable', s.seqNo, {}, s.name); } catch (e) { this.log.warn(`[${h.name}.${s.name}] disable failed (ignored): ${errorText(e)}`); }
      }
      dir.removeMcExtension(s.name);
    }
    if (dir.enabledMcExtensions().length === 0 && dir.state() === 'Enabled') {
      dir.setState('Installed');
      dir.setStatus('NotReady', 0, 'Plugin disabled', true);
    }
    return { ok: true, version: dir.version };
  }

  /**
   * The update sequence of §5.4 from `oldDir` to `newDir` (set up already). Returns the old uninstall's result for
   * the new install and enable. Throws on a failure that stops the sequence.
   */
  private async update(item: PlanItem, oldDir: HandlerDir, newDir: HandlerDir, newHm: HandlerManifestInfo): Promise<string> {
    const h = item.handler;
    const s = item.settings;
    const seqNo = s?.seqNo ?? 0;
    const mc = h.supportsMultiConfig;
    const cont = newHm.continueOnUpdateFailure;
    const stop = (e: unknown): ExtensionError =>
      new ExtensionError(`[ExtensionUpdateError] ${e instanceof Error ? e.message : String(e)}; ContinueOnUpdate: False`, ExtErrorCode.PluginUpdateProcessingFailed);
    this.log.info(`[${h.name}] updating ${oldDir.version} → ${newDir.version}`);
    const oldHm = this.deps.readHandlerManifest(oldDir.path);
    // 1. old disable
    const disableResults = new Map<string, string>();
    if (oldDir.state() === 'Enabled') {
      const targets: { name?: string; seq: number }[] = mc
        ? oldDir.enabledMcExtensions().map((x) => ({ name: x, seq: h.settings.find((e) => e.name === x)?.seqNo ?? seqNo }))
        : [{ seq: seqNo }];
      for (const t of targets) {
        try {
          disableResults.set(t.name ?? h.name, await this.runOp(oldDir, oldHm, 'disable', t.seq, {}, t.name));
          if (t.name !== undefined) oldDir.setMcState(t.name, 'disabled');
        } catch (e) {
          if (!cont) throw stop(e);
          disableResults.set(t.name ?? h.name, e instanceof CommandFailure ? e.result : String(OPERATION_CODES.disable));
          this.log.warn(`[${h.name}] old version's disable failed; continueOnUpdateFailure: going on`);
        }
      }
      // a successful disable leaves the old version Installed: a retry after a failure skips step 1 (§5.4 recovery)
      if (!mc || oldDir.enabledMcExtensions().length === 0) oldDir.setState('Installed');
    }
    // 2. copy mrseq and status files
    this.copyState(oldDir, newDir);
    // 3. update command: the new handler's for an upgrade, the old one's (in its directory) for a downgrade
    const upgrade = compareExtVersions(newDir.version, oldDir.version) > 0;
    const updDir = upgrade ? newDir : oldDir;
    const updEnv: Record<string, string> = { VERSION: newDir.version, AZURE_GUEST_AGENT_UPDATING_FROM_VERSION: oldDir.version };
    if (mc) {
      updEnv.AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODES_MULTIPLE_EXTENSIONS = `[${h.settings.map((e) => `{"extensionName": ${JSON.stringify(e.name)}, "exitCode": ${JSON.stringify(disableResults.get(e.name) ?? 'NOT_RUN')}}`).join(', ')}]`;
    } else {
      updEnv.AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE = disableResults.get(h.name) ?? 'NOT_RUN';
    }
    if (typeof newHm.updateMode !== 'undefined' && typeof newHm.updateMode !== 'string') {
      newDir.setState('FailedUpgrade');
      throw new ExtensionError(`[ExtensionUpdateError] Invalid updateMode in the handler manifest of ${newDir.name}-${newDir.version}`, ExtErrorCode.PluginUpdateProcessingFailed);
    }
    try {
      await this.runOp(updDir, upgrade ? newHm : oldHm, 'update', seqNo, updEnv, mc ? s?.name : undefined);
    } catch (e) {
      updDir.setState('FailedUpgrade');
      throw new ExtensionError(`[ExtensionUpdateError] ${e instanceof Error ? e.message : String(e)}`, ExtErrorCode.PluginUpdateProcessingFailed);
    }
    // 4. old uninstall
    let uninstallResult: string;
    try {
      uninstallResult = await this.runOp(oldDir, oldHm, 'uninstall', seqNo, {}, mc ? s?.name : undefined);
    } catch (e) {
      if (!cont) throw stop(e);
      uninstallResult = e instanceof CommandFailure ? e.result : String(OPERATION_CODES.uninstall);
    }
    // 5. remove old
    this.removeHandler(oldDir);
    // 6. new install (UpdateWithInstall)
    const mode = newHm.updateMode;
    if (mode === undefined || (typeof mode === 'string' && mode.toLowerCase() === 'updatewithinstall')) {
      await this.runOp(newDir, newHm, 'install', seqNo, { AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: uninstallResult }, mc ? s?.name : undefined);
      newDir.setState('Installed');
    } else {
      this.log.info(`[${h.name}] updateMode ${String(mode)}: no install`);
    }
    return uninstallResult;
  }

  /** §5.4 step 2: `mrseq` and every regular file of `status/`, timestamps kept. */
  private copyState(from: HandlerDir, to: HandlerDir): void {
    const copy = (a: string, b: string): void => {
      const st = this.fs.lstat(a);
      if (!st?.isFile()) return;
      this.fs.write(b, nodeFs.readFileSync(this.fs.p(a)), { mode: st.mode & 0o777 });
      nodeFs.utimesSync(this.fs.p(b), st.atime, st.mtime);
    };
    try {
      copy(`${from.path}/mrseq`, `${to.path}/mrseq`);
      to.ensureDirs();
      for (const f of this.fs.readdir(from.statusDir)) copy(`${from.statusDir}/${f}`, `${to.statusDir}/${f}`);
    } catch (e) { this.log.warn(`[${from.name}] copying state ${from.version} → ${to.version}: ${errorText(e)}`); }
  }

  /** Deletes `<H>` and its zips (§5.4 step 5, §5.6 step 4). */
  removeHandler(dir: HandlerDir): void {
    if (!dir.safe) return;
    for (const z of [`${this.libDir}/${dir.name}__${dir.version}.zip`, `${this.libDir}/${dir.name}-${dir.version}.zip`]) this.fs.remove(z);
    dir.remove();
  }

  /** The version a disable/uninstall acts on (§3.6 rule 5, Ours: no manifest needed). */
  private onDiskDir(h: HandlerSpec): HandlerDir {
    return this.dir(h.name, installedVersion(this.fs, this.libDir, h.name) ?? h.version);
  }

  /** Disables the enabled extensions of `dir` (§5.5, §5.6 step 2). Throws the first failure. */
  private async disableAll(dir: HandlerDir, hm: HandlerManifestInfo, item: PlanItem, onlyItem: boolean): Promise<void> {
    const h = item.handler;
    if (!h.supportsMultiConfig) {
      await this.runOp(dir, hm, 'disable', item.settings?.seqNo ?? 0, {});
      return;
    }
    const names = onlyItem && item.settings ? [item.settings.name].filter((x) => dir.mcState(x) === 'enabled') : dir.enabledMcExtensions();
    for (const x of names) {
      await this.runOp(dir, hm, 'disable', h.settings.find((e) => e.name === x)?.seqNo ?? item.settings?.seqNo ?? 0, {}, x);
      dir.setMcState(x, 'disabled');
    }
  }

  /** Requested state `disabled` (§5.5). */
  private async disabled(item: PlanItem): Promise<ItemOutcome> {
    const h = item.handler;
    const dir = this.onDiskDir(h);
    if (dir.state() !== 'Enabled') return { ok: true, version: dir.version };
    try {
      const hm = this.deps.readHandlerManifest(dir.path);
      await this.disableAll(dir, hm, item, true);
      if (!h.supportsMultiConfig || dir.enabledMcExtensions().length === 0) {
        dir.setState('Installed');
        dir.setStatus('NotReady', 0, 'Plugin disabled', h.supportsMultiConfig);
      }
      return { ok: true, version: dir.version };
    } catch (e) { return this.fail(h, dir.version, e); }
  }

  /** Requested state `uninstall` (§5.6). */
  private async uninstall(item: PlanItem): Promise<ItemOutcome> {
    const h = item.handler;
    const dir = this.onDiskDir(h);
    this.memo.delete(h.name);
    const state = dir.state();
    if (state === 'NotInstalled') {
      if (dir.exists()) this.removeHandler(dir);
      return { ok: true, version: dir.version };
    }
    let hm: HandlerManifestInfo;
    try { hm = this.deps.readHandlerManifest(dir.path); } catch (e) { return this.fail(h, dir.version, e); }
    if (state === 'Enabled') {
      try { await this.disableAll(dir, hm, item, false); } catch (e) { return this.fail(h, dir.version, e); }
    }
    try { await this.runOp(dir, hm, 'uninstall', item.settings?.seqNo ?? 0, {}); } catch (e) {
      this.log.warn(`[${h.name}-${dir.version}] uninstall failed (ignored): ${errorText(e).split('\n')[0]}`);
    }
    this.removeHandler(dir);
    this.log.info(`[${itemName(item)}] uninstalled; ${dir.path} removed`);
    return { ok: true, version: dir.version };
  }
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };
function signalNumber(sig: string | null | undefined): number | undefined {
  return sig ? SIGNALS[sig] : undefined;
}
