/**
 * Processing one extensions goal state (extensions.md §3.2–§3.4, §3.7, §3.8, §11.2): the gates (on hold, required
 * features, no handlers), the items in dependency order with the waits and dependency failures of §3.4, the
 * not-allowed reports of `Extensions.Enabled=n`, and the clean-up of handlers that left the goal state. One goal state
 * at a time, one item at a time; the caller snapshots the ExtensionsConfig and never interrupts a run.
 */
import type { ExtensionsConfigDoc } from '../fabric/documents';
import type { HostFs } from '../os/os';
import type { Logger } from '../core/log';
import { errorText } from '../core/log';
import { ExtErrorCode } from './errors';
import { parseHandlers, orderItems, waitsAfter, unsupportedFeatures, cleanupTargets, itemName, type HandlerSpec, type PlanItem } from './plan';
import { HandlerDir, installedVersion } from './handler-state';
import { Lifecycle, writePlaceholderStatus, type ItemOutcome } from './lifecycle';

/** The goal-state aggregate status (§8.7). */
export interface GoalStateOutcome { inSvdSeqNo: string; status: 'Success' | 'Failed'; code: number; message: string; finished: Date }

export interface ProcessorOptions {
  fs: HostFs;
  libDir: string;
  log: Logger;
  lifecycle: Lifecycle;
  /** `Extensions.Enabled`. */
  extensionsEnabled: boolean;
  /** The configuration file named in the §11.2 message. */
  confPath: string;
  /** Required features this agent supports (§3.2 gate 3). */
  supportedFeatures: readonly string[];
  /** §3.2 gate 2: whether the artifacts profile says `onHold` (only asked with `EnableOverProvisioning=y`). */
  onHold?: () => Promise<boolean>;
  /** The status word of an item's extension status file (undefined: missing), for dependency waits (§3.4). */
  extensionStatus(item: PlanItem, version: string): Promise<string | undefined>;
  /** Dependency waits: poll period (5 s) and the shared deadline (90 min); tests shorten them. */
  waitPollMs?: number;
  waitDeadlineMs?: number;
  /** Called when the items start and after every item with the result so far (the status timer uploads progress). */
  onProgress?: (sofar: ProcessResult) => void;
  signal?: AbortSignal;
}

