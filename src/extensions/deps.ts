/**
 * Wires the extension handler (handler.ts) to the real parts: manifest and package download through the fabric link's
 * wire client (ext-fetch: fetch.ts, manifest.ts), the handler files and the command runner (ext-run: handler-files.ts,
 * command.ts, status-file.ts). Loaded lazily by the goal-state loop; the only place that knows all three rooms.
 */
import type { AgentContext } from '../context';
import type { FabricLinkHandle } from '../fabric/link';
import type { GoalState } from '../fabric/wire';
import { ExtensionError, ExtErrorCode } from './errors';
import { ExtensionsHandler, type HandlerDeps } from './handler';
import type { HandlerManifestInfo, ManifestVersions } from './lifecycle';
import type { HandlerSpec } from './plan';
import { readHandlerManifest, writeHandlerEnvironment, writeSettings, handlerLogDir, type HandlerManifest } from './handler-files';
import { runHandlerCommand } from './command';
import { readExtensionStatus, readHeartbeat } from './status-file';
// './fetch' (downloads, and through it the unzip with zlib and fs/promises) is loaded when a handler is first
// fetched: the idle daemon of a VM without extensions never loads it.
import { fetchArtifactsProfile } from '../fabric/artifacts';
import { selectVersion, type ExtensionManifest } from './manifest';

const toInfo = (m: HandlerManifest): HandlerManifestInfo => ({
  installCommand: m.commands.install, uninstallCommand: m.commands.uninstall, updateCommand: m.commands.update,
  enableCommand: m.commands.enable, disableCommand: m.commands.disable,
  reportHeartbeat: m.reportHeartbeat, continueOnUpdateFailure: m.continueOnUpdateFailure,
  supportsMultipleExtensions: m.supportsMultipleExtensions, updateMode: m.updateModeInvalid ? 0 : m.updateMode,
});

/** The real dependencies for the handler, bound to the agent context and the link's wire client. */
export function realDeps(ctx: AgentContext, link: FabricLinkHandle): HandlerDeps {
  const fs = ctx.os.fs;
  const logRoot = ctx.conf.str('Extension.LogDir') ?? '/var/log/azure';
  const wire = () => {
    const w = link.wire;
    if (!w) throw new ExtensionError('[ExtensionError] the fabric is not connected', ExtErrorCode.PluginUnknownFailure);
    return w;
  };
  const manifests = new WeakMap<ManifestVersions, { manifest: ExtensionManifest; uri: string }>();
  return {
    async fetchManifest(h: HandlerSpec): Promise<ManifestVersions> {
      const { fetchManifest } = await import('./fetch');
      const { manifest, uri } = await fetchManifest(wire(), h.plugin);
      const mv: ManifestVersions = { versions: manifest.versions.map((v) => ({ version: v.version, uris: v.uris })) };
      manifests.set(mv, { manifest, uri });
      return mv;
    },
    selectVersion(m, requested, installed) {
      const em = manifests.get(m)?.manifest ?? { versions: m.versions.map((v) => ({ ...v, isInternal: false })) };
      return selectVersion(em, requested, installed, { state: 'enabled' });
    },
    async installPackage({ uris, destDir, name, version, handler, manifest }) {
      const { installPackage } = await import('./fetch');
      await installPackage(wire(), {
        uris, destDir, libDir: ctx.libDir, name, version, manifestUri: manifests.get(manifest)?.uri, encodedSignature: handler.encodedSignature || undefined,
      });
    },
    readHandlerManifest: (dir) => toInfo(readHandlerManifest(fs, dir)),
    writeHandlerEnvironment: (dir, name) => writeHandlerEnvironment(fs, { name, handlerDir: dir, extensionLogDir: logRoot }),
    writeSettings: (dir, s, mc) => {
      writeSettings(fs, dir, s?.seqNo ?? 0, s ? { publicSettings: s.publicSettings, protectedSettings: s.protectedSettings, protectedSettingsCertThumbprint: s.protectedSettingsCertThumbprint } : null, mc && s ? s.name : undefined);
    },
    async runCommand(a) {
      const r = await runHandlerCommand({
        ctx, handlerDir: a.handlerDir, commandLine: a.commandLine, operation: a.operation, env: a.env, timeoutMs: a.timeoutMs,
        logDir: handlerLogDir(logRoot, a.name), name: a.name, version: a.version, extensionName: a.extensionName,
      });
      return { ...r, error: r.error ? { message: r.error.message, code: r.error.code } : undefined };
    },
    readExtensionStatus: async (dir, s, mc, name, version) => (await readExtensionStatus({
      fs, handlerDir: dir, name, version, seqNo: s.seqNo, extensionName: mc ? s.name : undefined,
    })).status,
    readHeartbeat: (dir) => readHeartbeat({ fs, handlerDir: dir }),
    reportsHeartbeat: (dir) => { try { return readHandlerManifest(fs, dir).reportHeartbeat; } catch { return false; } },
  };
}

/** The handler the goal-state loop drives. */
export function createExtensionsHandler(ctx: AgentContext, link: FabricLinkHandle): ExtensionsHandler {
  const logRoot = ctx.conf.str('Extension.LogDir') ?? '/var/log/azure';
  return new ExtensionsHandler(ctx, link, {
    deps: (l) => realDeps(ctx, l),
    rewriteEnvironment: (dir, name) => writeHandlerEnvironment(ctx.os.fs, { name, handlerDir: dir, extensionLogDir: logRoot }),
    onHold: async (l: FabricLinkHandle, gs: GoalState) => {
      const w = l.wire;
      const url = gs.extensionsConfig?.artifactsProfileBlob;
      if (!w || !url) return false;
      return (await fetchArtifactsProfile(w, url)).onHold;
    },
  });
}
