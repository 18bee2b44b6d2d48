/**
 * Generic Linux (provisioning-and-os.md §9): the base of every distro variant. Provisioning, deprovisioning and the
 * daemon call these methods; nothing else runs commands or writes system files. Variants (debian.ts, redhat.ts, …)
 * override only what differs (§9.3–§9.5); the factory (factory.ts) picks one.
 */
import * as nodeOs from 'node:os';
import * as path from 'node:path';
import { OsBase, failureText } from './os';
import type { DistroInfo } from './detect';
import type { SysRoot } from '../core/sysroot';
import type { Runner, ExecResult } from '../core/exec';
import { Config } from '../config/config';
import { log } from '../core/log';
import { cryptPassword, randomSalt } from '../crypto/password-crypt';
import { LinuxNet } from './net';

export interface PasswdEntry { name: string; uid: number; gid: number; home: string; shell: string; /** GECOS (comment) field. */ gecos: string }

const UUID_RE = /^\s*[A-F0-9]{8}(-[A-F0-9]{4}){3}-[A-F0-9]{12}\s*$/i;

/** Swaps the byte order of the first three UUID fields (SMBIOS little-endian → RFC order), §3.3. */
export function swapUuid(id: string): string {
  const parts = id.trim().split('-');
  if (parts.length !== 5) return id.trim();
  const rev = (h: string) => (h.match(/../g) ?? []).reverse().join('');
  return [rev(parts[0]), rev(parts[1]), rev(parts[2]), parts[3], parts[4]].join('-');
}

/** Where systemd looks for unit files, highest precedence first (systemd.unit(5), system manager). */
export const AGENT_UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'];

export class LinuxOS extends OsBase {
  /** Agent service name the distro's own package uses (§9.3); `agentUnit()` is the one installed here. */
  agentServiceName = 'waagent';
  /** Delay between last-resort interface restart attempts, ms (tests set 0). */
  retryDelayMs = 5000;

  constructor(distro: DistroInfo, root: SysRoot, run: Runner, readonly conf: Config = new Config()) {
    super(distro, root, run);
  }

  // ---- paths -------------------------------------------------------------------------------------------------
  libDir(): string { return this.conf.s('Lib.Dir').replace(/\/+$/, '') || '/'; }
  sshDir(): string { return this.conf.s('OS.SshDir').replace(/\/+$/, ''); }
  /** The sshd_config that provisioning edits (`OS.SshdConfigPath`, else `<OS.SshDir>/sshd_config`). */
  sshdConfigPath(): string { return this.conf.str('OS.SshdConfigPath') ?? `${this.sshDir()}/sshd_config`; }
  /** Whether provisioning may edit sshd_config (false on CoreOS, Arch, Alpine, Mariner, …; §3.11). */
  managesSshdConfig(): boolean { return true; }
  sudoersDir(): string { return this.conf.s('OS.SudoersDir').replace(/\/+$/, ''); }
  /** `sudoers` drop-in, or OpenBSD's `doas` (§3.10). */
  sudoMechanism(): 'sudoers' | 'doas' { return 'sudoers'; }
  homeDir(): string { return this.conf.s('OS.HomeDir').replace(/\/+$/, '') || '/'; }
  passwordPath(): string { return this.conf.s('OS.PasswordPath'); }
  /** Directories whose contents are cached DHCP leases (deprovision row 3). */
  dhcpLeaseDirs(): string[] { return ['/var/lib/dhclient', '/var/lib/dhcpcd', '/var/lib/dhcp']; }
  /** Which resource-disk commands this OS speaks (§5.2–§5.10; os/resource-disk/*). */
  resourceDiskFlavor(): 'linux' | 'freebsd' | 'openbsd' { return 'linux'; }

