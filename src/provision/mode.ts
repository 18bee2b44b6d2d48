/** Choosing the provisioning mode (provisioning-and-os.md §3.2, DECISIONS.md D29). */
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
    if (c.bool('Provisioning.Enabled')) return 'builtin';
    return c.bool('Provisioning.UseCloudInit') ? 'cloud-init' : 'disabled';
  }
  const agent = (c.str('Provisioning.Agent') ?? 'auto').trim().toLowerCase();
  if (agent === 'waagent') return 'builtin';
  if (agent === 'cloud-init') return 'cloud-init';
  if (agent === 'disabled') return 'disabled';
  if (agent !== 'auto') ctx.log.warn(`Unknown Provisioning.Agent value ${agent}: using auto`);
  return (await ctx.os.isCloudInitEnabled()) ? 'cloud-init' : 'builtin';
}
