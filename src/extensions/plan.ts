/**
 * From ExtensionsConfig to a plan (extensions.md §3.1, §3.3, §3.4, §3.8, §2.2): the parsed `PluginDoc`s and
 * `PluginSettingsDoc`s become typed handler specs (an invalid one carries its reason and never stops the others), the
 * items are put in dependency order, and the clean-up of handler directories that left the goal state is computed.
 * Pure functions over typed values; the file system is only read by `handlerDirsOnDisk`.
 */
import { isSafeExtensionName, isSafeHandlerName, isSafeVersion } from '../core/safe-names';
import type { ExtensionsConfigDoc, PluginDoc, PluginSettingsDoc } from '../fabric/documents';
import type { HostFs } from '../os/os';
import { parseHandlerDirName } from './handler-files';

/** A handler directory name `<N>-<V>` (§2.2): one definition, in handler-files. */
export { parseHandlerDirName };

/** One extension (settings entry) of a handler (§3.1, "Per settings entry"). */
export interface ExtSettings {
  /** `<N>` for single-config, `<X>` for multi-config. */
  name: string;
  seqNo: number;
  /** `enabled` or `disabled` (MC only; SC entries are `enabled`). */
  state: 'enabled' | 'disabled';
  publicSettings: unknown;
  protectedSettings: string | null;
  protectedSettingsCertThumbprint: string | null;
  dependencyLevel: number;
}

export type RequestedState = 'enabled' | 'disabled' | 'uninstall';

/** A handler of the goal state (§3.1). */
export interface HandlerSpec {
  name: string;
  /** The requested version (§3.6). */
  version: string;
  /** Lower-cased `@state`; anything other than the three states makes the handler invalid. */
  state: RequestedState;
  manifestUris: string[];
  encodedSignature: string;
  settings: ExtSettings[];
  supportsMultiConfig: boolean;
  /** Set when the goal state's data for this handler is unusable (§3.1 rules); reported, never executed. */
  invalidReason?: string;
  plugin: PluginDoc;
}

/** One processing item (§3.3): a settings entry, or the handler alone when it has none. */
export interface PlanItem {
  handler: HandlerSpec;
  settings?: ExtSettings;
  key: number;
}

/** `<N>` or `<N>.<X>`: how an item is named in messages (§3.4, §11.2). */
export function itemName(item: PlanItem): string {
  return item.handler.supportsMultiConfig && item.settings ? `${item.handler.name}.${item.settings.name}` : item.handler.name;
}

interface ParsedSettingsText { publicSettings: unknown; protectedSettings: string | null; protectedSettingsCertThumbprint: string | null }

/** Settings JSON text → the entries of `runtimeSettings` (§3.1 rules 5 and 7; Ours: a missing key is like invalid JSON). */
function parseSettingsText(text: string): ParsedSettingsText[] | undefined {
  let doc: unknown;
  try { doc = JSON.parse(text); } catch { return undefined; }
  const rs = (doc as { runtimeSettings?: unknown } | null)?.runtimeSettings;
  if (!Array.isArray(rs) || rs.length === 0) return undefined;
  const out: ParsedSettingsText[] = [];
  for (const r of rs) {
    const hs = (r as { handlerSettings?: unknown } | null)?.handlerSettings as Record<string, unknown> | undefined;
    if (!hs || typeof hs !== 'object') return undefined;
    out.push({
      publicSettings: hs.publicSettings === undefined ? null : hs.publicSettings,
      protectedSettings: typeof hs.protectedSettings === 'string' ? hs.protectedSettings : null,
      protectedSettingsCertThumbprint: typeof hs.protectedSettingsCertThumbprint === 'string' ? hs.protectedSettingsCertThumbprint : null,
    });
  }
  return out;
}

const NO_SETTINGS: ParsedSettingsText = { publicSettings: null, protectedSettings: null, protectedSettingsCertThumbprint: null };


function level(text: string | undefined): number {
  if (text === undefined) return 0;
  const t = text.trim();
  return /^-?\d+$/.test(t) ? Number(t) : 0;
}

