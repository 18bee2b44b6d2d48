/** Provisioning step: host name (provisioning-and-os.md §3.7, §6.6). */
import type { AgentContext } from '../../context';

/**
 * Sets the host name to `name` when the live name or /etc/hostname differs, then publishes it unless
 * `<Lib.Dir>/published_hostname` already holds it. Returns whether anything changed. OS errors propagate.
 */
export async function applyHostname(ctx: AgentContext, name: string): Promise<boolean> {
  const os = ctx.os;
  const current = await os.getHostname();
  const etc = (os.fs.readText('/etc/hostname') ?? '').trim();
  let changed = false;
  if (current !== name || (os.fs.exists('/etc/hostname') && etc !== name)) {
    ctx.log.info(`Setting host name: ${current || '(unset)'} -> ${name}`);
    await os.setHostname(name);
    changed = true;
  }
  const published = os.fs.readText(`${ctx.libDir}/published_hostname`);
  if (changed || published !== name) {
    await os.publishHostname(name);
    changed = true;
  } else {
    ctx.log.info(`Host name ${name} already set and published`);
  }
  return changed;
}
