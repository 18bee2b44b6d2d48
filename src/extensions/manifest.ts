/**
 * The extension manifest (`PluginVersionManifest`, fabric-protocol.md §4.3, extensions.md §4.1) parsed to typed
 * candidates, WALinuxAgent's FlexibleVersion comparison and HEAD's version selection (extensions.md §3.6).
 */
import { parseXml, find, findAll, textOf, type XmlElement } from '../core/xml';
import { ExtensionError, ExtErrorCode } from './errors';

export interface ManifestVersion {
  /** The version as the manifest spells it (it names the handler directory, §3.6 rule 7). */
  version: string;
  /** Alternative package URLs, in document order. */
  uris: string[];
  /** From `InternalPlugins` (selection treats both lists alike). */
  isInternal: boolean;
  /** `DisallowMajorVersionUpgrade` (carried, not used by HEAD). */
  disallowMajorVersionUpgrade?: boolean;
}

export interface ExtensionManifest { versions: ManifestVersion[] }

function children(el: XmlElement | undefined, local: string): XmlElement[] {
  return (el?.children ?? []).filter((c): c is XmlElement => typeof c !== 'string' && c.local === local);
}

/**
 * Parses a manifest: every `Plugins/Plugin` and `InternalPlugins/Plugin` with a non-empty `Version`. Malformed XML or
 * another root element (an HTML error page served with 200) throws `ExtensionError` (−1). A document without candidates parses to an empty list ("version not found" later).
 */
export function parseExtensionManifest(xml: string): ExtensionManifest {
  let root: XmlElement;
  try { root = parseXml(xml.replace(/^\uFEFF/, ''), 'extension manifest'); } catch (e) {
    throw new ExtensionError(`Malformed extension manifest: ${(e as Error).message}`, ExtErrorCode.PluginUnknownFailure);
  }
  if (root.local !== 'PluginVersionManifest') {
    throw new ExtensionError(`Malformed extension manifest: root element <${root.local}>, not <PluginVersionManifest>`, ExtErrorCode.PluginUnknownFailure);
  }
  const versions: ManifestVersion[] = [];
  for (const [list, isInternal] of [['Plugins', false], ['InternalPlugins', true]] as const) {
    for (const p of children(find(root, list), 'Plugin')) {
      const version = (textOf(find(p, 'Version')) ?? '').trim();
      if (!version) continue;
      const uris = findAll(find(p, 'Uris'), 'Uri').map((u) => (textOf(u) ?? '').trim()).filter(Boolean);
      const dmu = (textOf(find(p, 'DisallowMajorVersionUpgrade')) ?? '').trim().toLowerCase();
      versions.push({ version, uris, isInternal, ...(dmu ? { disallowMajorVersionUpgrade: dmu === 'true' } : {}) });
    }
  }
  return { versions };
}

/** A parsed FlexibleVersion: numeric components and an optional `alpha|beta|rc<n>` pre-release. */
export interface FlexibleVersion { parts: number[]; pre?: { tag: 'alpha' | 'beta' | 'rc'; n: number } }

const VERSION_RE = /^(\d+(?:\.\d+)*)(?:[.-]?(alpha|beta|rc)(\d*))?$/;

/** Parses a version (`2.1.10`, `1.0`, `2.0.0rc1`, `1.0-beta2`); `undefined` when it is not one. */
export function parseVersion(v: string): FlexibleVersion | undefined {
  const m = VERSION_RE.exec(v.trim());
  if (!m) return undefined;
  const parts = m[1].split('.').map(Number);
  if (parts.some((n) => !Number.isSafeInteger(n))) return undefined;
  return m[2] ? { parts, pre: { tag: m[2] as 'alpha' | 'beta' | 'rc', n: m[3] ? Number(m[3]) : 0 } } : { parts };
}

const PRE_ORDER = { alpha: 0, beta: 1, rc: 2 } as const;

