/**
 * `-setup-firewall=<ip>` (provisioning-and-os.md §6.8.4): the one-shot that the boot unit runs before the network comes
 * up — removes the legacy rule, then checks the wire-server rules for `<ip>` and adds them (or resets an inconsistent
 * set). Exit 0 when the rules are in place, 1 otherwise (no iptables/nft, bad address, a command failed).
 */
import type { CliOptions } from './args';
import { setupAgent } from './setup';
import { checkFirewallIp, ensureFirewall } from '../os/firewall';

export async function runSetupFirewall(opts: CliOptions, ip: string): Promise<number> {
  const ctx = await setupAgent(opts);
  checkFirewallIp(ip);
  const fw = ctx.os.net.firewall(ip, process.geteuid?.() ?? 0);
  if (!fw) throw new Error('neither iptables nor nft is installed: cannot set up the firewall');
  await fw.removeLegacy();
  const change = await ensureFirewall(fw);
  ctx.log.info(change === 'unchanged' ? `Firewall rules for ${ip} are already in place (${fw.kind})`
    : `Firewall rules for ${ip} ${change === 'added' ? 'created' : 'reset'} (${fw.kind})`);
  return 0;
}
