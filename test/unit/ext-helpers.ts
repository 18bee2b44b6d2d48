/** Test fixtures for the extension plan and lifecycle: a temp-dir Lib.Dir, ExtensionsConfig documents built in code,
 *  and recording fakes for fetch (manifest, package) and run (commands) that script every reaction. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SysRoot } from '../../src/core/sysroot';
import { HostFs } from '../../src/os/os';
import { log } from '../../src/core/log';
import type { ExtensionsConfigDoc, PluginDoc, PluginSettingsDoc } from '../../src/fabric/documents';
import { Lifecycle, type ExtDeps, type HandlerManifestInfo, type RunCommandArgs, type CommandOutcome, type ManifestVersions } from '../../src/extensions/lifecycle';
import type { ExtSettings } from '../../src/extensions/plan';
import { ExtensionError } from '../../src/extensions/errors';
import { compareExtVersions } from '../../src/extensions/handler-state';

export const L = '/var/lib/waagent';

export interface Call { op: string; dir: string; env: Record<string, string> }

export interface FakeBed {
  dir: string;
  fs: HostFs;
  calls: Call[];
  /** Everything in order: commands as `op@version`, plus `download@version`, `settings@version`. */
  events: string[];
  manifests: Map<string, HandlerManifestInfo>;
  versions: string[];
  /** Scripted reactions: return an outcome or undefined for success. */
  react: (a: RunCommandArgs) => Partial<CommandOutcome> | undefined;
  manifestFails: boolean;
  downloadFails: boolean;
  deps: ExtDeps;
  lifecycle(timeouts?: Record<string, number>): Lifecycle;
  p(abs: string): string;
  exists(abs: string): boolean;
  read(abs: string): string;
  cleanup(): void;
}

export const hm = (over: Partial<HandlerManifestInfo> = {}): HandlerManifestInfo => ({
  installCommand: 'bin/fake.sh install', uninstallCommand: 'bin/fake.sh uninstall', updateCommand: 'bin/fake.sh update',
  enableCommand: 'bin/fake.sh enable', disableCommand: 'bin/fake.sh disable',
  reportHeartbeat: false, continueOnUpdateFailure: false, supportsMultipleExtensions: false, ...over,
});

export function makeFakeBed(): FakeBed {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-ext-'));
  const root = new SysRoot(dir);
  const hfs = new HostFs(root);
  hfs.mkdir(L, 0o700);
  const bed = {
    dir, fs: hfs, calls: [] as Call[], events: [] as string[], manifests: new Map<string, HandlerManifestInfo>(),
    versions: ['1.0.0', '1.1.0'], react: () => undefined, manifestFails: false, downloadFails: false,
  } as unknown as FakeBed;
  const deps: ExtDeps = {
    async fetchManifest(): Promise<ManifestVersions> {
      if (bed.manifestFails) throw new ExtensionError('[ProtocolError] Failed to retrieve extension manifest. Error: 404', -1);
      return { versions: bed.versions.map((v) => ({ version: v, uris: [`http://pkg/${v}.zip`] })) };
    },
    selectVersion(m, requested) {
      const want = requested.split('.');
      const ok = m.versions.map((v) => v.version).filter((v) => want.every((c, i) => v.split('.')[i] === c));
      return ok.sort(compareExtVersions).pop();
    },
    async installPackage({ destDir, version }) {
      bed.events.push(`download@${version}`);
      if (bed.downloadFails) throw new ExtensionError(`Failed to download artifacts: [ExtensionDownloadError] Failed to download x-${version} from all URIs. Last error: 404`, 1001);
      hfs.mkdir(destDir, 0o755);
      hfs.mkdir(`${destDir}/bin`, 0o755);
      hfs.write(`${destDir}/HandlerManifest.json`, '[]', { mode: 0o644 });
    },
    readHandlerManifest(handlerDir) {
      const v = handlerDir.slice(handlerDir.lastIndexOf('-') + 1);
      return bed.manifests.get(v) ?? hm();
    },
    writeHandlerEnvironment(handlerDir) { hfs.write(`${handlerDir}/HandlerEnvironment.json`, '[]', { mode: 0o644 }); },
    writeSettings(handlerDir, s: ExtSettings | undefined, mc) {
      const v = handlerDir.slice(handlerDir.lastIndexOf('-') + 1);
      bed.events.push(`settings@${v}`);
      hfs.mkdir(`${handlerDir}/config`, 0o700);
      const f = mc && s ? `${s.name}.${s.seqNo}.settings` : `${s?.seqNo ?? 0}.settings`;
      hfs.write(`${handlerDir}/config/${f}`, s ? JSON.stringify({ runtimeSettings: [{ handlerSettings: { publicSettings: s.publicSettings } }] }) : '', { mode: 0o600 });
    },
    async runCommand(a) {
      bed.calls.push({ op: a.operation, dir: a.handlerDir, env: a.env });
      bed.events.push(`${a.operation}@${a.version}${a.extensionName ? `:${a.extensionName}` : ''}`);
      const r = bed.react(a);
      return { exitCode: 0, timedOut: false, durationMs: 1, output: '[stdout]\nok\n\n[stderr]\n', ...r };
    },
  };
  Object.assign(bed, {
    deps,
    lifecycle: (timeouts?: Record<string, number>) => new Lifecycle({ fs: hfs, libDir: L, log, deps, wireHost: '168.63.129.16', timeouts }),
    p: (abs: string) => root.path(abs),
    exists: (abs: string) => fs.existsSync(root.path(abs)),
    read: (abs: string) => fs.readFileSync(root.path(abs), 'utf8'),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  });
  return bed;
}

export function plugin(name: string, version: string, state = 'enabled'): PluginDoc {
  return { name, version, state, manifestUris: [`http://m/${name}`], attrs: {} };
}

export function scSettings(name: string, version: string, seqNo: number, pub: unknown = { a: 1 }, level?: number): PluginSettingsDoc {
  return {
    name, version, runtimeSettings: [{ seqNo: String(seqNo), json: JSON.stringify({ runtimeSettings: [{ handlerSettings: { publicSettings: pub } }] }) }],
    extensionRuntimeSettings: [], dependencyLevel: level === undefined ? undefined : String(level), dependsOn: [],
  };
}

export function extConfig(plugins: PluginDoc[], pluginSettings: PluginSettingsDoc[], requiredFeatures: string[] = []): ExtensionsConfigDoc {
  return { plugins, pluginSettings, requiredFeatures, gaFamilies: [] };
}
