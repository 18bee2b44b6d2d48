/**
 * CoreOS / Flatcar (provisioning-and-os.md §9.3–§9.5): read-only sshd_config (not edited), socket-activated sshd (no
 * restart), user `core` is never a system user, systemd-networkd restart as the publish fallback.
 */
import { LinuxOS } from './linux';

export class CoreOS extends LinuxOS {
  override managesSshdConfig(): boolean { return false; }
  override dhcpClientProbeControl(): { stop: string[][]; start: string[][] } { return { stop: [['systemctl', 'stop', 'systemd-networkd']], start: [['systemctl', 'start', 'systemd-networkd']] }; }
  override isSystemUser(name: string): boolean { return name === 'core' ? false : super.isSystemUser(name); }
  override async stopAgentService(): Promise<void> { await this.systemctlOk('stop', this.agentServiceName); }
  override async startAgentService(): Promise<void> { await this.systemctlOk('start', this.agentServiceName); }
  override async restartSshd(): Promise<void> { /* socket-activated sshd: nothing to restart */ }
  protected override async restartInterface(): Promise<void> { await this.run(['systemctl', 'restart', 'systemd-networkd']); }
}
