/**
 * The provisioning handler of the daemon start sequence (provisioning-and-os.md §3.1 step 9, §3.2, §3.3): decide from
 * the provisioned marker and the configuration what to do, then do it — built-in provisioning from the DVD (or a given
 * ovf-env.xml), cloud-init mode, or "disabled" — reporting through the fabric link, which sends in the background, so
 * provisioning never waits for a fabric that does not answer yet (offline first boot). Never throws.
 */
import type { AgentContext } from '../context';
import type { FabricLink } from '../fabric/types';
import { errorText } from '../core/log';
import { checkMarker, writeMarker } from '../provision/marker';
import { provisioningMode } from '../provision/mode';
import { provision, provisionDisabled, type ProvisionOutcome } from '../provision/provision';
import { provisionWithCloudInit } from '../provision/cloudinit';
import { acquireOvf, readOvfFile } from '../provision/dvd';
import { parseOvf } from '../provision/ovf';
import { cleanupChangedInstance } from '../deprovision/instance-change';
import { getPublicKeys } from '../fabric/imds';
import { diagnoseStorage, withStorageHint } from '../provision/storage';

export type HandlerResult =
  | { kind: 'already-provisioned' }
  | { kind: 'instance-changed' }
  | { kind: 'provisioned'; mode: 'builtin' | 'cloud-init' | 'disabled'; outcome: ProvisionOutcome };

/**
 * Checks the marker first (before the fabric link starts, because the changed-instance clean-up removes the cached
 * endpoint). Returns what remains to be done, or that nothing does.
 */
export async function markerStep(ctx: AgentContext): Promise<'provision' | 'already-provisioned' | 'instance-changed'> {
  const m = await checkMarker(ctx);
  switch (m.state) {
    case 'absent': return 'provision';
    case 'same':
      ctx.log.info('Provisioning already completed, skipping.');
      return 'already-provisioned';
    case 'empty':
      ctx.log.info('The provisioned marker is empty (written by an older agent): recording the instance id');
      await writeMarker(ctx);
      return 'already-provisioned';
    case 'changed':
      ctx.log.warn(`The instance id changed (${m.stored} → ${m.current}): the image was captured without deprovisioning; cleaning cached state, not provisioning again`);
      cleanupChangedInstance(ctx);
      await writeMarker(ctx);
      return 'instance-changed';
  }
}

/**
 * Runs provisioning in the mode the configuration selects. `ovfPath` (one-shot `-provision:<path>`) replaces the DVD.
 * Every failure is reported as NotReady/ProvisioningFailed through the link and returned, never thrown. `signal`
 * (SIGTERM) stops the built-in provisioning before its next step.
 */
export async function runProvisioning(ctx: AgentContext, link: FabricLink, ovfPath?: string, signal?: AbortSignal): Promise<HandlerResult> {
  let mode: 'builtin' | 'cloud-init' | 'disabled' = 'builtin';
  try {
    mode = ovfPath ? 'builtin' : await provisioningMode(ctx);
    ctx.log.info(`Provisioning mode: ${mode}`);
    if (mode === 'disabled') return { kind: 'provisioned', mode, outcome: await provisionDisabled(ctx, link) };
    if (mode === 'cloud-init') return { kind: 'provisioned', mode, outcome: await provisionWithCloudInit(ctx, { fabric: link }) };
    const acquired = ovfPath ? await readOvfFile(ctx, ovfPath) : await acquireOvf(ctx);
    ctx.log.info(`Read ovf-env.xml from ${acquired.source}`);
    const ovf = parseOvf(acquired.xmlText);
    const outcome = await provision(ctx, { ovf, fabric: link, getImdsPublicKeys: getPublicKeys, onMarkerWritten: () => acquired.eject(), signal });
    return { kind: 'provisioned', mode, outcome };
  } catch (e) {
    const storage = diagnoseStorage(ctx, e);
    const msg = ctx.log.redact(withStorageHint(`Failed to provision: ${errorText(e)}`, storage));
    ctx.log.error(`Provisioning failed: ${msg}`);
    link.reportHealth({ state: 'NotReady', subStatus: 'ProvisioningFailed', description: msg });
    return { kind: 'provisioned', mode, outcome: { success: false, error: msg, agentDisabled: false, retryable: storage.retryable } };
  }
}
