/**
 * SUSE / openSUSE (provisioning-and-os.md §9.3–§9.4, HEAD): `hostnamectl set-hostname`, `DHCLIENT_HOSTNAME_OPTION` in
 * /etc/sysconfig/network/dhcp, `ifup` as the publish fallback, systemctl for services and sshd. SUSE11 uses SysV.
 */
import { LinuxOS } from './linux';
import { compareVersions } from './version-compare';

export class SuseOS extends LinuxOS {
  private get v11(): boolean {
    const f = this.distro.fullName;
    return (/SUSE Linux Enterprise Server/.test(f) && compareVersions(this.distro.version, '12') < 0)
      || (/openSUSE/.test(f) && compareVersions(this.distro.version, '13.2') < 0);
  }
  override dhcpClientProbeControl(): { stop: string[][]; start: string[][] } {
    return this.v11
      ? { stop: [['/sbin/service', 'dhcpcd', 'stop']], start: [['/sbin/service', 'dhcpcd', 'start']] }
      : { stop: [['systemctl', 'stop', 'wickedd-dhcp4']], start: [['systemctl', 'start', 'wickedd-dhcp4']] };
  }
  override async setHostname(name: string): Promise<void> {
    if (this.v11) {
      await this.writeSystemFile('/etc/HOSTNAME', `${name}\n`, 0o644);
      await this.run(['hostname', name]);
      return;
    }
    const r = await this.run(['hostnamectl', 'set-hostname', name]);
    if (r.code !== 0) await super.setHostname(name);
  }
  override async setDhcpHostname(name: string): Promise<void> {
    if (this.v11) return super.setDhcpHostname(name);
    const f = '/etc/sysconfig/network/dhcp';
    const t = this.fs.readText(f);
    if (t === undefined) return;
    const want = `DHCLIENT_HOSTNAME_OPTION="${name}"`;
    const lines = t.split('\n');
    const i = lines.findIndex((l) => l.startsWith('DHCLIENT_HOSTNAME_OPTION='));
    if (i >= 0) {
      const v = lines[i].slice('DHCLIENT_HOSTNAME_OPTION='.length).replace(/^"|"$/g, '');
      if (v === 'AUTO' || v === name) return;
      lines[i] = want;
    } else {
      if (lines.length && lines[lines.length - 1] === '') lines.pop();
      lines.push(want, '');
    }
    await this.writeSystemFile(f, lines.join('\n'), 0o644);
  }
  protected override async restartInterface(ifname: string): Promise<void> {
    if (this.v11) return super.restartInterface(ifname);
    for (let i = 1; i <= 3; i++) {
      if ((await this.run(['ifup', ifname])).code === 0) return;
      if (i < 3) await this.sleep(this.retryDelayMs);
    }
  }
  override async stopAgentService(): Promise<void> {
    if (this.v11) await this.runOk(['/sbin/service', this.agentServiceName, 'stop']); else await this.systemctlOk('stop', `${this.agentServiceName}.service`);
  }
  override async startAgentService(): Promise<void> {
    if (this.v11) await this.runOk(['/sbin/service', this.agentServiceName, 'start']); else await this.systemctlOk('start', `${this.agentServiceName}.service`);
  }
  override async registerAgentService(): Promise<void> {
    if (this.v11) await this.runOk(['/sbin/insserv', this.agentServiceName]); else await this.systemctlOk('enable', this.agentServiceName);
  }
  override async unregisterAgentService(): Promise<void> {
    if (this.v11) await this.runOk(['/sbin/insserv', '-r', this.agentServiceName]); else await this.systemctlOk('disable', this.agentServiceName);
  }
  override async restartSshd(): Promise<void> {
    if (this.v11) await this.runOk(['/sbin/service', 'sshd', 'restart']); else await this.runOk(['systemctl', 'restart', 'sshd.service']);
  }
}
