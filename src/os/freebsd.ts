/**
 * FreeBSD (provisioning-and-os.md §9.3–§9.5): `hostname=` in /etc/rc.conf, `pw` for accounts (hash on stdin), root
 * lock with `pw usermod root -h -`, `rmuser -y`, `service sshd restart`, rc.d service with onestart/onestop.
 */
import { LinuxOS } from './linux';
import { BsdNet, type LinuxNet } from './net';

export class FreeBSDOS extends LinuxOS {
  override resourceDiskFlavor(): 'freebsd' { return 'freebsd'; }
  override dhcpClientProbeControl(ifname: string): { stop: string[][]; start: string[][] } {
    return { stop: [], start: [['/etc/rc.d/dhclient', 'start', ifname]] };
  }
  protected override createNet(): LinuxNet { return new BsdNet(this); }
  override async setHostname(name: string): Promise<void> {
    const f = '/etc/rc.conf';
    const lines = (this.fs.readText(f) ?? '').split('\n');
    const line = `hostname="${name}"`;
    let idx = -1;
    lines.forEach((l, i) => { if (l.startsWith('hostname=')) idx = i; });
    if (idx >= 0) lines[idx] = line; else lines.splice(Math.max(lines.length - 1, 0), 0, line);
    await this.writeSystemFile(f, lines.join('\n'), 0o644);
    await this.run(['hostname', name]);
  }
  override async createUser(name: string, expiration?: string, comment?: string): Promise<void> {
    const argv = ['pw', 'useradd', name, '-m'];
    // pw(8) reads the date as dd-mm-yyyy: a YYYY-MM-DD expiry is turned round.
    if (expiration) argv.push('-e', expiration.split('.')[0].replace(/^(\d{4})-(\d{2})-(\d{2})$/, '$3-$2-$1'));
    if (comment) argv.push('-c', comment);
    const r = await this.run(argv);
    if (r.code !== 0) throw new Error(`Failed to create user account:${name}, retcode:${r.code}, output:${(r.stdout + r.stderr).trim()}`);
  }
  override async setPassword(name: string, hash: string): Promise<void> {
    const r = await this.run(['pw', 'usermod', name, '-H', '0'], { input: `${hash}\n`, secrets: [hash], quietOutput: true });
    if (r.code !== 0) throw new Error(`Failed to set password for ${name}: ${(r.stdout + r.stderr).split(hash).join('*****').trim()}`);
  }
  protected override async runUserdel(name: string): Promise<void> {
    this.touch('/var/run/utx.active');
    await this.runOk(['rmuser', '-y', name]);
  }
  override async lockRootPassword(): Promise<void> { await this.runOk(['pw', 'usermod', 'root', '-h', '-']); }
  override async stopAgentService(): Promise<void> { await this.runOk(['service', this.agentServiceName, 'onestop']); }
  override async startAgentService(): Promise<void> { await this.runOk(['service', this.agentServiceName, 'onestart']); }
  override async registerAgentService(): Promise<void> { await this.runOk(['sysrc', `${this.agentServiceName}_enable=YES`]); }
  override async restartSshd(): Promise<void> { await this.runOk(['service', 'sshd', 'restart']); }
  override async isSshdRunning(): Promise<boolean> { return (await this.run(['pgrep', '-x', 'sshd'])).code === 0; }
  protected override async restartInterface(ifname: string): Promise<void> { await this.run(['/etc/rc.d/dhclient', 'restart', ifname]); }
  protected override async renewDhcp(): Promise<string | undefined> { return undefined; }
}
