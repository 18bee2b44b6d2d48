/**
 * The daemon (provisioning-and-os.md §3.1, §10.9, §10.11): single instance through the PID file (taken atomically;
 * another daemon → exit 0; a one-shot -provision/-deprovision holding it → wait until it ends), Lib.Dir, the endpoint
 * cache forgotten, the provisioning handler (with the fabric link talking in the background so that an absent fabric
 * never blocks provisioning), then the goal-state loop in this same process until SIGTERM. SIGTERM is honoured at
 * every point: during provisioning (which stops at its next step, or is left after a short grace — every step is
 * idempotent and resumes at the next start) and during the restart sleep.
 */
import * as fs from 'node:fs';
import type { AgentContext } from '../context';
import { errorText } from '../core/log';
import { AGENT_VERSION } from '../version';
import { acquirePidFile, removePidFile, waitForPidFileRelease } from './pidfile';
import { markerStep, runProvisioning, type HandlerResult } from './provisioning-handler';
import { runGoalStateLoop } from './goal-state-loop';
import { startFabricLink, type FabricLinkHandle, type FabricLinkOptions } from '../fabric/link';
import { ENDPOINT_FILE, PROTOCOL_FILE } from '../fabric/endpoint';
import { startDuties, type DutiesHandle } from './duties';
import { loadDuties } from './duty-list';

export interface DaemonOptions {
  /** Called once provisioning has completed (the CLI drops the /dev/console appender). */
  onProvisioned?: () => void;
  /** Fabric link options (tests only). */
  link?: FabricLinkOptions;
  /** Stops the daemon (SIGTERM in production). */
  signal: AbortSignal;
  /** Sleep after an unexpected error before restarting steps 6–13 (default 15 s). */
  restartDelayMs?: number;
  /** After SIGTERM, how long provisioning may take to reach its next step before the daemon leaves it (default 5 s). */
  stopGraceMs?: number;
  /** Starts the fabric link (tests only; default startFabricLink). */
  startLink?: (ctx: AgentContext, opts?: FabricLinkOptions) => FabricLinkHandle;
  /** How often to look whether a one-shot command still holds the PID file (default 1 s). */
  pidPollMs?: number;
  /** First wait before provisioning is tried again after a storage failure (default 15 s; doubles up to 5 min). */
  provisionRetryMs?: number;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) { resolve(); return; }
    const done = () => { clearTimeout(t); signal.removeEventListener('abort', done); resolve(); };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs the daemon until `signal` aborts. Returns the exit code: 0 after SIGTERM or when another daemon owns the PID
 * file; 1 for a fatal start-up error (Lib.Dir or PID file not writable), so that init systems restart it.
 */
export async function runDaemonLoop(ctx: AgentContext, opts: DaemonOptions): Promise<number> {
  const { log, os, conf, libDir } = ctx;
  log.info(`Azure Linux Agent (waagent-ts) version ${AGENT_VERSION} starting on ${os.distro.fullName || os.distro.id} ${os.distro.version}, Node ${process.versions.node} (process up ${Math.round(process.uptime() * 1000)} ms)`);
  const pidFile = conf.s('Pid.File');
  try {
    for (;;) {
      const got = await acquirePidFile(os.fs, pidFile);
      if (got.owned) break;
      if (got.holder.role === 'daemon') {
        log.info(`Daemon is already running: ${got.holder.pid}`);
        return 0;
      }
      log.info(`Another agent command (pid ${got.holder.pid}) holds ${pidFile}: waiting for it to finish`);
      if (!(await waitForPidFileRelease(os.fs, pidFile, { signal: opts.signal, pollMs: opts.pidPollMs ?? 1000 }))) {
        log.info('Daemon stopped');
        return 0;
      }
    }
  } catch (e) {
    log.error(`Fatal start-up error: ${errorText(e)}`);
    return 1;
  }
  try {
    os.fs.mkdir(libDir, 0o700);
    process.chdir(os.fs.p(libDir));
  } catch (e) {
    log.error(`Fatal start-up error: ${errorText(e)}`);
    try { removePidFile(os.fs, pidFile); } catch { /* best effort */ }
    return 1;
  }
  if (conf.bool('AutoUpdate.Enabled')) log.verbose('AutoUpdate.Enabled is ignored: this agent never updates itself (D4)');
  // §3.1 step 6: SCVMM media hand the VM to their own installer (DetectScvmmEnv=y only; off by default).
  if (conf.bool('DetectScvmmEnv')) {
    const { runScvmmStep } = await import('./scvmm');
    if ((await runScvmmStep(ctx, opts.signal)) === 'exit') {
      try { removePidFile(os.fs, pidFile); } catch { /* best effort */ }
      log.info('Daemon stopped');
      return 0;
    }
  }

  let link: FabricLinkHandle | undefined;
  let duties: { abort: AbortController; handle: DutiesHandle } | undefined;
  const stopDuties = async (): Promise<void> => {
    if (!duties) return;
    duties.abort.abort();
    await duties.handle.stopped;
    duties = undefined;
  };
  try {
    while (!opts.signal.aborted) {
      try {
        const started = await startUp(ctx, opts);
        link = started.link;
        duties = started.duties;
        if (opts.signal.aborted) break;
        if (os.fs.exists(`${libDir}/disable_agent`)) {
          log.info(`The agent is disabled (${libDir}/disable_agent exists; remove it and restart the service to enable it): idling`);
          await new Promise<void>((r) => opts.signal.addEventListener('abort', () => r(), { once: true }));
          break;
        }
        await runGoalStateLoop(ctx, link, opts.signal);
        break;
      } catch (e) {
        log.error(`Daemon ended with exception -- Sleep 15 seconds and restart daemon: ${errorText(e)}`);
        await stopDuties();
        link?.close(); link = undefined;
        await sleepUnlessAborted(opts.restartDelayMs ?? 15_000, opts.signal);
      }
    }
  } finally {
    await stopDuties();
    link?.close();
    try { removePidFile(os.fs, pidFile); } catch { /* best effort */ }
  }
  log.info('Daemon stopped');
  return 0;
}

