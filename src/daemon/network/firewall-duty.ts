/**
 * The wire-server firewall duty (provisioning-and-os.md §6.8.4, fabric-protocol.md §1.5; `OS.EnableFirewall`): once the
 * link knows the wire server the agent uses, remove the legacy rule, check and add the rules (an inconsistent set is
 * left to the periodic task), make them persistent; then every `OS.EnableFirewallPeriod` seconds check and repair
 * (add when missing, remove + add when inconsistent). The check is 3 `iptables -C` (or 2 `nft --json list`) runs.
 */
import type { Duty, DutyEnv } from '../duties';
import type { AgentContext } from '../../context';
import { ensureFirewall, type Firewall } from '../../os/firewall';
import { persistFirewall } from '../../os/firewall-persist';
import { wireServerHost } from './connected';
import { isIPv4 } from 'node:net';

class FirewallDuty implements Duty {
  readonly name = 'firewall';
  private fw: Firewall | undefined;
  private noBackendLogged = false;

  enabled(ctx: AgentContext): boolean { return ctx.conf.bool('OS.EnableFirewall'); }
  periodMs(ctx: AgentContext): number { return Math.max(1, ctx.conf.int('OS.EnableFirewallPeriod') ?? 300) * 1000; }

  /** The firewall for the current endpoint; rules of a previous endpoint are removed when it changed. */
  private async current(env: DutyEnv): Promise<Firewall | undefined> {
    const host = env.link.wire?.endpoint.host;
    if (!host) return this.fw;
    if (this.fw?.ip === host) return this.fw;
    if (!isIPv4(host)) { env.ctx.log.warn(`Firewall: the wire server ${host} is not an IPv4 address; no rules`); return undefined; }
    const fw = env.ctx.os.net.firewall(host, process.geteuid?.() ?? 0);
    if (!fw) {
      if (!this.noBackendLogged) env.ctx.log.warn('Firewall: neither iptables nor nft is installed; OS.EnableFirewall has no effect');
      this.noBackendLogged = true;
      return undefined;
    }
    if (this.fw) {
      env.ctx.log.info(`Firewall: the wire server moved from ${this.fw.ip} to ${host}; moving the rules`);
      await this.fw.remove();
    }
    this.fw = fw;
    return fw;
  }

  async start(env: DutyEnv): Promise<void> {
    const { ctx } = env;
    if (!(await wireServerHost(env.link, env.signal))) return;
    const fw = await this.current(env);
    if (!fw) return;
    await fw.removeLegacy();
    const state = await fw.check();
    if (state === 'missing') {
      await fw.setup();
      ctx.log.info(`Firewall: created the wire-server rules for ${fw.ip} (${fw.kind}): only root may connect`);
    } else if (state === 'inconsistent') {
      ctx.log.warn(`Firewall: the rules for ${fw.ip} are inconsistent; the periodic check resets them. ${await fw.describe()}`);
    } else {
      ctx.log.info(`Firewall: the wire-server rules for ${fw.ip} are in place (${fw.kind})`);
    }
    const { selfArgv } = await import('../../cli/start');
    const how = await persistFirewall(ctx.os, fw, selfArgv());
    ctx.log.verbose(`Firewall persistence: ${how}`);
  }

  async tick(env: DutyEnv): Promise<void> {
    const fw = await this.current(env);
    if (!fw) return;
    const change = await ensureFirewall(fw);
    if (change !== 'unchanged') env.ctx.log.warn(`Firewall: the wire-server rules for ${fw.ip} were ${change === 'added' ? 'missing: added them' : 'inconsistent: reset them'}`);
  }
}

export function firewallDuty(): Duty { return new FirewallDuty(); }
