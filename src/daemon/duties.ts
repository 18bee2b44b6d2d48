/**
 * The daemon's duties after (and beside) provisioning: resource disk, firewall, host-name monitor, route repair,
 * kernel checks, LB probe responder, JIT users, extensions, ... (provisioning-and-os.md §3.1 step 7 and §5–§8,
 * DECISIONS.md D18). Each concern is one `Duty` in a room of its own; this file only runs them:
 * - `start` runs once when the daemon starts, beside provisioning (never on the critical path to Ready);
 * - `tick` runs every `periodMs` after that (its own timer, never two ticks of one duty at once);
 * - `onGoalState` is called for every goal state with a new incarnation (and the first one when the link connects).
 * A duty never throws to the runner: an error is logged (the first 3 times, then every 6 h) and the duty goes on.
 */
import type { AgentContext } from '../context';
import type { FabricLinkHandle } from '../fabric/link';
import type { GoalState } from '../fabric/wire';
import { errorText } from '../core/log';
import { pause } from '../core/retry';

export interface DutyEnv {
  ctx: AgentContext;
  /** The fabric link (connected or not yet). */
  link: FabricLinkHandle;
  /** Aborts when the daemon stops. */
  signal: AbortSignal;
  /** Resolves once this start's provisioning step completed (provisioned now, before, or by cloud-init); never
   *  rejects. Duties that must not race provisioning (host-name monitor, ...) await it. */
  provisioned: Promise<void>;
}

export interface Duty {
  /** Short name for the log, e.g. "resource disk". */
  readonly name: string;
  /** Whether the configuration switches it on (checked once at start). */
  enabled(ctx: AgentContext): boolean;
  /** Runs once at daemon start, beside provisioning. */
  start?(env: DutyEnv): Promise<void>;
  /** Period of `tick` in ms (undefined: no tick). */
  periodMs?(ctx: AgentContext): number | undefined;
  tick?(env: DutyEnv): Promise<void>;
  /** A goal state with a new incarnation. Must not block: start async work and return. */
  onGoalState?(gs: GoalState, env: DutyEnv): void;
  /** The daemon stops: release listeners, timers, child watchers. */
  stop?(): void | Promise<void>;
}

const SIX_HOURS = 6 * 3600 * 1000;

/** Logs a duty's failure: the first 3 in a row, then at most every 6 h (fabric-protocol.md's rule for polls). */
class FailureLog {
  private count = 0;
  private lastAt = 0;
  constructor(private readonly ctx: AgentContext, private readonly what: string) {}
  fail(e: unknown): void {
    this.count++;
    const now = Date.now();
    if (this.count <= 3 || now - this.lastAt >= SIX_HOURS) {
      this.lastAt = now;
      this.ctx.log.warn(`${this.what} failed (${this.count} in a row): ${errorText(e)}`);
    }
  }
  ok(): void { this.count = 0; }
}


/** A handle on the running duties: `stopped` resolves when every duty's start/tick loop ended after the abort. */
export interface DutiesHandle { stopped: Promise<void>; names: string[] }

/**
 * Starts every enabled duty and returns at once. Each duty runs `start`, then `tick` every `periodMs`, until
 * `signal` aborts; `onGoalState` is wired to the link. Nothing here throws.
 */
export function startDuties(duties: readonly Duty[], env: DutyEnv): DutiesHandle {
  const { ctx, link, signal } = env;
  const active = duties.filter((d) => {
    try { return d.enabled(ctx); } catch (e) { ctx.log.warn(`${d.name}: cannot read its switch: ${errorText(e)}`); return false; }
  });
  const loops = active.map(async (d) => {
    const failures = new FailureLog(ctx, d.name);
    let unsubscribe: (() => void) | undefined;
    if (d.onGoalState) {
      const gsFail = new FailureLog(ctx, `${d.name} (goal state)`);
      const handler = (gs: GoalState): void => { try { d.onGoalState!(gs, env); } catch (e) { gsFail.fail(e); } };
      unsubscribe = link.onGoalState(handler);
      if (link.goalState) handler(link.goalState);
    }
    try {
      if (d.start) {
        try { await d.start(env); failures.ok(); } catch (e) { failures.fail(e); }
      }
      const period = d.tick ? d.periodMs?.(ctx) : undefined;
      if (period !== undefined && period > 0) {
        for (;;) {
          await pause(period, signal);
          if (signal.aborted) break;
          try { await d.tick!(env); failures.ok(); } catch (e) { failures.fail(e); }
        }
      } else {
        await new Promise<void>((r) => { if (signal.aborted) r(); else signal.addEventListener('abort', () => r(), { once: true }); });
      }
    } finally {
      unsubscribe?.();
      try { await d.stop?.(); } catch (e) { ctx.log.warn(`${d.name}: stop failed: ${errorText(e)}`); }
    }
  });
  return { stopped: Promise.all(loops).then(() => undefined), names: active.map((d) => d.name) };
}
