/**
 * The Red Hat family (provisioning-and-os.md §9.3–§9.5): RHEL/CentOS/Alma/Rocky/Oracle (RedHat6, RedHat, RedHatModern),
 * Fedora, and Mariner/Azure Linux. Host name via `hostnamectl --static` (fallback generic), `DHCP_HOSTNAME` in the
 * ifcfg file, NetworkManager restart as the publish fallback, sshd condrestart.
 */
import { LinuxOS } from './linux';
import { compareVersions } from './version-compare';
import { log } from '../core/log';

export class RedHatOS extends LinuxOS {
  protected get v6(): boolean { return compareVersions(this.distro.version, '7') < 0; }
  protected get modern(): boolean { return compareVersions(this.distro.version, '8.6') >= 0; }

  override async setHostname(name: string): Promise<void> {
    if (this.v6) {
      await this.setSysconfigVar('/etc/sysconfig/network', 'HOSTNAME', name);
      await this.run(['hostname', name]);
      return;
    }
    const r = await this.run(['hostnamectl', 'set-hostname', name, '--static']);
    if (r.code !== 0) { log.warn(`hostnamectl failed (${(r.stdout + r.stderr).trim() || r.spawnError}); writing /etc/hostname`); await super.setHostname(name); }
  }
  override async setDhcpHostname(name: string): Promise<void> {
    const f = `/etc/sysconfig/network-scripts/ifcfg-${this.primaryInterface()}`;
    if (this.fs.exists(f)) await this.setSysconfigVar(f, 'DHCP_HOSTNAME', name);
  }
  /** Sets `KEY=value` in a sysconfig file (replacing existing lines, keeping blank lines). */
  protected async setSysconfigVar(file: string, key: string, value: string): Promise<void> {
    const t = this.fs.readText(file) ?? '';
    const lines = t.split('\n');
    let found = false;
    const out = lines.map((l) => (l.startsWith(`${key}=`) ? ((found = true), `${key}=${value}`) : l));
    if (!found) { if (out.length && out[out.length - 1] === '') out.pop(); out.push(`${key}=${value}`, ''); }
    const nt = out.join('\n');
    if (nt !== t) await this.writeSystemFile(file, nt, 0o644);
  }
  protected override async restartInterface(ifname: string): Promise<void> {
    const r = this.v6 ? { code: 1 } : await this.run(this.modern ? ['systemctl', 'restart', 'NetworkManager'] : ['service', 'NetworkManager', 'restart']);
    if (r.code === 0) return;
    await super.restartInterface(ifname);
  }
  override dhcpLeaseDirs(): string[] { return super.dhcpLeaseDirs(); }
  override async stopAgentService(): Promise<void> {
    if (this.modern) await this.systemctlOk('stop', this.agentServiceName); else await this.runOk(['/sbin/service', this.agentServiceName, 'stop']);
  }
  override async startAgentService(): Promise<void> {
    if (this.modern) await this.systemctlOk('start', this.agentServiceName); else await this.runOk(['/sbin/service', this.agentServiceName, 'start']);
  }
  override async registerAgentService(): Promise<void> {
    if (this.v6) await this.runOk(['chkconfig', '--add', this.agentServiceName]); else await this.systemctlOk('enable', this.agentServiceName);
  }
  override async unregisterAgentService(): Promise<void> {
    if (this.v6) await this.runOk(['chkconfig', '--del', this.agentServiceName]); else await this.systemctlOk('disable', this.agentServiceName);
  }
  override async restartSshd(): Promise<void> {
    if (this.modern) await this.runOk(['systemctl', 'condrestart', 'sshd']); else await this.runOk(['/sbin/service', 'sshd', 'condrestart']);
  }
}

/** Fedora (HEAD): systemctl for everything, `systemctl restart sshd`. */
export class FedoraOS extends RedHatOS {
  protected override get v6(): boolean { return false; }
  protected override get modern(): boolean { return true; }
  /** HEAD flags Fedora, with no-op commands (§6.2 step 3). */
  override dhcpClientProbeControl(): { stop: string[][]; start: string[][] } { return { stop: [], start: [] }; }
  override async registerAgentService(): Promise<void> { /* — (§9.3) */ }
  override async unregisterAgentService(): Promise<void> { /* — */ }
  override async restartSshd(): Promise<void> { await this.runOk(['systemctl', 'restart', 'sshd']); }
}

/** Mariner / Azure Linux (HEAD): generic host name, sshd_config left alone, systemd-networkd restart to publish. */
export class MarinerOS extends LinuxOS {
  override managesSshdConfig(): boolean { return false; }
  override dhcpClientProbeControl(): { stop: string[][]; start: string[][] } { return { stop: [['systemctl', 'stop', 'systemd-networkd']], start: [['systemctl', 'start', 'systemd-networkd']] }; }
  override async stopAgentService(): Promise<void> { await this.systemctlOk('stop', this.agentServiceName); }
  override async startAgentService(): Promise<void> { await this.systemctlOk('start', this.agentServiceName); }
  override async registerAgentService(): Promise<void> { await this.systemctlOk('enable', this.agentServiceName); }
  override async unregisterAgentService(): Promise<void> { await this.systemctlOk('disable', this.agentServiceName); }
  override async restartSshd(): Promise<void> { await this.runOk(['systemctl', 'restart', 'sshd']); }
  protected override async restartInterface(): Promise<void> { await this.run(['systemctl', 'restart', 'systemd-networkd']); }
}
