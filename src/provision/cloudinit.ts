/**
 * cloud-init mode (provisioning-and-os.md §3.19): wait for cloud-init's `<Lib.Dir>/ovf-env.xml` (1 s polls, bounded),
 * parse it, report NotReady/Provisioning, handle ProvisionGuestAgent, wait for the SSH host key and fingerprint it
 * (failures only skip the role property, D23), write the marker, report Ready and the role property. Nothing else on
 * the system is touched.
 */
import type { AgentContext } from '../context';
import type { FabricLink } from '../fabric/types';
import { parseOvf, type OvfEnv } from './ovf';
import { hostKeyFingerprint, hostKeyPubPath } from './steps/host-keys';
import { writeMarker } from './marker';
import { applyProvisionGuestAgent, type ProvisionOutcome } from './provision';

export interface CloudInitOptions {
  fabric: FabricLink;
  /** Poll interval (default 1000 ms) and the maximum number of polls per wait (default 1800). */
  pollMs?: number;
  maxPolls?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until true, at most `maxPolls` times, logging at 10, 20, 40 … polls. Returns whether it succeeded. */
async function waitFor(ctx: AgentContext, what: string, check: () => boolean | Promise<boolean>, pollMs: number, maxPolls: number, onSlow?: () => Promise<void>): Promise<boolean> {
  let next = 10;
  for (let i = 0; i < maxPolls; i++) {
    if (await check()) return true;
    if (i + 1 === next) {
      ctx.log.info(`Waiting for ${what} (${i + 1} polls)`);
      next *= 2;
      if (onSlow) await onSlow();
    }
    await sleep(pollMs);
  }
  return check();
}

/** Runs cloud-init mode; never throws. */
export async function provisionWithCloudInit(ctx: AgentContext, opts: CloudInitOptions): Promise<ProvisionOutcome> {
  const { fabric } = opts; const pollMs = opts.pollMs ?? 1000; const maxPolls = opts.maxPolls ?? 1800;
  const ovfPath = `${ctx.libDir}/ovf-env.xml`;
  let warned = false;
  const warnIfNotEnabled = async () => {
    if (warned) return; warned = true;
    if (!(await ctx.os.isCloudInitEnabled())) ctx.log.warn('cloud-init does not appear to be enabled');
  };
  const fail = (msg: string): ProvisionOutcome => {
    ctx.log.error(`Provisioning failed: ${msg}`);
    fabric.reportHealth({ state: 'NotReady', subStatus: 'ProvisioningFailed', description: msg });
    return { success: false, error: msg, agentDisabled: false };
  };
  if (!(await waitFor(ctx, `${ovfPath} from cloud-init`, () => ctx.os.fs.exists(ovfPath), pollMs, maxPolls, warnIfNotEnabled))) {
    return fail(`Giving up, ovf-env.xml was not copied to ${ovfPath} after ${Math.round((pollMs * maxPolls) / 1000)}s`);
  }
  let ovf: OvfEnv;
  try { ovf = parseOvf(ctx.os.fs.readText(ovfPath) ?? ''); } catch (e) {
    ctx.log.error(`ovf-env.xml: ${(e as Error).message}`);
    return fail('OVF xml could not be parsed');
  }
  fabric.reportHealth({ state: 'NotReady', subStatus: 'Provisioning', description: 'Starting' });
  let agentDisabled = false;
  try { agentDisabled = applyProvisionGuestAgent(ctx, ovf); } catch (e) { ctx.log.warn(`Cannot write disable_agent: ${(e as Error).message}`); }
  let thumbprint: string | undefined;
  const pub = hostKeyPubPath(ctx);
  if (await waitFor(ctx, `the SSH host key ${pub}`, () => ctx.os.fs.exists(pub), pollMs, maxPolls)) {
    for (let i = 0; i < 5 && !thumbprint; i++) {
      thumbprint = await hostKeyFingerprint(ctx);
      if (!thumbprint) await sleep(pollMs);
    }
  } else ctx.log.warn(`The SSH host key ${pub} did not appear: no role property will be sent`);
  try { await writeMarker(ctx); } catch (e) { return fail(`Failed to provision: ${(e as Error).message}`); }
  ctx.log.info('Provisioning by cloud-init complete');
  fabric.reportHealth({ state: 'Ready' });
  if (thumbprint) fabric.reportRoleProperties(thumbprint);
  return { success: true, thumbprint, agentDisabled };
}
