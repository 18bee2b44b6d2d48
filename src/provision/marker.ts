/**
 * The provisioned marker and instance identity (provisioning-and-os.md §3.3): `<Lib.Dir>/provisioned` holding the
 * instance ID (swapped SMBIOS UUID), compared in both byte orders, case-insensitively.
 */
import type { AgentContext } from '../context';
import { swapUuid } from '../os/linux';

export function markerPath(ctx: AgentContext): string { return `${ctx.libDir}/provisioned`; }

/** Whether two instance IDs name the same VM: equal, or equal after swapping one, ignoring case. */
export function sameInstanceId(stored: string, current: string): boolean {
  const a = stored.trim().toLowerCase(); const b = current.trim().toLowerCase();
  return a === b || a === swapUuid(b).toLowerCase();
}

/** The marker's content, or undefined when the VM is not marked provisioned. */
export function readMarker(ctx: AgentContext): string | undefined {
  return ctx.os.fs.readText(markerPath(ctx));
}

/** Writes the marker with the current instance ID (mode 0600, no trailing newline). */
export async function writeMarker(ctx: AgentContext): Promise<void> {
  const id = await ctx.os.getInstanceId();
  ctx.os.fs.mkdir(ctx.libDir, 0o700);
  ctx.os.fs.write(markerPath(ctx), id, { mode: 0o600 });
  ctx.log.info(`Provisioned marker written (instance id ${id || 'unknown'})`);
}

export type MarkerState = 'absent' | 'same' | 'changed' | 'empty';

/**
 * Classifies the marker against the current instance ID: `absent` (provision), `same` (already provisioned), `changed`
 * (image captured without deprovision: the caller runs the changed-ID clean-up and rewrites the marker), `empty` (old
 * agent: rewrite it).
 */
export async function checkMarker(ctx: AgentContext): Promise<{ state: MarkerState; stored?: string; current: string }> {
  const stored = readMarker(ctx);
  const current = await ctx.os.getInstanceId();
  if (stored === undefined) return { state: 'absent', current };
  // Empty content: an older agent's marker — unless this VM has no readable instance id either (then it is ours).
  if (!stored.trim()) return { state: current ? 'empty' : 'same', stored, current };
  if (!current || sameInstanceId(stored, current)) return { state: 'same', stored, current };
  return { state: 'changed', stored, current };
}