/** Steps 7–9 of §3.1: forget the endpoint, check the marker, start the link and the duties (beside provisioning,
 *  D18), provision. Returns the live link and the running duties. */
async function startUp(ctx: AgentContext, opts: DaemonOptions): Promise<{ link: FabricLinkHandle; duties: { abort: AbortController; handle: DutiesHandle } }> {
  const { os, libDir, log } = ctx;
  for (const f of [PROTOCOL_FILE, ENDPOINT_FILE]) {
    try { fs.rmSync(os.fs.p(`${libDir}/${f}`), { force: true }); } catch (e) { log.warn(`Cannot remove ${libDir}/${f}: ${errorText(e)}`); }
  }
  const state = await markerStep(ctx);
  const link = (opts.startLink ?? startFabricLink)(ctx, opts.link);
  let provisionedDone!: () => void;
  const provisioned = new Promise<void>((r) => { provisionedDone = r; });
  const abort = new AbortController();
  const stopOnSignal = (): void => abort.abort();
  opts.signal.addEventListener('abort', stopOnSignal, { once: true });
  const handle = startDuties(await loadDuties(ctx), { ctx, link, signal: abort.signal, provisioned });
  void handle.stopped.then(() => opts.signal.removeEventListener('abort', stopOnSignal));
  const duties = { abort, handle };
  if (state === 'provision') {
    try {
      let r = await untilStopped(runProvisioning(ctx, link, undefined, opts.signal), opts.signal, opts.stopGraceMs ?? 5000);
      provisionedDone();
      r = await retryProvisioning(ctx, r, () => untilStopped(runProvisioning(ctx, link, undefined, opts.signal), opts.signal, opts.stopGraceMs ?? 5000),
        opts.signal, opts.provisionRetryMs ?? 15_000);
      if (r === 'stopped') log.info('Provisioning interrupted by the stop request: it resumes at the next start');
      else if (r.kind === 'provisioned' && r.outcome.success) opts.onProvisioned?.();
    } catch (e) {
      abort.abort(); // the restart starts them afresh
      await handle.stopped;
      link.close();
      throw e;
    } finally {
      provisionedDone();
    }
  } else {
    // D21: a provisioned VM reports Ready at every daemon start (a crash between the marker and an accepted Ready
    // is covered; the fabric treats a repeated Ready as harmless).
    link.reportHealth({ state: 'Ready' });
    opts.onProvisioned?.();
    provisionedDone();
  }
  return { link, duties };
}

/**
 * After a provisioning failure on a full or read-only file system (`outcome.retryable`), runs `attempt` again after
 * `firstDelayMs`, doubling up to 5 minutes, until it succeeds, fails otherwise, or `signal` aborts (then 'stopped', at
 * once). Such a failure clears without a new goal state (space freed, a file system remounted read-write), so the
 * daemon need not wait for the next boot (§3.18 FIX); other failures are left to the next start, as REF does.
 */
export async function retryProvisioning(ctx: AgentContext, first: HandlerResult | 'stopped', attempt: () => Promise<HandlerResult | 'stopped'>,
  signal: AbortSignal, firstDelayMs: number): Promise<HandlerResult | 'stopped'> {
  let r = first;
  for (let delay = firstDelayMs; r !== 'stopped' && r.kind === 'provisioned' && !r.outcome.success && r.outcome.retryable; delay = Math.min(delay * 2, 300_000)) {
    ctx.log.info(`Provisioning failed on storage that may recover: trying again in ${Math.round(delay / 1000)} s`);
    await sleepUnlessAborted(delay, signal);
    if (signal.aborted) return 'stopped';
    r = await attempt();
  }
  return r;
}

/** `work`'s result, or 'stopped' when `signal` aborts and `work` has not ended within `graceMs` after it. */
async function untilStopped<T>(work: Promise<T>, signal: AbortSignal, graceMs: number): Promise<T | 'stopped'> {
  let onAbort: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const stopped = new Promise<'stopped'>((resolve) => {
    onAbort = () => { timer = setTimeout(() => resolve('stopped'), graceMs); };
    if (signal.aborted) onAbort(); else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, stopped]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
