/** Provisioning step: lock root's password (provisioning-and-os.md §3.16). */
import type { AgentContext } from '../../context';

/** Locks root's password when Provisioning.DeleteRootPassword=y (idempotent: the OS layer writes only on change). */
export async function applyRootPasswordLock(ctx: AgentContext): Promise<boolean> {
  if (!ctx.conf.bool('Provisioning.DeleteRootPassword')) return false;
  await ctx.os.lockRootPassword();
  return true;
}
