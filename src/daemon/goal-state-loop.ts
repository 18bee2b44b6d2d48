/**
 * The steady state (fabric-protocol.md §6.2): every `Extensions.GoalStatePeriod` seconds (300 s with extensions
 * disabled) refetch the goal state (a new incarnation refetches its documents and certificates) and upload the status
 * blob. Runs in the daemon's own process (one process keeps the memory target; `-run-exthandlers` runs the same loop
 * on its own). Extension handling (src/extensions/handler.ts, loaded lazily) gets the goal state of every poll, starts
 * processing a new incarnation in the background and gives the status that poll uploads.
 */
import type { AgentContext } from '../context';
import type { FabricLinkHandle } from '../fabric/link';
import { errorText } from '../core/log';
import { pause } from '../core/retry';
import { QuietTracker, settleHeap } from '../core/heap-settle';
import type { ExtensionsHandler } from '../extensions/handler';


/** The poll period in ms from the configuration. */
export function pollPeriodMs(ctx: AgentContext): number {
  if (!ctx.conf.bool('Extensions.Enabled')) return 300_000;
  const s = ctx.conf.int('Extensions.GoalStatePeriod') ?? 6;
  return Math.max(1, s) * 1000;
}

/**
 * Polls until `signal` aborts. Waits for the link to connect first (without polling a fabric that is not there).
 * Never throws; errors of a poll are logged by the link and the loop goes on.
 */
export async function runGoalStateLoop(ctx: AgentContext, link: FabricLinkHandle, signal: AbortSignal): Promise<void> {
  const period = pollPeriodMs(ctx);
  if (!ctx.conf.bool('Extensions.Enabled')) ctx.log.info('Extensions.Enabled=n: extensions are not processed; polling the goal state every 300 s');
  await Promise.race([link.connected().catch(() => undefined), new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }))]);
  let failures = 0;
  const quiet = new QuietTracker();
  let ext: ExtensionsHandler | undefined;
  try {
    ext = (await import('../extensions/deps')).createExtensionsHandler(ctx, link);
  } catch (e) {
    ctx.log.error(`Extension handling not available: ${errorText(e)}`);
  }
  signal.addEventListener('abort', () => ext?.stop(), { once: true });
  while (!signal.aborted) {
    try {
      const h = ext;
      if (h) h.pollActive = true;
      const r = await link.pollOnce(h ? { status: (gs) => h.onPoll(gs) } : {});
      if (ext) ext.pollActive = false;
      if (r.error) failures++; else failures = 0;
      if (r.changed && r.goalState) ctx.log.info(`New goal state, incarnation ${r.goalState.ids.incarnation}`);
      if (quiet.afterPoll(r.changed || !!ext?.busy)) {
        const t0 = process.hrtime.bigint();
        const s = settleHeap();
        if (s) ctx.log.verbose(`Quiet: heap ${(s.before / 1048576).toFixed(1)} → ${(s.after / 1048576).toFixed(1)} MiB in ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} ms`);
      }
    } catch (e) {
      if (ext) ext.pollActive = false;
      failures++;
      if (failures <= 3) ctx.log.warn(`Goal state poll failed: ${errorText(e)}`);
    }
    await pause(period, signal);
  }
}
