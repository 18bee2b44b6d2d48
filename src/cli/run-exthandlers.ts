/**
 * `-run-exthandlers`: the goal-state worker on its own (provisioning-and-os.md §10.11). Our daemon runs this loop in
 * its own process (one process keeps the memory target), so this command exists for compatibility and diagnostics:
 * it connects to the fabric, polls the goal state every `Extensions.GoalStatePeriod` seconds and uploads the status
 * blob, without provisioning. Exits 0 on SIGTERM/SIGINT, when orphaned by a daemon that started it (its parent
 * becomes PID 1), and when a daemon that is not its parent holds the PID file (§10.9, §10.11): the daemon runs the
 * same loop, and two loops would report twice — checked at the start and every 5 s.
 */
import type { CliOptions } from './args';
import { setupAgent } from './setup';
import { startFabricLink } from '../fabric/link';
import { runGoalStateLoop } from '../daemon/goal-state-loop';
import { otherDaemonPid } from '../daemon/pidfile';

export async function runExtHandlers(opts: CliOptions): Promise<number> {
  const ctx = await setupAgent(opts);
  ctx.log.prefix = 'ExtHandler';
  const stop = new AbortController();
  const onSignal = (sig: string) => { ctx.log.info(`Received ${sig}: stopping`); stop.abort(); };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  const parent = process.ppid;
  const pidFile = ctx.conf.s('Pid.File');
  const daemonElsewhere = (): number | undefined => {
    const pid = otherDaemonPid(ctx.os.fs, pidFile);
    return pid !== undefined && pid !== process.ppid ? pid : undefined;
  };
  const running = daemonElsewhere();
  if (running !== undefined) {
    ctx.log.info(`Daemon is already running: ${running}; it runs the goal-state loop itself: exiting`);
    return 0;
  }
  const orphanCheck = setInterval(() => {
    if (parent !== 1 && process.ppid === 1) { ctx.log.info('The daemon is gone: exiting'); stop.abort(); return; }
    const d = daemonElsewhere();
    if (d !== undefined) { ctx.log.info(`A daemon started (pid ${d}); it runs the goal-state loop itself: exiting`); stop.abort(); }
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