export interface ProcessResult {
  handlers: HandlerSpec[];
  outcome?: GoalStateOutcome;
  /** Handler name → the directory version processed (what the report reads). */
  versions: Map<string, string>;
  /** Handlers reported as not allowed (§11.2). */
  notAllowed: Set<string>;
  /** `false` when the run was on hold (status left as it was, §3.2 gate 2). */
  processed: boolean;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> => new Promise((resolve) => {
  if (signal?.aborted) return resolve();
  const t = setTimeout(done, ms);
  function done(): void { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
  signal?.addEventListener('abort', done, { once: true });
});

/** Processes an extensions goal state. Never throws: an unexpected error becomes the aggregate `Failed`, −1. */
export async function processGoalState(ec: ExtensionsConfigDoc, incarnation: string, o: ProcessorOptions): Promise<ProcessResult> {
  const { handlers, skipped } = parseHandlers(ec);
  const result: ProcessResult = { handlers, versions: new Map(), notAllowed: new Set(), processed: true };
  const done = (status: 'Success' | 'Failed', code: number, message: string): ProcessResult => {
    result.outcome = { inSvdSeqNo: incarnation, status, code, message, finished: new Date() };
    return result;
  };
  for (const s of skipped) o.log.warn(`Extension plugin without a name or version skipped: ${s}`);
  try {
    if (o.onHold) {
      let held = false;
      try { held = await o.onHold(); } catch (e) { o.log.warn(`Artifacts profile not readable (${errorText(e)}): not on hold`); }
      if (held) {
        o.log.info(`Goal state incarnation_${incarnation} is on hold: extensions not processed`);
        result.processed = false;
        return result;
      }
    }
    const missing = unsupportedFeatures(ec, o.supportedFeatures);
    if (missing.length) {
      o.log.error(`Failing goal state incarnation_${incarnation}: unsupported features ${missing.join(', ')}`);
      return done('Failed', ExtErrorCode.GoalStateUnsupportedFeature, `Failing GS incarnation_${incarnation} as Unsupported features found: ${missing.join(', ')}`);
    }
    for (const h of handlers) result.versions.set(h.name, installedVersion(o.fs, o.libDir, h.name) ?? h.version);
    const items = orderItems(handlers);
    const deadline = Date.now() + (o.waitDeadlineMs ?? 90 * 60_000);
    let depError: string | undefined;
    o.onProgress?.(result);
    for (let i = 0; i < items.length; i++) {
      if (o.signal?.aborted) break;
      const item = items[i];
      const h = item.handler;
      if (!o.extensionsEnabled) { notAllowed(item, o, result); continue; }
      if (h.invalidReason) {
        invalid(item, o, result);
        continue;
      }
      if (depError) { dependencyFailure(item, depError, o, result); continue; }
      const out: ItemOutcome = await o.lifecycle.processItem(item);
      if (out.version) result.versions.set(h.name, out.version);
      o.onProgress?.(result);
      if (!waitsAfter(items, i)) continue;
      if (!out.ok) { depError = `Skipping processing of extensions since execution of dependent extension ${itemName(item)} failed`; continue; }
      if (!item.settings || h.state !== 'enabled') continue;
      depError = await waitForTerminal(item, out.version ?? h.version, deadline, o);
    }
    if (o.signal?.aborted) return done('Failed', ExtErrorCode.PluginUnknownFailure, 'Unexpected error when processing goal state:the agent is stopping');
    cleanup(handlers, o);
    return done('Success', 0, 'GoalState executed successfully');
  } catch (e) {
    o.log.error(`Unexpected error when processing goal state incarnation_${incarnation}: ${errorText(e)}`);
    return done('Failed', ExtErrorCode.PluginUnknownFailure, `Unexpected error when processing goal state:${errorText(e)}`);
  }
}

/** §3.4: polls the item's status every 5 s until terminal or the deadline. Returns the dependency error, if any. */
async function waitForTerminal(item: PlanItem, version: string, deadline: number, o: ProcessorOptions): Promise<string | undefined> {
  const name = itemName(item);
  let last: string | undefined;
  for (;;) {
    last = await o.extensionStatus(item, version);
    if (last === 'success') return undefined;
    if (last === 'error') return `Dependent Extension ${name} did not succeed. Status was error`;
    if (Date.now() >= deadline || o.signal?.aborted) {
      return `Dependent Extension ${name} did not reach a terminal state within the allowed timeout. Last status was ${last ?? 'warning'}`;
    }
    o.log.verbose(`Waiting for ${name} to reach a terminal state (now ${last ?? 'no status'})`);
    await sleep(Math.min(o.waitPollMs ?? 5000, Math.max(0, deadline - Date.now())), o.signal);
  }
}

/** Writes a NotReady handler status on disk (directory present) or in the lifecycle's memo. */
function setNotReady(h: HandlerSpec, version: string, code: number, message: string, o: ProcessorOptions, keepExisting = false): HandlerDir {
  const d = new HandlerDir(o.fs, o.libDir, h.name, version);
  if (d.exists()) {
    if (!(keepExisting && d.status())) d.setStatus('NotReady', code, message, h.supportsMultiConfig);
  } else if (!(keepExisting && o.lifecycle.memo.has(h.name))) {
    o.lifecycle.memo.set(h.name, { version, status: 'NotReady', code, message });
  }
  return d;
}

function invalid(item: PlanItem, o: ProcessorOptions, r: ProcessResult): void {
  const h = item.handler;
  const msg = `Ran into config errors: [ExtensionsGoalStateError] [ExtensionsConfigError] ${h.invalidReason}. \nPlease retry again as another operation with updated settings`;
  o.log.error(`[${h.name}] invalid in the goal state: ${h.invalidReason}`);
  setNotReady(h, r.versions.get(h.name) ?? h.version, ExtErrorCode.PluginUnknownFailure, msg, o);
}

function dependencyFailure(item: PlanItem, message: string, o: ProcessorOptions, r: ProcessResult): void {
  const h = item.handler;
  o.log.warn(`[${itemName(item)}] not processed: ${message}`);
  const d = setNotReady(h, r.versions.get(h.name) ?? h.version, ExtErrorCode.PluginUnknownFailure, message, o, h.supportsMultiConfig);
  if (h.supportsMultiConfig && item.settings && d.exists()) {
    writePlaceholderStatus(o.fs, d, `${item.settings.name}.${item.settings.seqNo}.status`, itemName(item), 'ExtensionProcessing', 'error', -1, message, false);
  }
}

/** §11.2: every item of a goal state is reported as not allowed to run. */
function notAllowed(item: PlanItem, o: ProcessorOptions, r: ProcessResult): void {
  const h = item.handler;
  const code = h.state === 'enabled' ? ExtErrorCode.PluginEnableProcessingFailed : ExtErrorCode.PluginDisableProcessingFailed;
  const msg = `Extension '${itemName(item)}' will not be processed since extension processing is disabled. To enable extension processing, set Extensions.Enabled=y in '${o.confPath}'`;
  r.notAllowed.add(h.name);
  const d = setNotReady(h, r.versions.get(h.name) ?? h.version, code, msg, o);
  if (h.state === 'enabled' && item.settings && d.exists()) {
    const file = h.supportsMultiConfig ? `${item.settings.name}.${item.settings.seqNo}.status` : `${item.settings.seqNo}.status`;
    try { writePlaceholderStatus(o.fs, d, file, itemName(item), 'Enable', 'error', code, msg, true); } catch (e) { o.log.warn(`${itemName(item)}: ${errorText(e)}`); }
  }
}

/** §3.8 (Ours): handler directories whose handler left the goal state, their zips, orphan zips, `*.part` files. */
function cleanup(handlers: HandlerSpec[], o: ProcessorOptions): void {
  const { dirs, files } = cleanupTargets(o.fs, o.libDir, handlers);
  for (const d of dirs) {
    o.log.warn(`Handler ${d.name}-${d.version} is no longer in the goal state: removing ${d.dir} without running any command`);
    try { o.lifecycle.removeHandler(new HandlerDir(o.fs, o.libDir, d.name, d.version)); } catch (e) { o.log.warn(`Cannot remove ${d.dir}: ${errorText(e)}`); }
  }
  for (const f of files) {
    try { o.fs.remove(f); o.log.info(`Removed ${f}`); } catch (e) { o.log.warn(`Cannot remove ${f}: ${errorText(e)}`); }
  }
  const keep = new Set(handlers.map((h) => h.name));
  for (const name of [...o.lifecycle.memo.keys()]) if (!keep.has(name)) o.lifecycle.memo.delete(name);
}