/** Compares two versions: component-wise numeric, missing components 0, a pre-release before its release. */
export function compareVersions(a: FlexibleVersion, b: FlexibleVersion): number {
  const n = Math.max(a.parts.length, b.parts.length);
  for (let i = 0; i < n; i++) {
    const d = (a.parts[i] ?? 0) - (b.parts[i] ?? 0);
    if (d) return d < 0 ? -1 : 1;
  }
  if (!a.pre && !b.pre) return 0;
  if (!a.pre) return 1;
  if (!b.pre) return -1;
  const t = PRE_ORDER[a.pre.tag] - PRE_ORDER[b.pre.tag];
  if (t) return t < 0 ? -1 : 1;
  return Math.sign(a.pre.n - b.pre.n);
}

/** Compares two version strings; unparsable ones sort first (and equal to each other). */
export function compareVersionStrings(a: string, b: string): number {
  const x = parseVersion(a); const y = parseVersion(b);
  if (!x || !y) return x ? 1 : y ? -1 : 0;
  return compareVersions(x, y);
}

/** HEAD's `matches`: the requested version's components are a prefix of the candidate's. */
export function versionMatches(requested: FlexibleVersion, candidate: FlexibleVersion): boolean {
  if (requested.parts.length > candidate.parts.length) return false;
  return requested.parts.every((p, i) => p === candidate.parts[i]);
}

export interface SelectOptions {
  /** The requested state of the handler: `enabled`, `disabled` or `uninstall`. */
  state: string;
  /** The handler name, for the error message. */
  name?: string;
}

/**
 * Version selection (§3.6). `installed` is the version on disk (or undefined). For `uninstall`/`disabled` the
 * installed version (else the requested one) is used, in the manifest's spelling when listed; for `enabled` the
 * highest candidate the requested version matches (a trailing `.*` is taken as the prefix before it — "Ours MAY").
 * Returns the manifest spelling; `undefined` when nothing matches for `enabled`. Throws `ExtensionError` (−1) for
 * an unparsable requested version.
 */
export function selectVersion(manifest: ExtensionManifest, requested: string, installed: string | undefined, opts: SelectOptions): string | undefined {
  const candidates = manifest.versions
    .map((v) => ({ v, parsed: parseVersion(v.version) }))
    .filter((c): c is { v: ManifestVersion; parsed: FlexibleVersion } => !!c.parsed)
    .sort((a, b) => compareVersions(a.parsed, b.parsed));
  if (opts.state === 'uninstall' || opts.state === 'disabled') {
    const want = installed ?? requested;
    const w = parseVersion(want);
    const same = w ? candidates.filter((c) => compareVersions(c.parsed, w) === 0).pop() : undefined;
    return same ? same.v.version : want;
  }
  const req = parseVersion(requested.trim().replace(/\.\*$/, ''));
  if (!req || req.parts.length === 0) {
    throw new ExtensionError(`Invalid version ${JSON.stringify(requested)} requested for extension ${opts.name ?? ''}`.trimEnd(), ExtErrorCode.PluginUnknownFailure);
  }
  let selected: ManifestVersion | undefined;
  for (const c of candidates) if (versionMatches(req, c.parsed)) selected = c.v;
  return selected?.version;
}

/** The manifest entry of a version (exact spelling first, then numerically equal). */
export function findVersion(manifest: ExtensionManifest, version: string): ManifestVersion | undefined {
  const exact = manifest.versions.find((v) => v.version === version);
  if (exact) return exact;
  const p = parseVersion(version);
  return p ? manifest.versions.find((v) => { const q = parseVersion(v.version); return !!q && compareVersions(p, q) === 0; }) : undefined;
}

/** `selectVersion` for state `enabled` that throws HEAD's error when nothing matches (§8.5, code −1). */
export function selectVersionOrThrow(manifest: ExtensionManifest, requested: string, installed: string | undefined, opts: SelectOptions): string {
  const v = selectVersion(manifest, requested, installed, opts);
  if (v === undefined) {
    throw new ExtensionError(`Unable to find version ${requested} in manifest for extension ${opts.name ?? ''}`.trimEnd(), ExtErrorCode.PluginUnknownFailure);
  }
  return v;
}