  /** Network operations (routes, probe helpers, firewall backend, udev rules; os/net.ts). */
  get net(): LinuxNet { return (this.netOps ??= this.createNet()); }
  private netOps: LinuxNet | undefined;
  protected createNet(): LinuxNet { return new LinuxNet(this); }
  /** Whether the persistent-net udev rules are moved away (§6.5; not on Debian, Ubuntu, Gaia). */
  removesPersistentNetRules(): boolean { return true; }
  /**
   * §6.2 step 3 / §9.4 "stop/start client during probe": the commands that stop the DHCP client before the raw probe
   * and start it again after, on distros flagged `is_dhcp_enabled`; undefined elsewhere (the client keeps running).
   * Empty lists: flagged, but the commands are no-ops (Alpine, Fedora).
   */
  dhcpClientProbeControl(_ifname: string): { stop: string[][]; start: string[][] } | undefined { return undefined; }

  protected sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }
  protected has(prog: string): boolean { return this.which(prog) !== undefined; }
  /** Runs a command; returns its result without throwing (a missing program gives code -1). */
  protected async tryRun(argv: string[]): Promise<ExecResult> { return this.run(argv); }

  // ---- SELinux -----------------------------------------------------------------------------------------------
  /** Restores the SELinux label of `p` (`restorecon`, recursively with `recursive`) when SELinux tools exist. */
  async relabel(p: string, recursive = false): Promise<void> {
    if (!this.has('restorecon')) return;
    const r = await this.run(['restorecon', ...(recursive ? ['-R'] : []), p]);
    if (r.code !== 0) log.warn(`restorecon ${p} failed: ${(r.stdout + r.stderr).trim()}`);
  }

  // ---- host name ---------------------------------------------------------------------------------------------
  /** The live host name (gethostname) on the real root; `/etc/hostname` under a test root. */
  async getHostname(): Promise<string> {
    if (this.root.isReal) return nodeOs.hostname();
    return (this.fs.readText('/etc/hostname') ?? '').trim();
  }

  /** Sets the host name: writes `/etc/hostname` (`<name>\n`) and runs `hostname <name>` (errors only logged). */
  async setHostname(name: string): Promise<void> {
    await this.writeSystemFile('/etc/hostname', `${name}\n`, 0o644);
    const r = await this.run(['hostname', name]);
    if (r.code !== 0) log.warn(`hostname ${name} failed: ${(r.stdout + r.stderr).trim() || r.spawnError || r.code}`);
  }

  /** Makes the DHCP client send `name` (§6.6 generic: dhclient.conf `send host-name`). */
  async setDhcpHostname(name: string): Promise<void> {
    const files = ['/etc/dhcp/dhclient.conf', '/etc/dhcp3/dhclient.conf', '/etc/dhclient.conf'].filter((f) => this.fs.exists(f));
    const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const live = new RegExp(`^[^#]*?send\\s*host-name.*?(${esc}|gethostname[(,)])`);
    for (const f of files) if ((this.fs.readText(f) ?? '').split('\n').some((l) => live.test(l))) return;
    for (const f of files) {
      const lines = (this.fs.readText(f) ?? '').split('\n').filter((l) => !l.startsWith('send host-name'));
      while (lines.length && lines[lines.length - 1] === '') lines.pop();
      lines.push(`send host-name "${name}";`);
      await this.writeSystemFile(f, `${lines.join('\n')}\n`, 0o644);
    }
  }

  /** Interface of the default route (from /proc/net/route), else the first non-loopback one, else `eth0`. */
  primaryInterface(): string {
    const t = this.fs.readText('/proc/net/route') ?? '';
    for (const line of t.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 2 && f[1] === '00000000') return f[0];
    }
    const ifs = Object.keys(nodeOs.networkInterfaces()).filter((n) => n !== 'lo');
    return ifs[0] ?? 'eth0';
  }

  /**
   * Publishes `name` to DHCP/DNS (§6.6, D17): distro DHCP-hostname configuration, `<Lib.Dir>/published_hostname`,
   * then a renewal that keeps the interface up (networkctl, nmcli, dhclient); the interface restart only as a last
   * resort. Errors of the renewal are logged; a failure to write files throws.
   */
  async publishHostname(name: string): Promise<void> {
    await this.setDhcpHostname(name);
    const ifname = this.primaryInterface();
    const way = await this.renewDhcp(ifname, name);
    if (way) log.info(`Published host name ${name} via ${way}`);
    else {
      log.info(`No DHCP renewal method applies; restarting interface ${ifname} to publish host name ${name}`);
      await this.restartInterface(ifname);
    }
    // Recorded only once published: a crash before this point publishes again on the next run.
    this.fs.mkdir(this.libDir(), 0o700);
    this.fs.write(`${this.libDir()}/published_hostname`, name, { mode: 0o600 });
  }

  /** Tries the renewals that keep the interface up; returns the way used, or undefined (D17). */
  protected async renewDhcp(ifname: string, name: string): Promise<string | undefined> {
    if (this.systemdRunning() && this.has('networkctl') && (await this.run(['systemctl', 'is-active', 'systemd-networkd'])).stdout.trim() === 'active') {
      if ((await this.run(['networkctl', 'renew', ifname])).code === 0) return 'networkctl renew';
      if ((await this.run(['networkctl', 'reconfigure', ifname])).code === 0) return 'networkctl reconfigure';
    }
    if (this.has('nmcli') && (await this.run(['nmcli', '-t', '-f', 'RUNNING', 'general'])).stdout.trim() === 'running') {
      const con = (await this.run(['nmcli', '-g', 'GENERAL.CONNECTION', 'device', 'show', ifname])).stdout.trim();
      if (con) {
        await this.run(['nmcli', 'connection', 'modify', con, 'ipv4.dhcp-hostname', name]);
        if ((await this.run(['nmcli', 'device', 'reapply', ifname])).code === 0) return 'nmcli device reapply';
      }
    }
    const running = this.has('dhclient') ? this.runningDhclient(ifname) : undefined;
    if (running) {
      // The same files as the running client: without its -pf, `-x` finds no PID file (ifupdown uses
      // /run/dhclient.<if>.pid) and `-nw` starts a second client beside the first.
      await this.run(['dhclient', '-x', ...running.files, ifname]);
      if ((await this.run(['dhclient', '-nw', ...running.files, ifname])).code === 0) return 'dhclient renewal';
    }
    return undefined;
  }

  /**
   * The dhclient that serves `ifname` (its command line names the interface, or names none: then it serves all), with
   * the file options of its command line (`-pf`, `-lf`, `-cf`) to reuse; undefined when none runs.
   */
  runningDhclient(ifname: string): { pid: number; files: string[] } | undefined {
    for (const e of this.fs.readdir('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      let argv: string[];
      try {
        if (this.fs.readText(`/proc/${e}/comm`, 256)?.trim() !== 'dhclient') continue;
        argv = (this.fs.readText(`/proc/${e}/cmdline`, 64 * 1024) ?? '').split('\0').filter((a) => a !== '');
      } catch { continue; } // the process ended
      const files: string[] = [];
      const names: string[] = [];
      for (let i = 1; i < argv.length; i++) {
        const a = argv[i];
        if (['-pf', '-lf', '-cf'].includes(a) && i + 1 < argv.length) { files.push(a, argv[++i]); continue; }
        if (['-sf', '-df', '-s', '-g', '-p', '-e', '--decline-wait-time', '--address-prefix-len', '--prefix-len-hint'].includes(a)) { i++; continue; }
        if (!a.startsWith('-')) names.push(a);
      }
      if (names.length === 0 || names.includes(ifname)) return { pid: Number(e), files };
    }
    return undefined;
  }

  /** Last-resort interface restart (§9.4 Default: `ifdown` + `ifup`, 3 attempts 5 s apart). Failures logged. */
  protected async restartInterface(ifname: string): Promise<void> {
    for (let i = 1; i <= 3; i++) {
      const down = await this.run(['ifdown', ifname]);
      const up = down.code === 0 ? await this.run(['ifup', ifname]) : down;
      if (up.code === 0) return;
      log.warn(`Restarting interface ${ifname} failed [attempt ${i}/3]: ${(up.stdout + up.stderr).trim() || up.spawnError}`);
      if (up.spawnError) return; // ifdown/ifup not installed: retrying cannot help
      if (i < 3) await this.sleep(this.retryDelayMs);
    }
  }

  // ---- accounts ----------------------------------------------------------------------------------------------
  /** Entries of `/etc/passwd` under the root (never the host's getpwnam). */
  readPasswd(): PasswdEntry[] {
    const out: PasswdEntry[] = [];
    for (const line of (this.fs.readText('/etc/passwd', 16 * 1024 * 1024) ?? '').split('\n')) {
      const f = line.split(':');
      if (f.length < 7 || !f[0] || f[0].startsWith('#')) continue;
      out.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5], shell: f[6], gecos: f[4] });
    }
    return out;
  }
  /** uid, gid and home of `name` from `/etc/passwd`; undefined when there is no such user. */
  getUser(name: string): { uid: number; gid: number; home: string } | undefined {
    const e = this.readPasswd().find((x) => x.name === name);
    return e ? { uid: e.uid, gid: e.gid, home: e.home } : undefined;
  }
  userExists(name: string): boolean { return this.getUser(name) !== undefined; }

  /** `UID_MIN` from /etc/login.defs (first line starting `UID_MIN`), default 100. */
  uidMin(): number {
    for (const line of (this.fs.readText('/etc/login.defs') ?? '').split('\n')) {
      if (line.startsWith('UID_MIN')) { const v = parseInt(line.split(/\s+/)[1] ?? '', 10); return Number.isFinite(v) ? v : 100; }
    }
    return 100;
  }

  /** True when `name` exists with a UID below UID_MIN; always false with Provisioning.AllowResetSysUser=y (§3.8). */
  isSystemUser(name: string): boolean {
    if (this.conf.bool('Provisioning.AllowResetSysUser')) return false;
    const u = this.getUser(name);
    return u !== undefined && u.uid < this.uidMin();
  }

  /** Creates `name` with `useradd -m` (`-e <YYYY-MM-DD>` and `-c <comment>` when given). Throws `Failed to create
   *  user account:…`. */
  async createUser(name: string, expiration?: string, comment?: string): Promise<void> {
    const argv = ['useradd', '-m'];
    if (expiration) argv.push('-e', expiration.split('.')[0]);
    if (comment) argv.push('-c', comment);
    argv.push(name);
    const r = await this.run(argv);
    if (r.code !== 0) throw new Error(`Failed to create user account:${name}, retcode:${r.code}, output:${failureText(r)}`);
  }

  /** Hashes a clear-text password the way this OS wants it (crypt id and salt length from the config, §3.9). */
  async hashPassword(password: string): Promise<string> {
    const id = this.conf.s('Provisioning.PasswordCryptId');
    return cryptPassword(password, id, randomSalt(this.saltLength(id)));
  }

  /**
   * Provisioning.PasswordCryptSaltLength made usable (§3.9): crypt(3) reads at most 16 salt characters for SHA-crypt
   * and 8 for MD5-crypt, so a longer setting is clamped (with a warning) instead of failing provisioning; a length
   * below 1 falls back to the default 10.
   */
  saltLength(id: string): number {
    const want = this.conf.int('Provisioning.PasswordCryptSaltLength') ?? 10;
    const max = id === '1' ? 8 : 16;
    if (want < 1) { log.warn(`Provisioning.PasswordCryptSaltLength=${want} is below 1: using 10`); return Math.min(10, max); }
    if (want > max) { log.warn(`Provisioning.PasswordCryptSaltLength=${want} is longer than crypt id ${id} uses (${max}): using ${max}`); return max; }
    return want;
  }

  /**
   * Sets `name`'s password hash: `chpasswd -e` with `user:hash` on stdin; `usermod -p` only if chpasswd is missing.
   * Throws `Failed to set password for <u>: <output>` (never containing the hash).
   */
  async setPassword(name: string, hash: string): Promise<void> {
    let r = await this.run(['chpasswd', '-e'], { input: `${name}:${hash}\n`, secrets: [hash], quietOutput: true });
    if (r.spawnError && /ENOENT/.test(r.spawnError)) r = await this.run(['usermod', '-p', hash, name], { secrets: [hash], quietOutput: true });
    if (r.code !== 0) throw new Error(`Failed to set password for ${name}: ${failureText(r).split(hash).join('*****') || `exit code ${r.code}`}`);
  }

  /**
   * Deletes the account and home of `name` (§4.3): refuses system users, touches utmp, `userdel -f -r`, then removes
   * the user's lines from `<sudoers dir>/waagent` (first token match). Throws on userdel failure.
   */
  async deleteAccount(name: string): Promise<void> {
    if (this.isSystemUser(name)) { log.error(`${name} is a system user. Will not delete it.`); return; }
    // sudo rights go first: an account being removed never keeps them, even for a moment or when userdel fails
    this.removeSudoersUser(name);
    this.touch('/var/run/utmp');
    await this.runUserdel(name);
  }
  protected async runUserdel(name: string): Promise<void> { await this.runOk(['userdel', '-f', '-r', name], undefined, `userdel ${name}`); }
  protected touch(p: string): void {
    if (this.fs.exists(p)) return;
    try { this.fs.write(p, '', { mode: 0o664 }); } catch (e) { log.warn(`Cannot create ${p}: ${(e as Error).message}`); }
  }
  /** Drops lines whose first token is `name` from the waagent sudoers drop-in. */
  protected removeSudoersUser(name: string): void {
    const f = `${this.sudoersDir()}/waagent`;
    const t = this.fs.readText(f);
    if (t === undefined) return;
    const kept = t.split('\n').filter((l) => l.trim().split(/\s+/)[0] !== name);
    const nt = kept.join('\n');
    if (nt !== t) this.fs.write(f, nt, { mode: 0o440, preserveExisting: true });
  }

  /**
   * Locks root's password (§3.16): every `root:` line of OS.PasswordPath replaced by `root:*LOCK*:14600::::::` as
   * the first line, written atomically keeping mode and owner, then relabelled. Unchanged file → nothing written.
   */
  async lockRootPassword(): Promise<void> {
    const p = this.passwordPath();
    const t = this.fs.readText(p, 16 * 1024 * 1024);
    if (t === undefined) throw new Error(`${p} not found: cannot lock the root password`);
    const lines = t.split('\n').filter((l) => !l.startsWith('root:'));
    const nt = ['root:*LOCK*:14600::::::', ...lines].join('\n');
    if (nt === t) return;
    await this.writeSystemFile(p, nt, 0o640);
    log.info('Root password locked');
  }

  /** Atomic write keeping an existing file's mode/owner (§0.2 rule 3; a missing parent is created 0755, an existing
   *  one is left as it is), then SELinux relabel. */
  async writeSystemFile(p: string, content: string, mode: number): Promise<void> {
    const dir = path.posix.dirname(p);
    if (!this.fs.exists(dir)) this.fs.mkdir(dir, 0o755); // an existing directory keeps the mode its owner chose
    this.fs.write(p, content, { mode, preserveExisting: true });
    await this.relabel(p);
  }

  // ---- services ----------------------------------------------------------------------------------------------
  /** Whether systemd is the running init (sd_booted(3): /run/systemd/system exists); systemctl is pointless otherwise. */
  systemdRunning(): boolean { return this.fs.exists('/run/systemd/system'); }
  protected systemctlOk(...args: string[]): Promise<ExecResult> { return this.runOk(['systemctl', ...args]); }
  /**
   * The agent's unit as installed on this machine (D31, README "Install on an image"): the distro's name
   * (`walinuxagent` on Debian/Ubuntu) when a unit or init script of that name exists and is not masked, else
   * `waagent` when one of that name does, else the distro's name. An image where our executable was installed as
   * `waagent.service` beside no distro package is thus stopped, started and registered under the name it runs as.
   */
  agentUnit(): string {
    const names = [...new Set([this.agentServiceName, 'waagent'])];
    const installed = (n: string): boolean => {
      for (const d of AGENT_UNIT_DIRS) {
        const p = `${d}/${n}.service`;
        const st = this.fs.lstat(p);
        if (!st) continue;
        // A unit masked in /etc or /run (a link to /dev/null) hides the ones below it.
        if (st.isSymbolicLink() && this.fs.readlink(p) === '/dev/null') return false;
        if (st.isFile() && st.size === 0) return false;
        return true;
      }
      return this.fs.exists(`/etc/init.d/${n}`);
    };
    return names.find(installed) ?? this.agentServiceName;
  }
  /** Stops the agent service (§9.3; generic: no-op). Throws CommandError on failure. */
  async stopAgentService(): Promise<void> { /* Default distro: no-op */ }
  /** Starts the agent service (§9.3; generic: no-op). */
  async startAgentService(): Promise<void> { /* Default distro: no-op */ }
  /** Registers the agent service with the init system (§9.3; generic: no-op). */
  async registerAgentService(): Promise<void> { /* Default distro: no-op */ }
  async unregisterAgentService(): Promise<void> { /* Default distro: no-op */ }

  /** Whether a process with this command name (`/proc/<pid>/comm`) runs: what `pidof` answers, without a fork. */
  processRunning(comm: string): boolean {
    for (const e of this.fs.readdir('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try { if (this.fs.readText(`/proc/${e}/comm`, 256)?.trim() === comm) return true; } catch { /* the process ended */ }
    }
    return false;
  }

  /** Whether sshd runs (systemd `is-active` for sshd/ssh, else a process named sshd). */
  async isSshdRunning(): Promise<boolean> {
    if (this.systemdRunning()) for (const u of ['sshd.service', 'ssh.service']) if ((await this.run(['systemctl', 'is-active', u])).stdout.trim() === 'active') return true;
    return this.processRunning('sshd');
  }
  /** Restarts (or reloads) sshd with the distro command (§9.3). Generic (NEW): systemctl try-reload-or-restart. */
  async restartSshd(): Promise<void> {
    if (this.systemdRunning() && this.has('systemctl')) {
      for (const u of ['sshd.service', 'ssh.service']) if ((await this.run(['systemctl', 'try-reload-or-restart', u])).code === 0) return;
    }
    await this.runOk(['service', 'sshd', 'restart']);
  }
  /** Restarts sshd only when it is running (provisioning step 15); failures are logged, not thrown. */
  async reloadSshdIfRunning(): Promise<void> {
    if (!(await this.isSshdRunning())) { log.info('sshd is not running: not restarting it'); return; }
    try { await this.restartSshd(); log.info('sshd restarted'); } catch (e) { log.warn(`Restarting sshd failed: ${(e as Error).message}`); }
  }

  /** cloud-init enabled (§3.2): `systemctl is-enabled cloud-init-local.service` prints `enabled`, or `service cloud-init status` exits 0. */
  async isCloudInitEnabled(): Promise<boolean> {
    try {
      if ((await this.run(['systemctl', 'is-enabled', 'cloud-init-local.service'])).stdout.trim() === 'enabled') return true;
      return (await this.run(['service', 'cloud-init', 'status'])).code === 0;
    } catch { return false; }
  }

  // ---- identity ----------------------------------------------------------------------------------------------
  /** The raw (not swapped) SMBIOS UUID: product_uuid, else a well-formed `dmidecode --string system-uuid`, else ''. */
  async rawInstanceId(): Promise<string> {
    const t = this.fs.readText('/sys/class/dmi/id/product_uuid');
    if (t !== undefined && t.trim()) return t.trim();
    const r = await this.run(['dmidecode', '--string', 'system-uuid']);
    return r.code === 0 && UUID_RE.test(r.stdout) ? r.stdout.trim() : '';
  }
  /** The instance ID (§3.3): the SMBIOS UUID with the first three fields byte-swapped; '' when unknown. */
  async getInstanceId(): Promise<string> {
    // The SMBIOS UUID does not change while the system runs: read it (or run dmidecode) once.
    this.instanceId ??= this.rawInstanceId().then((raw) => (raw ? (this.swapsInstanceId() ? swapUuid(raw) : raw) : ''));
    return this.instanceId;
  }
  private instanceId: Promise<string> | undefined;
  /** Whether this OS swaps the SMBIOS UUID (OpenBSD does not). */
  swapsInstanceId(): boolean { return true; }
}

