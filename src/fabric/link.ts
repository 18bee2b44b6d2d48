/**
 * The `FabricLink` (src/fabric/types.ts): a background conversation with the fabric that never blocks its caller.
 * It discovers and verifies the endpoint (retrying every 10 s while the fabric is unreachable), creates the transport
 * certificate (new at each start, in memory only), fetches the full goal state (writing the certificates), records the
 * endpoint (best-effort), then sends
 * queued health reports with D6's backoff (2 s doubling to 300 s, 50–100 % jitter; a newer report replaces a pending
 * one; 410/InvalidContainerConfiguration → refresh the goal state and rebuild), and the role properties once Ready
 * was accepted (D5). `pollOnce()` is the daemon's periodic goal-state poll and status upload.
 */
import type { AgentContext } from '../context';
import { log, errorText } from '../core/log';
import { realClock, exponentialBackoff, ResourceGoneError, InvalidContainerError, type Clock } from '../core/retry';
import type { FabricLink, GoalStateIds, HealthReport } from './types';
import { discoverEndpoint, saveEndpoint, formatEndpoint, type Endpoint } from './endpoint';
import { WireClient, type GoalState } from './wire';
import { startTransportPair, type TransportPair } from '../crypto/transport';
import { buildStatusJson, uploadStatusBlob, type StatusInput } from './status';
import { describeHealth } from './reports';
import { WarnThrottle } from '../core/log-throttle';

export interface FabricLinkOptions {
  /** Host plugin port. FOR TESTS ONLY; production uses 32526 (D24). */
  hostPluginPort?: number;
  clock?: Clock;
  /** Pause between connection attempts (default 10 s, §1.2 step 7). */
  connectRetryMs?: number;
  /** Consecutive failures of the cached endpoint before discovery is tried in alternation (default 6). */
  cachedEndpointAttempts?: number;
  /** D6 backoff: first sleep and cap (defaults 2 s and 300 s). */
  healthBaseMs?: number;
  healthCapMs?: number;
  /** Budget of each retried request (default 60 s). */
  requestBudgetMs?: number;
  /** Pause between re-requests of a goal state without RoleInstance (default 500 ms). */
  notReadyDelayMs?: number;
  /** Try the raw DHCP probe when route and leases name no wire server (default true; it runs only as root on the
   *  real root, fabric/dhcp.ts). */
  dhcpProbe?: boolean;
}

/** The outcome of one `pollOnce()`. */
export interface PollResult {
  connected: boolean;
  /** A new incarnation was fetched. */
  changed: boolean;
  goalState?: GoalState;
  /** How the status blob went: channel, 'no-blob', 'skipped', or undefined on failure. */
  status?: 'hostplugin' | 'direct' | 'no-blob' | 'skipped';
  error?: string;
}

export interface PollOptions {
  /** The status to upload: a ready JSON text, the inputs to build it, a function giving the inputs from the goal state
   *  just fetched (called after the goal-state update, before the upload), or false to skip the upload. Default: a
   *  status with no handlers built from the host name and distro. */
  status?: string | Partial<StatusInput> | false | ((gs: GoalState) => Partial<StatusInput> | Promise<Partial<StatusInput>>);
}

/** The link plus what the daemon needs on top of the FabricLink contract. */
export interface FabricLinkHandle extends FabricLink {
  /** Refetches the goal state (new incarnation → documents and certificates) and uploads the status blob. Never
   *  throws: failures are logged and returned. Resolves at once with `connected: false` before the link connected. */
  pollOnce(opts?: PollOptions): Promise<PollResult>;
  /** The goal state held, once connected. */
  readonly goalState: GoalState | undefined;
  /** The wire client, once connected. */
  readonly wire: WireClient | undefined;
  /** Called after each goal state fetch that brought a new incarnation (and once when the link connects). */
  onGoalState(listener: (gs: GoalState) => void): () => void;
  /** Uploads a status blob now (outside the poll: progress of long extension operations). Never throws. */
  uploadStatus?(status: Partial<StatusInput>): Promise<PollResult['status'] | undefined>;
}

