/**
 * `-daemon`: the long-running agent (provisioning-and-os.md §3.1, §10.11). SIGTERM (and SIGINT) stop it cleanly with
 * exit code 0; a fatal start-up error exits 1 (DECISIONS.md D16).
 */
import type { CliOptions } from './args';
import { setupAgent, dropConsoleAppender } from './setup';
import { runDaemonLoop } from '../daemon/daemon';

/** Runs the daemon until SIGTERM; returns the exit code. */
export async function runDaemon(opts: CliOptions): Promise<number> {
  const ctx = await setupAgent(opts);
  const stop = new AbortController();
  const onSignal = (sig: string) => { ctx.log.info(`Received ${sig}: stopping`); stop.abort(); };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  return runDaemonLoop(ctx, { signal: stop.signal, onProvisioned: () => dropConsoleAppender() });
}
