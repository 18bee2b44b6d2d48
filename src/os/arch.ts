/** Arch (and Clear Linux) (provisioning-and-os.md §9.3–§9.5): systemctl start/stop, sshd_config not edited. */
import { LinuxOS } from './linux';

export class ArchOS extends LinuxOS {
  override managesSshdConfig(): boolean { return false; }
  override dhcpClientProbeControl(): { stop: string[][]; start: string[][] } { return { stop: [['systemctl', 'stop', 'systemd-networkd']], start: [['systemctl', 'start', 'systemd-networkd']] }; }
  override async stopAgentService(): Promise<void> { await this.systemctlOk('stop', this.agentServiceName); }
  override async startAgentService(): Promise<void> { await this.systemctlOk('start', this.agentServiceName); }
  override async restartSshd(): Promise<void> { /* — (§9.3) */ }
  protected override async restartInterface(): Promise<void> { await this.run(['systemctl', 'restart', 'systemd-networkd']); }
}

/** Clear Linux: as Arch; a missing or empty shadow file is created holding only the root lock line (§3.16). */
export class ClearLinuxOS extends ArchOS {
  override async lockRootPassword(): Promise<void> {
    const p = this.passwordPath();
    if (!(this.fs.readText(p) ?? '').trim()) { await this.writeSystemFile(p, 'root:*LOCK*:14600::::::\n', 0o640); return; }
    await super.lockRootPassword();
  }
}
