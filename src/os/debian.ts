/** Debian (provisioning-and-os.md §9.3–§9.5, DebianModern of HEAD): service `walinuxagent` (or `waagent` when only that unit is installed: LinuxOS.agentUnit), sshd via `ssh` unit. */
import { LinuxOS } from './linux';

export class DebianOS extends LinuxOS {
  override agentServiceName = 'walinuxagent';
  override removesPersistentNetRules(): boolean { return false; }
  override async stopAgentService(): Promise<void> { await this.systemctlOk('stop', this.agentUnit()); }
  override async startAgentService(): Promise<void> { await this.systemctlOk('start', this.agentUnit()); }
  override async restartSshd(): Promise<void> {
    await this.runOk(['systemctl', '--job-mode=ignore-dependencies', 'try-reload-or-restart', 'ssh']);
  }
}
