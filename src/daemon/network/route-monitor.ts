/**
 * Route repair after the raw DHCP probe (provisioning-and-os.md §6.3) and the DHCP client restart monitor (§6.4):
 * once a probe of this process answered, its router and static routes are configured when the monitor starts, and
 * again whenever the DHCP client's PIDs change (a restarted client may have flushed them). Without a probe answer (the
 * usual case: route or lease named the wire server) a tick does nothing. PIDs come from a /proc scan, no fork.
 */
import type { Duty, DutyEnv } from '../duties';
import type { AgentContext } from '../../context';

class DhcpClientMonitor implements Duty {
  readonly name = 'dhcp client monitor';
  private pids: number[] | undefined;
  private warnedMissing = false;

  enabled(ctx: AgentContext): boolean { return (ctx.conf.str('Protocol.EndpointDiscovery') ?? 'dhcp') === 'dhcp'; }
  periodMs(ctx: AgentContext): number { return Math.max(1, ctx.conf.int('OS.MonitorDhcpClientRestartPeriod') ?? 30) * 1000; }

  async tick(env: DutyEnv): Promise<void> {
    const { lastProbe } = await import('../../fabric/dhcp');
    const probe = lastProbe();
    if (!probe) return;
    const net = env.ctx.os.net;
    if (this.pids === undefined || this.pids.length === 0) {
      const first = this.pids === undefined;
      this.pids = net.dhcpClientPids();
      if (this.pids.length === 0 && !this.warnedMissing) { this.warnedMissing = true; env.ctx.log.warn('Dhcp client is not running.'); }
      if (first) await this.repair(env, probe);
      return;
    }
    if (this.pids.every((p) => net.pidAlive(p))) return;
    const now = net.dhcpClientPids();
    const same = now.length === this.pids.length && now.every((p, i) => p === this.pids![i]);
    this.pids = now;
    if (same) return;
    env.ctx.log.info('EnvMonitor: Detected dhcp client restart. Restoring routing table.');
    await this.repair(env, probe);
  }

  private async repair(env: DutyEnv, probe: { iface: string; gateway?: string; routes: { network: string; prefix: number; gateway: string }[] }): Promise<void> {
    const added = await env.ctx.os.net.configureRoutes(probe.iface, probe.gateway, probe.routes);
    if (added.length) env.ctx.log.info(`Routes restored: ${added.join('; ')}`);
  }
}

class PersistentNetRules implements Duty {
  readonly name = 'persistent-net rules';
  enabled(ctx: AgentContext): boolean { return ctx.os.net.removesPersistentNetRules(); }
  periodMs(ctx: AgentContext): number { return Math.max(1, ctx.conf.int('OS.RemovePersistentNetRulesPeriod') ?? 30) * 1000; }
  async start(env: DutyEnv): Promise<void> { env.ctx.os.net.removePersistentNetRules(env.ctx.libDir); }
  async tick(env: DutyEnv): Promise<void> { env.ctx.os.net.removePersistentNetRules(env.ctx.libDir); }
}

export function dhcpClientMonitorDuty(): Duty { return new DhcpClientMonitor(); }
export function persistentNetRulesDuty(): Duty { return new PersistentNetRules(); }