class Link implements FabricLinkHandle {
  private readonly ctx: AgentContext;
  private readonly o: FabricLinkOptions;
  private readonly clock: Clock;
  private readonly abort = new AbortController();
  private closed = false;
  private client: WireClient | undefined;
  private connectedP: Promise<GoalStateIds>;
  private resolveConnected!: (ids: GoalStateIds) => void;
  private rejectConnected!: (e: Error) => void;
  private listeners = new Set<(gs: GoalState) => void>();

  // health reporter state
  private pending: { report: HealthReport; gen: number } | undefined;
  private queuedGen = 0;
  private acceptedGen = 0;
  private waiters: { gen: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private wake: (() => void) | undefined;
  private readyAccepted = false;
  private roleThumbprint: string | undefined;
  private roleSent = false;
  // the poll's warnings: the first 3 of a streak, then one every 6 h (§5.3; issue 10 item 7)
  private readonly gsWarn: WarnThrottle;
  private readonly statusWarn: WarnThrottle;

  constructor(ctx: AgentContext, opts: FabricLinkOptions) {
    this.ctx = ctx;
    this.o = opts;
    this.clock = opts.clock ?? realClock;
    this.gsWarn = new WarnThrottle(() => this.clock.now());
    this.statusWarn = new WarnThrottle(() => this.clock.now());
    this.connectedP = new Promise((res, rej) => { this.resolveConnected = res; this.rejectConnected = rej; });
    this.connectedP.catch(() => undefined); // never an unhandled rejection
    // deferred: discovery and key generation run after the caller's synchronous work, never inside startFabricLink
    setImmediate(() => { void this.connectLoop(); });
    void this.healthLoop();
  }

  isConnected = false;
  get goalState(): GoalState | undefined { return this.client?.goalState; }
  get wire(): WireClient | undefined { return this.client; }
  connected(): Promise<GoalStateIds> { return this.connectedP; }

  onGoalState(listener: (gs: GoalState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  private emit(gs: GoalState): void {
    for (const l of this.listeners) {
      try { l(gs); } catch (e) { log.error(`goal state listener failed: ${errorText(e)}`); }
    }
  }

  private sleep(ms: number): Promise<void> {
    return this.clock.sleep(ms, this.abort.signal);
  }

  private async connectLoop(): Promise<void> {
    const { os, libDir, conf } = this.ctx;
    let failures = 0; let cachedFailures = 0;
    let transport: TransportPair | undefined;
    while (!this.closed) {
      const useCache = cachedFailures < (this.o.cachedEndpointAttempts ?? 6) || failures % 2 === 0;
      let endpoint: Endpoint | undefined; let source = 'discovery';
      try {
        // inside the try: whatever discovery meets on disk must not end this loop (issue 10 item 6)
        const method = conf.str('Protocol.EndpointDiscovery') ?? 'dhcp';
        ({ endpoint, source } = discoverEndpoint(os.fs, libDir, { method, skipCache: !useCache }));
        if (source === 'default' && method === 'dhcp' && this.o.dhcpProbe !== false) {
          const dhcp = await import('./dhcp');
          if (dhcp.probeAvailable(os)) {
            const found = await dhcp.probeOnce(os);
            if (this.closed) return;
            if (found?.endpoint) { endpoint = { host: found.endpoint }; source = 'dhcp'; }
          }
        }
        if (!transport) {
          const t0 = Date.now();
          transport = await startTransportPair(os.fs, libDir);
          log.verbose(`Transport certificate ready in ${Date.now() - t0} ms`);
        }
        const client = this.newClient(endpoint, transport);
        const t1 = Date.now();
        await client.checkVersions();
        log.verbose(`Wire server ${formatEndpoint(endpoint)} answered versions in ${Date.now() - t1} ms`);
        const { goalState } = await client.updateGoalState(true);
        // best-effort: a full or read-only disk must not keep the agent from reporting Ready (issue 10 item 7)
        try { saveEndpoint(os.fs, libDir, endpoint); } catch (e) { log.warn(`Cannot record the wire server endpoint: ${errorText(e)}`); }
        this.client = client;
        this.isConnected = true;
        log.info(`Wire server ${formatEndpoint(endpoint)} (${source}) ready; goal state incarnation ${goalState.ids.incarnation}`);
        this.resolveConnected(goalState.ids);
        this.emit(goalState);
        this.wake?.();
        return;
      } catch (e) {
        if (this.closed) return;
        failures++;
        if (source === 'cache') cachedFailures++;
        if (failures <= 3 || failures % 30 === 0) {
          log.warn(`Wire server ${endpoint ? formatEndpoint(endpoint) : '(none)'} (${source}) not usable (attempt ${failures}): ${errorText(e)}; retrying`);
        }
      }
      try { await this.sleep(this.o.connectRetryMs ?? 10_000); } catch { return; }
    }
  }

  private newClient(endpoint: Endpoint, transport: TransportPair): WireClient {
    return new WireClient({
      endpoint, hostFs: this.ctx.os.fs, libDir: this.ctx.libDir, transport,
      hostPluginPort: this.o.hostPluginPort,
      proxy: { host: this.ctx.conf.str('HttpProxy.Host'), port: this.ctx.conf.int('HttpProxy.Port') },
      clock: this.clock, signal: this.abort.signal, budgetMs: this.o.requestBudgetMs, notReadyDelayMs: this.o.notReadyDelayMs,
    });
  }

  reportHealth(report: HealthReport): void {
    if (this.closed) return;
    if (this.pending) log.verbose(`Health report ${describeHealth(this.pending.report)} replaced by ${describeHealth(report)} before it was sent`);
    this.pending = { report, gen: ++this.queuedGen };
    this.wake?.();
  }

  healthAccepted(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('fabric link closed'));
    if (this.acceptedGen >= this.queuedGen) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ gen: this.queuedGen, resolve, reject }));
  }

  reportRoleProperties(thumbprint: string): void {
    if (this.closed || this.roleSent) return;
    this.roleThumbprint = thumbprint;
    this.wake?.();
  }

  /** Waits until woken (new report, connection) or `ms` elapsed; rejects when the link closes. */
  private async waitWake(ms?: number): Promise<void> {
    let timer: Promise<void> | undefined;
    const woken = new Promise<void>((resolve) => { this.wake = resolve; });
    if (ms !== undefined) timer = this.sleep(ms);
    let onAbort: (() => void) | undefined;
    const closedP = new Promise<void>((_r, reject) => {
      onAbort = (): void => reject(new Error('closed'));
      if (this.abort.signal.aborted) onAbort();
      else this.abort.signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race(timer ? [woken, timer, closedP] : [woken, closedP]);
    } finally {
      this.wake = undefined;
      if (onAbort) this.abort.signal.removeEventListener('abort', onAbort);
      timer?.catch(() => undefined);
      closedP.catch(() => undefined);
    }
  }

  private async healthLoop(): Promise<void> {
    let attempt = 0;
    try {
      for (;;) {
        if (this.closed) return;
        const client = this.client;
        const work = this.pending ?? (this.readyAccepted && this.roleThumbprint && !this.roleSent ? 'role' : undefined);
        if (!client || !work) { await this.waitWake(); continue; }
        if (work === 'role') {
          const tp = this.roleThumbprint as string;
          this.roleSent = true;
          try {
            await client.postRoleProperties(tp);
            log.info('Role properties (SSH host key thumbprint) accepted');
          } catch (e) {
            if ((e as Error).name === 'AbortError') return;
            log.warn(`Role properties report failed (not retried further): ${errorText(e)}`);
          }
          continue;
        }
        const { report, gen } = work;
        try {
          await client.postHealth(report);
          attempt = 0;
          log.info(`Health report ${describeHealth(report)} accepted (incarnation ${client.goalState?.ids.incarnation})`);
          if (this.pending?.gen === gen) this.pending = undefined;
          this.acceptedGen = Math.max(this.acceptedGen, gen);
          if (report.state === 'Ready') this.readyAccepted = true;
          this.waiters = this.waiters.filter((w) => { if (w.gen <= gen) { w.resolve(); return false; } return true; });
        } catch (e) {
          if ((e as Error).name === 'AbortError' || this.closed) return;
          attempt++;
          if (e instanceof ResourceGoneError || e instanceof InvalidContainerError) {
            log.info(`Health report: ${e.message}; refreshing the goal state before retrying`);
            try { await client.updateGoalState(); } catch (u) { log.warn(`Goal state refresh failed: ${errorText(u)}`); }
          }
          const delay = exponentialBackoff(attempt, this.clock.random, this.o.healthBaseMs ?? 2000, this.o.healthCapMs ?? 300_000);
          if (attempt <= 3 || attempt % 10 === 0) log.warn(`Health report ${describeHealth(report)} failed (attempt ${attempt}): ${errorText(e)}; retrying in ${delay} ms`);
          const before = this.queuedGen;
          await this.waitWake(delay);
          if (this.queuedGen !== before) attempt = 0; // a newer report: start its backoff afresh
        }
      }
    } catch {
      // closed while waiting
    }
  }

  async pollOnce(opts: PollOptions = {}): Promise<PollResult> {
    const client = this.client;
    if (!client || this.closed) return { connected: false, changed: false };
    const result: PollResult = { connected: true, changed: false };
    try {
      const r = await client.updateGoalState();
      result.changed = r.changed;
      result.goalState = r.goalState;
      const streak = this.gsWarn.success();
      if (streak > 3) log.info(`Goal state updates work again after ${streak} failures`);
      if (r.changed) this.emit(r.goalState);
    } catch (e) {
      result.error = `goal state: ${errorText(e)}`;
      const msg = `Goal state update failed, keeping incarnation ${client.goalState?.ids.incarnation}: ${errorText(e)}`;
      const warn = this.gsWarn.failure(msg);
      if (warn) log.warn(warn); else log.verbose(msg);
      result.goalState = client.goalState;
    }
    if (opts.status === false) { result.status = 'skipped'; return result; }
    try {
      const st = typeof opts.status === 'function' && client.goalState ? await opts.status(client.goalState) : opts.status;
      const json = typeof st === 'string' ? st : await this.defaultStatus(typeof st === 'object' ? st : {});
      result.status = await uploadStatusBlob(client, json);
      const streak = this.statusWarn.success();
      if (streak > 3) log.info(`Status upload works again after ${streak} failures`);
    } catch (e) {
      const msg = `status upload: ${errorText(e)}`;
      result.error = result.error ? `${result.error}; ${msg}` : msg;
      const warn = this.statusWarn.failure(msg);
      if (warn) log.warn(warn); else log.verbose(msg);
    }
    return result;
  }

  async uploadStatus(status: Partial<StatusInput>): Promise<PollResult['status'] | undefined> {
    const client = this.client;
    if (!client || this.closed) return undefined;
    try {
      return await uploadStatusBlob(client, await this.defaultStatus(status));
    } catch (e) {
      log.warn(`status upload: ${errorText(e)}`);
      return undefined;
    }
  }

  private async defaultStatus(partial: Partial<StatusInput>): Promise<string> {
    const os = this.ctx.os;
    return buildStatusJson({
      now: new Date(),
      computerName: await os.getHostname().catch(() => ''),
      osName: os.distro.id,
      osVersion: os.distro.version,
      ...partial,
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.rejectConnected(new Error('fabric link closed'));
    for (const w of this.waiters) w.reject(new Error('fabric link closed'));
    this.waiters = [];
  }
}

/**
 * Starts the fabric link in the background and returns at once. Discovery and connection retry until the fabric
 * answers or `close()` is called; nothing here throws to the caller.
 */
export function startFabricLink(ctx: AgentContext, opts: FabricLinkOptions = {}): FabricLinkHandle {
  return new Link(ctx, opts);
}
