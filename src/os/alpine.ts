/** Alpine (provisioning-and-os.md §9.3–§9.5): no service commands, sshd_config not edited, dhcpcd HUP to publish. */
import { LinuxOS } from './linux';

export class AlpineOS extends LinuxOS {
  override managesSshdConfig(): boolean { return false; }
  /** Flagged, with no-op commands (§9.4). */
  override dhcpClientProbeControl(): { stop: string[][]; start: string[][] } { return { stop: [], start: [] }; }
  override async restartSshd(): Promise<void> { /* — (§9.3) */ }
  protected override async restartInterface(): Promise<void> {
    const r = await this.run(['pidof', 'dhcpcd']);
    const pid = r.stdout.trim().split(/\s+/)[0];
    if (r.code === 0 && /^\d+$/.test(pid)) await this.run(['kill', '-HUP', pid]);
  }
}
