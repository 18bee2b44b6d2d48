/**
 * `Provisioning.MonitorHostName` (provisioning-and-os.md §6.7, §6.6, DECISIONS.md D17): after provisioning, compare the
 * live host name (gethostname, no fork) every `Provisioning.MonitorHostNamePeriod` seconds with the recorded one
 * (`<Lib.Dir>/published_hostname`; created from cloud-init's set-hostname or the live name when missing). On a change:
 * `/etc/hostname` the distro's way, then publish through the DHCP client the distro's way (renewal first, D17).
 */
import type { Duty, DutyEnv } from '../duties';
import type { AgentContext } from '../../context';

const PUBLISHED = 'published_hostname';
const NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})?$/;

class HostnameMonitor implements Duty {
  readonly name = 'host-name monitor';
  private recorded: string | undefined;

  enabled(ctx: AgentContext): boolean { return ctx.conf.bool('Provisioning.MonitorHostName'); }
  periodMs(ctx: AgentContext): number { return Math.max(1, ctx.conf.int('Provisioning.MonitorHostNamePeriod') ?? 30) * 1000; }

  async start(env: DutyEnv): Promise<void> {
    await env.provisioned;
    const { os, libDir } = env.ctx;
    const file = `${libDir}/${PUBLISHED}`;
    const saved = os.fs.readText(file, 4096)?.trim();
    if (saved) { this.recorded = saved; return; }
    let name: string | undefined;
    try {
      const ci = JSON.parse(os.fs.readText('/var/lib/cloud/data/set-hostname', 64 * 1024) ?? 'null') as { hostname?: unknown } | null;
      if (typeof ci?.hostname === 'string' && NAME_RE.test(ci.hostname)) name = ci.hostname;
    } catch { /* not cloud-init's */ }
    name ??= await os.getHostname();
    this.recorded = name;
    os.fs.mkdir(libDir, 0o700);
    os.fs.write(file, name, { mode: 0o600 });
  }

  async tick(env: DutyEnv): Promise<void> {
    if (this.recorded === undefined) return;
    const { os, log } = env.ctx;
    const now = (await os.getHostname()).trim();
    if (!now || now === this.recorded) return;
    if (!NAME_RE.test(now)) { log.warn(`EnvMonitor: the host name ${JSON.stringify(now)} is not a valid name; not publishing it`); this.recorded = now; return; }
    log.info(`EnvMonitor: Detected hostname change: ${this.recorded} -> ${now}`);
    this.recorded = now;
    await os.setHostname(now);
    await os.publishHostname(now);
  }
}

export function hostnameMonitorDuty(): Duty { return new HostnameMonitor(); }