function seq(text: string): number | undefined {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : undefined;
}

/** Fills `spec.settings` from the matching PluginSettings (§3.1 rules 1–8), or sets `invalidReason`. */
function attachSettings(spec: HandlerSpec, all: PluginSettingsDoc[]): void {
  const n = spec.name;
  const matches = all.filter((s) => s.name.toLowerCase() === n.toLowerCase());
  if (matches.length === 0) return;
  const wrong = matches.filter((s) => s.version !== spec.version);
  if (wrong.length) {
    spec.invalidReason = `Extension PluginSettings Version Mismatch! Expected PluginSettings version: ${spec.version} for Extension: ${n} but found versions: (${matches.map((s) => s.version).join(', ')})`;
    return;
  }
  if (matches.length > 1) {
    spec.invalidReason = `Multiple plugin settings found for the same extension: ${n} and version: ${spec.version} (Expected: 1; Available: ${matches.length})`;
    return;
  }
  const ps = matches[0];
  if (ps.runtimeSettings.length && ps.extensionRuntimeSettings.length) {
    spec.invalidReason = `Both RuntimeSettings and ExtensionRuntimeSettings found for the same extension: ${n} and version: ${spec.version}`;
    return;
  }
  if (ps.runtimeSettings.length > 1) {
    spec.invalidReason = `Multiple RuntimeSettings found for the same extension: ${n} and version: ${spec.version} (Expected: 1; Available: ${ps.runtimeSettings.length})`;
    return;
  }
  if (ps.runtimeSettings.length === 1) {
    const r = ps.runtimeSettings[0];
    const s = seq(r.seqNo);
    if (s === undefined) { spec.invalidReason = `SeqNo not specified for the Extension: ${n}`; return; }
    const lvl = level(ps.dependencyLevel);
    for (const p of parseSettingsText(r.json) ?? [NO_SETTINGS]) {
      spec.settings.push({ name: n, seqNo: s, state: 'enabled', dependencyLevel: lvl, ...p });
    }
    return;
  }
  if (ps.extensionRuntimeSettings.length) {
    spec.supportsMultiConfig = true;
    for (const r of ps.extensionRuntimeSettings) {
      if (r.name.trim() && !isSafeExtensionName(r.name)) { spec.invalidReason = `Invalid extension name ${JSON.stringify(r.name)} for the Extension: ${n}`; spec.settings = []; return; }
      if (!r.name.trim()) { spec.invalidReason = `ExtensionRuntimeSettings without a name for the Extension: ${n}`; spec.settings = []; return; }
      const s = seq(r.seqNo);
      if (s === undefined) { spec.invalidReason = `SeqNo not specified for the Extension: ${n}.${r.name}`; spec.settings = []; return; }
      const st = r.state.trim().toLowerCase() || 'enabled';
      const dep = ps.dependsOn.length && ps.dependencyLevel !== undefined ? level(ps.dependencyLevel) : 0;
      const p = (parseSettingsText(r.json) ?? [NO_SETTINGS])[0];
      spec.settings.push({ name: r.name, seqNo: s, state: st === 'disabled' ? 'disabled' : 'enabled', dependencyLevel: dep, ...p });
    }
  }
}

/**
 * The handlers of an ExtensionsConfig (§3.1). Plugins without a name or version are skipped (they cannot be
 * reported) and named in `skipped`; every other problem marks only that handler invalid.
 */
