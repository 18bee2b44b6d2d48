/**
 * The state of a handler directory on disk (extensions.md §5.1, §5.10, §8.4, §2.1, §2.4): `config/HandlerState`,
 * `config/HandlerStatus`, the multi-config `config/<X>.HandlerState`, and the installed version of a handler. This
 * is the only state that survives a kill -9 or a reboot; every file is written atomically (0600) and a truncated or
 * unreadable file left by WALinuxAgent reads as missing.
 */
import type { HostFs } from '../os/os';
import { handlerDirsOnDisk } from './plan';
import { isSafeHandlerName, isSafeVersion } from '../core/safe-names';
import { parseVersion, compareVersions } from './manifest';

export type HandlerStateName = 'NotInstalled' | 'Installed' | 'Enabled' | 'FailedUpgrade';
const STATES: readonly HandlerStateName[] = ['NotInstalled', 'Installed', 'Enabled', 'FailedUpgrade'];

/** The handler-level status (§8.4), WALinuxAgent HEAD's file shape. */
export interface HandlerStatusRecord {
  name: string;
  version: string;
  status: 'Ready' | 'NotReady';
  code: number;
  message: string | null;
  supports_multi_config: boolean;
}

/** Version comparison of §3.6 (ext-fetch's parser): numeric components, missing ones are 0, a pre-release suffix
 *  sorts before the release; an unparsable version sorts first. */
export function compareExtVersions(a: string, b: string): number {
  const x = parseVersion(a); const y = parseVersion(b);
  if (x && y) return Math.sign(compareVersions(x, y));
  return x ? 1 : y ? -1 : a < b ? -1 : a > b ? 1 : 0;
}

/** One handler directory `<L>/<N>-<V>` and its state files. */
export class HandlerDir {
  readonly path: string;
  /** False when name or version could leave Lib.Dir (goal-state or manifest data): nothing is read or written. */
  readonly safe: boolean;
  constructor(private readonly fs: HostFs, readonly libDir: string, readonly name: string, readonly version: string) {
    this.safe = isSafeHandlerName(name) && isSafeVersion(version);
    this.path = `${libDir}/${name}-${version}`;
  }
  get configDir(): string { return `${this.path}/config`; }
  get statusDir(): string { return `${this.path}/status`; }
  exists(): boolean { return this.safe && !!this.fs.lstat(this.path)?.isDirectory(); }

  private readSmall(rel: string): string | undefined {
    if (!this.safe) return undefined;
    try { return this.fs.readText(`${this.path}/${rel}`, 64 * 1024); } catch { return undefined; }
  }

  /** `HandlerState`; missing, empty or unreadable → `NotInstalled` (§5.1). */
  state(): HandlerStateName {
    const t = this.readSmall('config/HandlerState')?.trim();
    return STATES.find((s) => s === t) ?? 'NotInstalled';
  }

  /** Creates `<H>` (0755) and `config/` (0700) when missing, then writes `HandlerState`. */
  setState(s: HandlerStateName): void {
    this.ensureDirs();
    this.fs.write(`${this.configDir}/HandlerState`, s, { mode: 0o600 });
  }

  ensureDirs(): void {
    if (!this.safe) throw new Error(`unsafe handler directory name ${JSON.stringify(`${this.name}-${this.version}`)}`);
    if (!this.exists()) this.fs.mkdir(this.path, 0o755);
    if (!this.fs.lstat(this.configDir)?.isDirectory()) this.fs.mkdir(this.configDir, 0o700);
    if (!this.fs.lstat(this.statusDir)?.isDirectory()) this.fs.mkdir(this.statusDir, 0o700);
  }

  /** `HandlerStatus` (§8.4): both HEAD's and 2.2.18's shapes; invalid → undefined. */
  status(): HandlerStatusRecord | undefined {
    const t = this.readSmall('config/HandlerStatus');
    if (!t) return undefined;
    try {
      const j = JSON.parse(t) as Record<string, unknown>;
      if (!j || typeof j !== 'object' || typeof j.status !== 'string') return undefined;
      return {
        name: typeof j.name === 'string' ? j.name : this.name,
        version: typeof j.version === 'string' ? j.version : this.version,
        status: j.status === 'Ready' ? 'Ready' : 'NotReady',
        code: typeof j.code === 'number' ? j.code : Number(j.code) || 0,
        message: typeof j.message === 'string' ? j.message : null,
        supports_multi_config: j.supports_multi_config === true,
      };
    } catch { return undefined; }
  }

  setStatus(status: 'Ready' | 'NotReady', code: number, message: string | null, supportsMultiConfig = false): void {
    this.ensureDirs();
    const rec = { name: this.name, version: this.version, status, code, message, supports_multi_config: supportsMultiConfig, extension_status: null };
    this.fs.write(`${this.configDir}/HandlerStatus`, JSON.stringify(rec), { mode: 0o600 });
  }

  /** MC extension state `<X>.HandlerState`: missing → `disabled` (§5.1). */
  mcState(ext: string): 'enabled' | 'disabled' {
    return this.readSmall(`config/${ext}.HandlerState`)?.trim().toLowerCase() === 'enabled' ? 'enabled' : 'disabled';
  }
  setMcState(ext: string, s: 'enabled' | 'disabled'): void {
    this.ensureDirs();
    this.fs.write(`${this.configDir}/${ext}.HandlerState`, s, { mode: 0o600 });
  }
  /** MC extensions whose `<X>.HandlerState` is `enabled`. */
  enabledMcExtensions(): string[] {
    return this.fs.readdir(this.configDir).filter((f) => f.endsWith('.HandlerState') && f !== 'HandlerState')
      .map((f) => f.slice(0, -'.HandlerState'.length)).filter((x) => this.mcState(x) === 'enabled');
  }

  /** Deletes the files of a deleted MC extension (§9.3 step 4). */
  removeMcExtension(ext: string): void {
    for (const f of this.fs.readdir(this.configDir)) {
      if (f === `${ext}.HandlerState` || (f.startsWith(`${ext}.`) && /^\d+\.settings$/.test(f.slice(ext.length + 1)))) this.fs.remove(`${this.configDir}/${f}`);
    }
    for (const f of this.fs.readdir(this.statusDir)) {
      if (f.startsWith(`${ext}.`) && /^\d+\.status$/.test(f.slice(ext.length + 1))) this.fs.remove(`${this.statusDir}/${f}`);
    }
  }

  remove(): void { if (this.safe) this.fs.remove(this.path); }
}

/**
 * The installed version of handler `name` (§5.1): the highest version among `<L>/<N>-*` whose `HandlerState` is
 * `Installed` or `Enabled`.
 */
export function installedVersion(fs: HostFs, libDir: string, name: string): string | undefined {
  let best: string | undefined;
  for (const d of handlerDirsOnDisk(fs, libDir)) {
    if (d.name !== name) continue;
    const s = new HandlerDir(fs, libDir, d.name, d.version).state();
    if (s !== 'Installed' && s !== 'Enabled') continue;
    if (best === undefined || compareExtVersions(d.version, best) > 0) best = d.version;
  }
  return best;
}

/** Every directory of handler `name` on disk (any state), highest version first. */
export function dirsOf(fs: HostFs, libDir: string, name: string): HandlerDir[] {
  return handlerDirsOnDisk(fs, libDir).filter((d) => d.name === name)
    .sort((a, b) => compareExtVersions(b.version, a.version))
    .map((d) => new HandlerDir(fs, libDir, d.name, d.version));
}
