/**
 * Ubuntu (provisioning-and-os.md §9.2–§9.4): service `walinuxagent` (or the installed `waagent`: LinuxOS.agentUnit; systemctl start/stop, unmask/mask to register);
 * 18.04–24.04 restart systemd-networkd as the last-resort publish, later releases bounce the link with `ip`.
 */
import { LinuxOS } from './linux';
import { compareVersions } from './version-compare';

export class UbuntuOS extends LinuxOS {
  override agentServiceName = 'walinuxagent';
  override removesPersistentNetRules(): boolean { return false; }
  private get legacy(): boolean { return compareVersions(this.distro.version, '18.04') < 0; }
  override async stopAgentService(): Promise<void> {
    if (this.legacy) await this.runOk(['service', this.agentServiceName, 'stop']); else await this.systemctlOk('stop', this.agentUnit());
  }
  override async startAgentService(): Promise<void> {
    if (this.legacy) await this.runOk(['service', this.agentServiceName, 'start']); else await this.systemctlOk('start', this.agentUnit());
  }
  override async registerAgentService(): Promise<void> { await this.systemctlOk('unmask', this.agentUnit()); }
  override async unregisterAgentService(): Promise<void> { await this.systemctlOk('mask', this.agentUnit()); }
  override async restartSshd(): Promise<void> {
    await this.runOk(['systemctl', '--job-mode=ignore-dependencies', 'try-reload-or-restart', 'ssh']);
  }
  override dhcpLeaseDirs(): string[] { return [...super.dhcpLeaseDirs(), '/run/systemd/netif/leases']; }
  protected override async restartInterface(ifname: string): Promise<void> {
    const modern = compareVersions(this.distro.version, '24.04') > 0;
    for (let i = 1; i <= 3; i++) {
      const r = modern
        ? await this.run(['ip', 'link', 'set', ifname, 'down']).then((d) => (d.code === 0 ? this.run(['ip', 'link', 'set', ifname, 'up']) : d))
        : await this.run(['systemctl', 'restart', 'systemd-networkd']);
      if (r.code === 0) return;
      if (i < 3) await this.sleep(this.retryDelayMs);
    }
  }
}
