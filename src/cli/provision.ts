/**
 * `-provision[:<path to ovf-env.xml>]` (ours): one-shot provisioning — from the given file, or from the DVD when no
 * path is given — that exits when done, for images provisioned at first boot where no fabric answers (yet). The
 * fabric is tried in the background; if it accepts the Ready report within a few seconds, good; otherwise the daemon
 * reports Ready when it starts and the fabric answers (DECISIONS.md D21). Exit 0 when provisioned (also when it
 * already was), 1 when provisioning failed.
 * Single instance (§10.9, ours): the command holds the daemon's PID file while it works. When a daemon (or another
 * -provision/-deprovision) already holds it, nothing is done and the exit status is 1 — the daemon provisions the VM
 * itself; a daemon that starts meanwhile waits until this command has finished.
 */
import type { CliOptions } from './args';
import type { AgentContext } from '../context';
import { setupAgent } from './setup';
import { markerStep, runProvisioning } from '../daemon/provisioning-handler';
import { startFabricLink } from '../fabric/link';
import { acquirePidFile, removePidFile } from '../daemon/pidfile';

/** How long the one-shot command waits for the fabric to accept its report before leaving it to the daemon. */
const REPORT_WAIT_MS = 5000;

export async function runProvision(opts: CliOptions, ovfPath?: string): Promise<number> {
  return runProvisionWith(await setupAgent(opts), ovfPath);
}

/** The command on a given context (tests use a temp-dir root). */
export async function runProvisionWith(ctx: AgentContext, ovfPath?: string): Promise<number> {
  const pidFile = ctx.conf.s('Pid.File');
  const got = await acquirePidFile(ctx.os.fs, pidFile);
  if (!got.owned) {
    ctx.log.error(got.holder.role === 'daemon'
      ? `The daemon is running (pid ${got.holder.pid}) and provisions this VM itself: not provisioning (stop it first to provision with -provision)`
      : `Another agent command (pid ${got.holder.pid}) is provisioning or deprovisioning this VM: not provisioning`);
    return 1;
  }
  try {
    return await provisionOnce(ctx, ovfPath);
  } finally {
    removePidFile(ctx.os.fs, pidFile);
  }
}

async function provisionOnce(ctx: AgentContext, ovfPath?: string): Promise<number> {
  ctx.os.fs.mkdir(ctx.libDir, 0o700);
  const state = await markerStep(ctx);
  if (state !== 'provision') {
    ctx.log.info('This VM is already provisioned: nothing to do');
    return 0;
  }
  const link = startFabricLink(ctx);
  try {
    const r = await runProvisioning(ctx, link, ovfPath);
    const ok = r.kind !== 'provisioned' || r.outcome.success;
    let timer: NodeJS.Timeout | undefined;
    const accepted = await Promise.race([
      link.healthAccepted().then(() => true, () => false),
      new Promise<boolean>((res) => { timer = setTimeout(() => res(false), REPORT_WAIT_MS); }),
    ]);
    clearTimeout(timer);
    ctx.log.info(accepted ? 'The fabric accepted the report'
      : 'The fabric did not answer: the daemon will report when it starts and the fabric answers');
    return ok ? 0 : 1;
  } finally {
    link.close();
  }
}
