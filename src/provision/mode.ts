/** Choosing the provisioning mode (provisioning-and-os.md §3.2, DECISIONS.md D29); a warning when the built-in
 *  provisioning is forced while cloud-init is enabled (two provisioners on one VM). */
import type { AgentContext } from '../context';

export type ProvisioningMode = 'builtin' | 'cloud-init' | 'disabled';

/**
 * `Provisioning.Enabled` decides when present in the file (y → built-in; n + UseCloudInit=y → cloud-init; n + n →
 * disabled); otherwise `Provisioning.Agent` (waagent | cloud-init | disabled | auto — auto asks the OS layer whether
 * cloud-init is enabled). An unknown Agent value is treated as auto with a warning.
 */
export async function provisioningMode(ctx: AgentContext): Promise<ProvisioningMode> {
  const c = ctx.conf;
  if (c.has('Provisioning.Enabled')) {
    if (c.bool('Provisioning.Enabled')) return warnIfCloudInit(ctx, 'Provisioning.Enabled=y');
    return c.bool('Provisioning.UseCloudInit') ? 'cloud-init' : 'disabled';
  }
  const agent = (c.str('Provisioning.Agent') ?? 'auto').trim().toLowerCase();
  if (agent === 'waagent') return warnIfCloudInit(ctx, 'Provisioning.Agent=waagent');
  if (agent === 'cloud-init') return 'cloud-init';
  if (agent === 'disabled') return 'disabled';
  if (agent !== 'auto') ctx.log.warn(`Unknown Provisioning.Agent value ${agent}: using auto`);
  return (await ctx.os.isCloudInitEnabled()) ? 'cloud-init' : 'builtin';
}

/** The built-in provisioning was chosen explicitly: warn when cloud-init is enabled too (both would provision). */
async function warnIfCloudInit(ctx: AgentContext, why: string): Promise<'builtin'> {
  if (await ctx.os.isCloudInitEnabled()) {
    ctx.log.warn(`${why} in ${ctx.conf.source}: the built-in provisioning runs although cloud-init is enabled on this image, so both provision this VM (users, SSH keys, host name). Use Provisioning.Agent=auto (and remove Provisioning.Enabled), or disable cloud-init.`);
  }
  return 'builtin';
}
