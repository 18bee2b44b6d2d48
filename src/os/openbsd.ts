/**
 * OpenBSD (provisioning-and-os.md §9.3–§9.5): /etc/myname, bcrypt via `encrypt` (password on stdin), `usermod -p`,
 * doas instead of sudo, `usermod -p "*" root`, rcctl services, instance id from `sysctl -n hw.uuid` without swap.
 */
import { LinuxOS } from './linux';
import { BsdNet, type LinuxNet } from './net';

export class OpenBSDOS extends LinuxOS {
  override resourceDiskFlavor(): 'openbsd' { return 'openbsd'; }
  protected override createNet(): LinuxNet { return new BsdNet(this); }
  override sudoMechanism(): 'sudoers' | 'doas' { return 'doas'; }
  override async setHostname(name: string): Promise<void> {
    await this.writeSystemFile('/etc/myname', `${name}\n`, 0o644);
    await this.run(['hostname', name]);
  }
  override async hashPassword(password: string): Promise<string> {
    const r = await this.run(['encrypt'], { input: password, secrets: [password], quietOutput: true });
    if (r.code !== 0 || !r.stdout.trim()) throw new Error('Failed to hash the password with encrypt');
    return r.stdout.trim();
  }
  override async setPassword(name: string, hash: string): Promise<void> {
    const r = await this.run(['usermod', '-p', hash, name], { secrets: [hash], quietOutput: true });
    if (r.code !== 0) throw new Error(`Failed to set password for ${name}: ${(r.stdout + r.stderr).split(hash).join('*****').trim()}`);
  }
  protected override async runUserdel(name: string): Promise<void> { await this.runOk(['userdel', '-r', name]); }
  protected override removeSudoersUser(name: string): void {
    const t = this.fs.readText('/etc/doas.conf');
    if (t === undefined) return;
    const nt = t.split('\n').filter((l) => !(l.startsWith('permit') && l.trim().split(/\s+/).pop() === name)).join('\n');
    if (nt !== t) this.fs.write('/etc/doas.conf', nt, { mode: 0o644, preserveExisting: true });
  }
  override async lockRootPassword(): Promise<void> { await this.runOk(['usermod', '-p', '*', 'root']); }
  override async stopAgentService(): Promise<void> { await this.runOk(['rcctl', 'stop', this.agentServiceName]); }
  override async startAgentService(): Promise<void> { await this.runOk(['rcctl', 'start', this.agentServiceName]); }
  override async registerAgentService(): Promise<void> {
    await this.runOk(['chmod', '0555', `/etc/rc.d/${this.agentServiceName}`]);
    await this.runOk(['rcctl', 'enable', this.agentServiceName]);
  }
  override async unregisterAgentService(): Promise<void> { await this.runOk(['rcctl', 'disable', this.agentServiceName]); }
  override async restartSshd(): Promise<void> { await this.runOk(['rcctl', 'restart', 'sshd']); }
  override async isSshdRunning(): Promise<boolean> { return (await this.run(['pgrep', '-x', 'sshd'])).code === 0; }
  override dhcpLeaseDirs(): string[] { return []; }
  override async rawInstanceId(): Promise<string> {
    const r = await this.run(['sysctl', '-n', 'hw.uuid']);
    return r.code === 0 ? r.stdout.trim() : '';
  }
  override swapsInstanceId(): boolean { return false; }
  protected override async restartInterface(ifname: string): Promise<void> { await this.run(['/sbin/dhclient', ifname]); }
  protected override async renewDhcp(): Promise<string | undefined> { return undefined; }
}
