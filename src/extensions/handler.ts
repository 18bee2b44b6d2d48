/**
 * Extension handling driven from the goal-state loop (extensions.md §3.2, §3.7, §5.10, §8.7, §10.3, §11.2): every
 * poll hands the goal state held to `onPoll`, which starts processing in the background when its incarnation was not
 * processed yet in this process (so the first goal state after every start is processed, §3.2) and returns the
 * status inputs for that poll's upload. One goal state at a time: a newer one arriving mid-way waits for the running
 * one and only the newest waiting one is processed (§3.7). Progress is uploaded after every item and when a run ends,
 * and the poll keeps uploading every period meanwhile (the status timer), so long operations show. Commands run as
 * children of this process (no second resident agent).
 */
import type { AgentContext } from '../context';
import type { GoalState } from '../fabric/wire';
import type { StatusInput } from '../fabric/status';
import type { FabricLinkHandle } from '../fabric/link';
import { errorText } from '../core/log';
import { Lifecycle, type ExtDeps, type Operation } from './lifecycle';
import { processGoalState, type GoalStateOutcome, type ProcessResult } from './processor';
import { buildHandlerEntries, type ReportDeps } from './report';
import { handlerDirsOnDisk, type HandlerSpec, type PlanItem } from './plan';
import { HandlerDir } from './handler-state';
import { statusFileName } from './report';
import { pruneLegacyEvents, removeEtpFolders } from './telemetry';

/** Required features this agent implements (advertised in the status blob, §9.1). */
export const SUPPORTED_FEATURES = ['MultipleExtensionsPerHandler'] as const;

export type HandlerDeps = ExtDeps & ReportDeps;

export interface ExtensionsHandlerOptions {
  /** Builds the download/file/command dependencies for the wire client of the link. */
  deps(link: FabricLinkHandle): HandlerDeps;
  /** Rewrites HandlerEnvironment.json of an existing handler directory (§5.10 step 2). */
  rewriteEnvironment?(handlerDir: string, name: string): void;
  /** Whether the artifacts profile of the goal state says onHold (§3.2 gate 2). */
  onHold?(link: FabricLinkHandle, gs: GoalState): Promise<boolean>;
  timeouts?: Partial<Record<Operation, number>>;
  /** Minimum pause between two progress uploads outside the poll (default 1 s). */
  progressIntervalMs?: number;
}

export class ExtensionsHandler {
  private readonly ctx: AgentContext;
  private lifecycle: Lifecycle | undefined;
  private deps: HandlerDeps | undefined;
  private lastStarted: string | undefined;
  private running: Promise<void> | undefined;
  private waiting: GoalState | undefined;
  private view: ProcessResult | undefined;
  private outcome: GoalStateOutcome | undefined;
  private startedUp = false;
  private pruneTimer: NodeJS.Timeout | undefined;
  private uploading: Promise<unknown> | undefined;
  private uploadAgain = false;
  private lastUploadAt = 0;
  /** True while the goal-state loop's poll (and its own upload) runs. */
  pollActive = false;
  private readonly abort = new AbortController();

  constructor(ctx: AgentContext, private readonly link: FabricLinkHandle, private readonly o: ExtensionsHandlerOptions) {
    this.ctx = ctx;
  }

  /** The goal state of this poll: starts processing when it is new; returns the status inputs to upload. */
  async onPoll(gs: GoalState): Promise<Partial<StatusInput>> {
    try {
      this.startUp();
      const ec = gs.extensionsConfig;
      if (ec && gs.ids.incarnation !== this.lastStarted) {
        if (this.running) this.waiting = gs;
        else this.start(gs);
      }
    } catch (e) {
      this.ctx.log.error(`Extension handling: ${errorText(e)}`);
    }
    return this.statusInput();
  }

  /** True while a goal state is being processed (commands may be running) or waits to be. */
  get busy(): boolean { return this.running !== undefined || this.waiting !== undefined; }

