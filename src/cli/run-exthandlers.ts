/**
 * `-run-exthandlers`: the goal-state worker on its own (provisioning-and-os.md §10.11). Our daemon runs this loop in
 * its own process (one process keeps the memory target), so this command exists for compatibility and diagnostics:
 * it connects to the fabric, polls the goal state every `Extensions.GoalStatePeriod` seconds and uploads the status
 * blob, without provisioning. Exits 0 on SIGTERM/SIGINT, and when orphaned by a daemon that started it (its parent
 * becomes PID 1).
 */
import type { CliOptions } from './args';
import { setupAgent } from './setup';
import { startFabricLink } from '../fabric/link';
import { runGoalStateLoop } from '../daemon/goal-state-loop';

export async function runExtHandlers(opts: CliOptions): Promise<number> {
  const ctx = await setupAgent(opts);
  ctx.log.prefix = 'ExtHandler';
  const stop = new AbortController();
  const onSignal = (sig: string) => { ctx.log.info(`Received ${sig}: stopping`); stop.abort(); };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  const parent = process.ppid;
  const orphanCheck = setInterval(() => {
    if (parent !== 1 && process.ppid === 1) { ctx.log.info('The daemon is gone: exiting'); stop.abort(); }
  }, 5000);
  orphanCheck.unref();
  const link = startFabricLink(ctx);
  try {
    await runGoalStateLoop(ctx, link, stop.signal);
  } finally {
    clearInterval(orphanCheck);
    link.close();
  }
  return 0;
}
