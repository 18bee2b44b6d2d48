/**
 * `-deprovision[+user]` (provisioning-and-os.md §4.1, §1.5): print the warnings, ask `Do you want to proceed (y/n)`
 * unless `-force`, run the actions (each failure logged, the rest still run), and stop writing the log file after the
 * last action so that the deleted /var/log/waagent.log is not recreated. Ctrl-C before the actions: `Deprovision is
 * interrupted.` and exit 0; during them: `Deprovisioning may not be interrupted.` and carry on.
 */
import * as readline from 'node:readline';
import type { AgentContext } from '../context';
import { Level, streamAppender } from '../core/log';
import { planDeprovision, executePlan } from '../deprovision/plan';
import { removePidFile } from '../daemon/pidfile';
import type { CliOptions } from './args';

export interface DeprovisionIo {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Where SIGINT is listened for (tests pass an EventEmitter). */
  signals: Pick<NodeJS.Process, 'on' | 'removeListener'>;
}

/** Reads one line (undefined on EOF); `close` abandons the read. */
function readLine(input: NodeJS.ReadableStream): { line: Promise<string | undefined>; close(): void } {
  const rl = readline.createInterface({ input, terminal: false });
  const line = new Promise<string | undefined>((resolve) => {
    let done = false;
    const finish = (v: string | undefined) => { if (done) return; done = true; rl.close(); resolve(v); };
    rl.once('line', (l) => finish(l));
    rl.once('close', () => finish(undefined));
  });
  return { line, close: () => rl.close() };
}

/**
 * Runs deprovisioning. `ctx` defaults to the one `setupAgent(opts)` builds. Exit codes: 0 done, declined (any reply
 * not starting with y/Y, or EOF) or interrupted before the actions; 1 when any action failed. Start-up errors
 * (configuration) are thrown.
 */
export async function runDeprovision(
  opts: Pick<CliOptions, 'force' | 'verbose' | 'configPath'> & Partial<CliOptions>,
  withUser: boolean,
  ctx?: AgentContext,
  io: DeprovisionIo = { input: process.stdin, output: process.stdout, signals: process },
): Promise<number> {
  const out = (s: string) => { io.output.write(s); };
  if (!ctx) {
    // Start-up errors propagate: main prints `Failed to run '<command>': ...` and exits 1.
    const { setupAgent } = await import('./setup');
    ctx = await setupAgent({ command: withUser ? 'deprovision+user' : 'deprovision', debug: false, full: false, argv: [], ...opts });
  }
  const log = ctx.log;

  let phase: 'asking' | 'running' = 'asking';
  let interrupt: (() => void) | undefined;
  const interrupted = new Promise<'interrupted'>((resolve) => { interrupt = () => resolve('interrupted'); });
  const onSigint = () => {
    if (phase === 'asking') { out('Deprovision is interrupted.\n'); interrupt?.(); }
    else out('Deprovisioning may not be interrupted.\n');
  };
  io.signals.on('SIGINT', onSigint);
  try {
    const plan = planDeprovision(ctx, withUser);
    for (const w of plan.warnings) out(`${w}\n`);
    if (!opts.force) {
      out('Do you want to proceed (y/n)');
      const reader = readLine(io.input);
      const answer = await Promise.race([reader.line, interrupted]);
      reader.close();
      if (answer === 'interrupted') return 0;
      if (answer === undefined || !answer.toLowerCase().startsWith('y')) {
        if (answer === undefined) out('\n');
        return 0;
      }
    }
    phase = 'running';
    // §4.1 step 6: one action deletes the log file, and a line logged by any later action would create it again —
    // so from here on, log to the terminal (and /dev/console) only.
    const { dropFileAppender } = await import('./setup');
    dropFileAppender(log);
    if (!log.hasAppender((a) => a.kind === 'stream' && a.target === io.output)) {
      log.addAppender(streamAppender(io.output, opts.verbose ? Level.VERBOSE : Level.INFO));
    }
    let failures;
    try {
      failures = await executePlan(plan, ctx);
    } finally {
      removePidFile(ctx.os.fs, ctx.conf.s('Pid.File')); // held since the daemon was stopped (plan.ts)
    }
    if (failures.length) {
      log.error(`Deprovision finished with ${failures.length} failed action(s): ${failures.map((f) => f.name).join('; ')}`);
      return 1;
    }
    return 0;
  } finally {
    io.signals.removeListener('SIGINT', onSigint);
  }
}