export function parseHandlers(ec: ExtensionsConfigDoc): { handlers: HandlerSpec[]; skipped: string[] } {
  const handlers: HandlerSpec[] = [];
  const skipped: string[] = [];
  for (const p of ec.plugins) {
    if (!p.name.trim() || !p.version.trim()) { skipped.push(p.name || '(no name)'); continue; }
    const raw = p.state.trim().toLowerCase();
    const spec: HandlerSpec = {
      name: p.name, version: p.version.trim(), state: 'enabled', manifestUris: p.manifestUris,
      encodedSignature: p.encodedSignature ?? '', settings: [], supportsMultiConfig: false, plugin: p,
    };
    if (!isSafeHandlerName(p.name) || !isSafeVersion(spec.version)) {
      spec.invalidReason = `Invalid handler name or version: ${JSON.stringify(p.name)} ${JSON.stringify(spec.version)}`;
      handlers.push(spec);
      continue;
    }
    if (raw === 'enabled' || raw === 'disabled' || raw === 'uninstall') spec.state = raw;
    else spec.invalidReason = raw ? `Unknown Extensions.Plugins.Plugin.state '${p.state}', failing Handler` : 'Received empty Extensions.Plugins.Plugin.state, failing Handler';
    attachSettings(spec, ec.pluginSettings);
    handlers.push(spec);
  }
  return { handlers, skipped };
}

/** The processing order (§3.3): stable sort by key; disables/uninstalls (negative keys) first. */
export function orderItems(handlers: HandlerSpec[]): PlanItem[] {
  const items: PlanItem[] = [];
  for (const h of handlers) {
    const enabled = h.state === 'enabled';
    if (h.settings.length === 0) {
      items.push({ handler: h, key: enabled ? 0 : -1 });
      continue;
    }
    for (const s of h.settings) {
      const L = s.dependencyLevel;
      items.push({ handler: h, settings: s, key: enabled && s.state === 'enabled' ? L : -L - 1 });
    }
  }
  return items.map((it, i) => ({ it, i })).sort((a, b) => a.it.key - b.it.key || a.i - b.i).map((x) => x.it);
}

/** Whether the processing waits for item `i`'s result before the next item (§3.4: `0 ≤ key < maxKey`). */
export function waitsAfter(items: PlanItem[], i: number): boolean {
  if (!items.length) return false;
  const maxKey = items[items.length - 1].key;
  const k = items[i].key;
  return k >= 0 && k < maxKey;
}

/** Required features the agent does not support (§3.2 gate 3). */
export function unsupportedFeatures(ec: ExtensionsConfigDoc, supported: readonly string[]): string[] {
  return ec.requiredFeatures.filter((f) => !supported.includes(f));
}

/** Handler directories under Lib.Dir (§2.2). */
export function handlerDirsOnDisk(fs: HostFs, libDir: string): { dir: string; name: string; version: string }[] {
  const out: { dir: string; name: string; version: string }[] = [];
  for (const e of fs.readdir(libDir)) {
    const parsed = parseHandlerDirName(e);
    if (!parsed) continue;
    if (!fs.lstat(`${libDir}/${e}`)?.isDirectory()) continue;
    out.push({ dir: `${libDir}/${e}`, ...parsed });
  }
  return out;
}

/**
 * What the clean-up after processing removes (§3.8, Ours): handler directories whose handler left the goal state
 * (exact spelling; no command runs), their `<N>__<V>.zip` and `<N>-<V>.zip`, orphan zips of either naming without a
 * directory, and stale `*.part` downloads.
 */
export function cleanupTargets(fs: HostFs, libDir: string, handlers: HandlerSpec[]): { dirs: { dir: string; name: string; version: string }[]; files: string[] } {
  const names = new Set(handlers.map((h) => h.name));
  const dirs = handlerDirsOnDisk(fs, libDir).filter((d) => !names.has(d.name));
  const present = new Set(handlerDirsOnDisk(fs, libDir).filter((d) => names.has(d.name)).map((d) => `${d.name}-${d.version}`));
  const files: string[] = [];
  for (const e of fs.readdir(libDir)) {
    const path = `${libDir}/${e}`;
    if (/\.part$/.test(e) && fs.lstat(path)?.isFile()) { files.push(path); continue; }
    const m = /^(.+?)(?:__|-)(\d+(?:\.\d+)*)\.zip$/.exec(e);
    if (!m || !fs.lstat(path)?.isFile()) continue;
    if (!present.has(`${m[1]}-${m[2]}`)) files.push(path);
  }
  return { dirs, files };
}
