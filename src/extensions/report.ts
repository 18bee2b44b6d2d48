/**
 * The `handlerAggregateStatus` entries of the status blob (extensions.md §8.6, §8.1, §8.3, §9.6, §11.2): per handler
 * of the processed goal state, the handler status (`config/HandlerStatus`, or the agent's in-memory failure when the
 * handler directory does not exist yet) after the heartbeat, one entry per extension with its status file, or a
 * handler-only entry. Status files are read through ext-run's defensive reader (`ReportDeps`).
 */
import type { HostFs } from '../os/os';
import type { ExtensionSettingsStatus, HandlerAggregateStatus } from '../fabric/status';
import type { HandlerSpec, ExtSettings } from './plan';
import { HandlerDir, type HandlerStatusRecord } from './handler-state';
import type { MemoStatus } from './lifecycle';

export interface ReportDeps {
  /** §8.1–8.2: the extension status of `status/<file>` in `handlerDir` (missing → transitioning, invalid → 1012, …). */
  readExtensionStatus(handlerDir: string, s: ExtSettings, multiConfig: boolean, name: string, version: string): Promise<ExtensionSettingsStatus>;
  /** §8.3: the heartbeat's status word and message, unresponsive, or a failure (code −1) to record in HandlerStatus. */
  readHeartbeat?(handlerDir: string): { kind: 'ok'; status: string; message?: string } | { kind: 'unresponsive' } | { kind: 'error'; message: string };
  /** Whether the handler's manifest asks for heartbeats (§7.4). */
  reportsHeartbeat?(handlerDir: string): boolean;
}

export interface ReportInput {
  handlers: HandlerSpec[];
  /** Handler name → directory version processed (or installed) for this goal state. */
  versions: Map<string, string>;
  memo: Map<string, MemoStatus>;
  notAllowed: Set<string>;
  now: Date;
}

/** The status file name of an extension (§8.1, §9.2). */
export function statusFileName(s: ExtSettings, multiConfig: boolean): string {
  return multiConfig ? `${s.name}.${s.seqNo}.status` : `${s.seqNo}.status`;
}

/** Builds the entries (§8.6). Never throws for one handler's bad files: such a handler's entry shows the error. */
export async function buildHandlerEntries(fs: HostFs, libDir: string, input: ReportInput, deps: ReportDeps): Promise<HandlerAggregateStatus[]> {
  const out: HandlerAggregateStatus[] = [];
  for (const h of input.handlers) {
    const version = input.versions.get(h.name) ?? h.version;
    const dir = new HandlerDir(fs, libDir, h.name, version);
    const memo = input.memo.get(h.name);
    let hs: HandlerStatusRecord | undefined = dir.exists() ? dir.status() : undefined;
    if (!hs && memo) hs = { name: h.name, version: memo.version, status: 'NotReady', code: memo.code, message: memo.message, supports_multi_config: h.supportsMultiConfig };
    if (!hs) continue;
    const state = dir.exists() ? dir.state() : 'NotInstalled';
    const notAllowed = input.notAllowed.has(h.name);
    let status: HandlerAggregateStatus['status'] | string = hs.status;
    let code = hs.code;
    let message = hs.message;
    if (state !== 'NotInstalled' && deps.readHeartbeat && deps.reportsHeartbeat?.(dir.path)) {
      const hb = deps.readHeartbeat(dir.path);
      if (hb.kind === 'unresponsive') status = 'Unresponsive';
      else if (hb.kind === 'error') {
        if (!notAllowed) { dir.setStatus('NotReady', -1, hb.message, h.supportsMultiConfig); status = 'NotReady'; code = -1; message = hb.message; }
      } else if (notAllowed) {
        if (hb.message) message = `${message ?? ''}\nExtension was previously enabled and reported the following heartbeat:\n${hb.message}`;
      } else {
        status = hb.status;
        if (hb.message !== undefined) message = hb.message;
      }
    }
    const base = { handlerName: h.name, handlerVersion: hs.version || version, status: status as HandlerAggregateStatus['status'], code, message: message ?? undefined };
    let built = 0;
    if (state !== 'NotInstalled' || h.supportsMultiConfig || notAllowed) {
      for (const s of h.settings) {
        if (h.supportsMultiConfig && s.state === 'disabled' && (!dir.exists() || dir.mcState(s.name) === 'disabled')) continue;
        let ext: ExtensionSettingsStatus;
        if (!dir.exists() && notAllowed) {
          ext = { name: h.supportsMultiConfig ? s.name : h.name, operation: 'Enable', status: 'error', code: hs.code, formattedMessage: { lang: 'en-US', message: hs.message ?? '' } };
        } else {
          ext = await deps.readExtensionStatus(dir.path, s, h.supportsMultiConfig, h.name, version);
        }
        ext = { ...ext, name: h.supportsMultiConfig ? s.name : h.name };
        out.push({ ...base, runtimeSettings: { sequenceNumber: s.seqNo, extensionName: h.supportsMultiConfig ? s.name : undefined, status: ext, timestamp: input.now } });
        built++;
      }
    }
    if (!built) out.push(base);
  }
  return out;
}