  /** Waits for the running goal state (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
    await this.uploading;
  }

  stop(): void {
    this.abort.abort();
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    if (this.progressTimer) clearTimeout(this.progressTimer);
  }

  /** Once per start (§5.10 step 2, §10.3 items 2–3). */
  private startUp(): void {
    if (this.startedUp) return;
    this.startedUp = true;
    const { os, libDir, conf, log } = this.ctx;
    const logDir = conf.str('Extension.LogDir') ?? '/var/log/azure';
    try {
      const discarded = removeEtpFolders(os.fs, logDir);
      if (discarded) log.info(`Extension telemetry is not supported: ${discarded} extension event file(s) discarded`);
    } catch (e) { log.warn(`Cannot remove extension events folders: ${errorText(e)}`); }
    if (this.o.rewriteEnvironment) {
      for (const d of handlerDirsOnDisk(os.fs, libDir)) {
        if (!os.fs.exists(`${d.dir}/HandlerManifest.json`)) continue;
        try { this.o.rewriteEnvironment(d.dir, d.name); } catch (e) { log.warn(`Cannot rewrite ${d.dir}/HandlerEnvironment.json: ${errorText(e)}`); }
      }
    }
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), 5 * 60_000);
    this.pruneTimer.unref();
  }

  private prune(): void {
    try {
      const n = pruneLegacyEvents(this.ctx.os.fs, this.ctx.libDir);
      if (n) this.ctx.log.info(`Removed ${n} old event file(s) from ${this.ctx.libDir}/events`);
    } catch (e) { this.ctx.log.warn(`Pruning ${this.ctx.libDir}/events: ${errorText(e)}`); }
  }

  private ensureLifecycle(): { lifecycle: Lifecycle; deps: HandlerDeps } {
    if (!this.deps) this.deps = this.o.deps(this.link);
    if (!this.lifecycle) {
      const deps = this.deps;
      this.lifecycle = new Lifecycle({
        fs: this.ctx.os.fs, libDir: this.ctx.libDir, log: this.ctx.log, deps, timeouts: this.o.timeouts,
        wireHost: this.link.wire?.endpoint.host ?? '168.63.129.16',
      });
    }
    return { lifecycle: this.lifecycle, deps: this.deps };
  }

  private start(gs: GoalState): void {
    const ec = gs.extensionsConfig!;
    const incarnation = gs.ids.incarnation;
    this.lastStarted = incarnation;
    const { log, conf } = this.ctx;
    const t0 = Date.now();
    this.running = (async () => {
      await this.waitForCloudInit();
      await this.ensureCertificates(gs);
      const { lifecycle, deps } = this.ensureLifecycle();
      log.info(`Processing extensions of goal state incarnation_${incarnation} (${ec.plugins.length} handler(s))`);
      const r = await processGoalState(ec, incarnation, {
        fs: this.ctx.os.fs, libDir: this.ctx.libDir, log, lifecycle,
        extensionsEnabled: conf.bool('Extensions.Enabled'),
        confPath: conf.source.startsWith('/') ? conf.source : '/etc/waagent.conf',
        supportedFeatures: SUPPORTED_FEATURES,
        onHold: this.o.onHold && conf.bool('EnableOverProvisioning') && ec.artifactsProfileBlob ? () => this.o.onHold!(this.link, gs) : undefined,
        extensionStatus: (item, version) => this.itemStatus(item, version, deps),
        onProgress: (res) => { this.view = res; this.progress(); },
        signal: this.abort.signal,
      });
      if (r.processed) {
        this.view = r;
        this.outcome = r.outcome;
      } else if (this.view) {
        this.view = { ...this.view, handlers: r.handlers };
      } else {
        this.view = r;
      }
      log.info(`Goal state incarnation_${incarnation}: ${r.processed ? `${r.outcome?.status} (${r.outcome?.message})` : 'on hold'} in ${Date.now() - t0} ms`);
    })().catch((e) => {
      log.error(`Extension processing of incarnation_${incarnation} failed: ${errorText(e)}`);
      this.outcome = { inSvdSeqNo: incarnation, status: 'Failed', code: -1, message: `Unexpected error when processing goal state:${errorText(e)}`, finished: new Date() };
    }).finally(() => {
      this.running = undefined;
      this.progress(true);
      const next = this.waiting;
      this.waiting = undefined;
      if (next && next.ids.incarnation !== this.lastStarted && !this.abort.signal.aborted) this.start(next);
    });
  }

  /**
   * §7.2: a thumbprint the settings reference without `<L>/<T>.crt` on disk (e.g. after hibernate/resume) → fetch
   * the certificates again before processing; a failure is logged and processing goes on (the extension then reports
   * its own decryption error).
   */
  private async ensureCertificates(gs: GoalState): Promise<void> {
    const ec = gs.extensionsConfig;
    const wire = this.link.wire;
    if (!ec || !wire || !gs.doc.certificatesUri) return;
    const wanted = new Set<string>();
    for (const ps of ec.pluginSettings) {
      for (const r of [...ps.runtimeSettings, ...ps.extensionRuntimeSettings]) {
        const m = /"protectedSettingsCertThumbprint"\s*:\s*"([0-9A-Fa-f]{40})"/.exec(r.json);
        if (m) wanted.add(m[1].toUpperCase());
      }
    }
    const missing = [...wanted].filter((t) => !this.ctx.os.fs.exists(`${this.ctx.libDir}/${t}.crt`));
    if (!missing.length) return;
    this.ctx.log.info(`Certificates ${missing.join(', ')} referenced by extension settings are missing: fetching the certificates again`);
    try { await wire.fetchCertificates(gs.doc.certificatesUri); } catch (e) { this.ctx.log.warn(`Fetching the certificates again failed: ${errorText(e)}`); }
  }

  /** §3.2 gate 1: once per start, `cloud-init status --wait` bounded by the configured timeout. */
  private cloudInitWaited = false;
  private async waitForCloudInit(): Promise<void> {
    if (this.cloudInitWaited || !this.ctx.conf.bool('Extensions.WaitForCloudInit')) return;
    this.cloudInitWaited = true;
    const s = this.ctx.conf.int('Extensions.WaitForCloudInitTimeout') ?? 3600;
    try {
      const r = await this.ctx.os.run(['cloud-init', 'status', '--wait'], { timeoutMs: s * 1000 });
      this.ctx.log.info(`cloud-init status --wait exited ${r.code}`);
    } catch (e) { this.ctx.log.warn(`Waiting for cloud-init: ${errorText(e)}`); }
  }

  private async itemStatus(item: PlanItem, version: string, deps: ReportDeps): Promise<string | undefined> {
    const h = item.handler;
    const s = item.settings;
    if (!s) return undefined;
    const dir = new HandlerDir(this.ctx.os.fs, this.ctx.libDir, h.name, version);
    const file = statusFileName(s, h.supportsMultiConfig);
    if (!this.ctx.os.fs.exists(`${dir.statusDir}/${file}`)) return undefined;
    try { return (await deps.readExtensionStatus(dir.path, s, h.supportsMultiConfig, h.name, version)).status; } catch { return undefined; }
  }

  /** The status inputs of the next upload (§8.6, §8.7). */
  async statusInput(): Promise<Partial<StatusInput>> {
    const out: Partial<StatusInput> = { supportedFeatures: [...SUPPORTED_FEATURES] };
    if (this.outcome) out.goalState = this.outcome;
    const v = this.view;
    if (v && this.deps && this.lifecycle) {
      try {
        out.handlers = await buildHandlerEntries(this.ctx.os.fs, this.ctx.libDir, {
          handlers: v.handlers as HandlerSpec[], versions: v.versions, memo: this.lifecycle.memo, notAllowed: v.notAllowed, now: new Date(),
        }, this.deps);
      } catch (e) { this.ctx.log.warn(`Building the handler statuses: ${errorText(e)}`); }
    }
    return out;
  }

  /** Uploads the status now (after an item, at the end of a run), serialised and at most once per interval. */
  private finalPending = false;
  private progressTimer: NodeJS.Timeout | undefined;
  private progress(final = false): void {
    if (this.abort.signal.aborted) return;
    if (final) this.finalPending = true;
    if (this.uploading) { this.uploadAgain = true; return; }
    const wait = this.finalPending ? 0 : Math.max(0, this.lastUploadAt + (this.o.progressIntervalMs ?? 1000) - Date.now());
    if (wait > 0) {
      this.progressTimer ??= setTimeout(() => { this.progressTimer = undefined; this.progress(); }, wait);
      return;
    }
    if (this.progressTimer) { clearTimeout(this.progressTimer); this.progressTimer = undefined; }
    this.finalPending = false;
    const go = async (): Promise<void> => {
      // the poll's own upload may carry a status built before this change: upload once it is done
      for (let i = 0; this.pollActive && i < 600 && !this.abort.signal.aborted; i++) await new Promise((r) => setTimeout(r, 50));
      this.lastUploadAt = Date.now();
      await this.link.uploadStatus?.(await this.statusInput());
    };
    this.uploading = go().catch((e) => this.ctx.log.warn(`status upload: ${errorText(e)}`)).finally(() => {
      this.uploading = undefined;
      if (this.uploadAgain) { this.uploadAgain = false; this.progress(); }
    });
  }
}
