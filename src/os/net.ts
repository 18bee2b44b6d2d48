/**
 * Network operations of the OS layer (provisioning-and-os.md §6.2–§6.5, §6.8–§6.10): the route table and primary
 * interface, the temporary broadcast route of the DHCP probe, route repair, the DHCP-reply firewall allowance, the
 * wire-server firewall backend, the DHCP client's PIDs and the persistent-net udev rules. Linux forms (`ip`, iptables
 * or nft); every command is an argv array through the OS runner, every path through the root prefix.
 */
import * as fs from 'node:fs';
import * as nodeOs from 'node:os';
import type { LinuxOS } from './linux';
import { IptablesFirewall, NftFirewall, type Firewall } from './firewall';
import { log } from '../core/log';
import { readFileCapped } from '../core/files';

/** The persistent-net rule files of §6.5 (the generator and the rules it wrote). */
const PERSISTENT_NET_RULES = ['/lib/udev/rules.d/75-persistent-net-generator.rules', '/etc/udev/rules.d/70-persistent-net.rules'];

/** A route handed out by DHCP option 249 (Microsoft classless static routes). */
export interface StaticRoute { network: string; prefix: number; gateway: string }

const RTF_GATEWAY = 0x2;

/** The little-endian hex of /proc/net/route → dotted quad. */
function hexToIp(h: string): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(h)) return undefined;
  const n = parseInt(h, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
}

export interface RouteEntry { iface: string; destination: string; gateway: string; flags: number; metric: number; mask: string }

/** Parses /proc/net/route (the header row gives the column positions, §6.10). */
export function parseRouteTable(text: string): RouteEntry[] {
  const lines = text.split('\n').filter((l) => l.trim());
  if (lines.length < 2) return [];
  const head = lines[0].trim().split(/\s+/).map((h) => h.toLowerCase());
  const col = (n: string): number => head.indexOf(n);
  const [ci, cd, cg, cf, cm, cmask] = ['iface', 'destination', 'gateway', 'flags', 'metric', 'mask'].map(col);
  const out: RouteEntry[] = [];
  for (const l of lines.slice(1)) {
    const f = l.trim().split(/\s+/);
    if (ci < 0 || cd < 0 || f.length < head.length) continue;
    out.push({
      iface: f[ci], destination: hexToIp(f[cd]) ?? '', gateway: hexToIp(f[cg]) ?? '',
      flags: parseInt(f[cf] ?? '0', 16) || 0, metric: Number(f[cm] ?? 0) || 0, mask: hexToIp(f[cmask] ?? '') ?? '',
    });
  }
  return out;
}

export class LinuxNet {
  constructor(protected readonly os: LinuxOS) {}

  /** /proc/net/route (procfs reports size 0, so it is read whole); '' when unreadable. */
  routeText(): string {
    try { return fs.readFileSync(this.os.fs.p('/proc/net/route'), 'utf8').slice(0, 1024 * 1024); } catch { return ''; }
  }

  /** Whether any route has destination 0.0.0.0 (§6.2 step 2, HEAD/FIX form). */
  hasDefaultRoute(): boolean {
    return parseRouteTable(this.routeText()).some((r) => r.destination === '0.0.0.0');
  }

  /**
   * The primary interface (§6.10): the default gateway route with the lowest metric; else the first non-loopback
   * interface with an IPv4 address; undefined when there is none.
   */
  primaryInterface(): string | undefined {
    const gw = parseRouteTable(this.routeText())
      .filter((r) => r.destination === '0.0.0.0' && (r.flags & RTF_GATEWAY) !== 0)
      .sort((a, b) => a.metric - b.metric);
    if (gw.length) return gw[0].iface;
    return this.interfacesWithIpv4()[0]?.name;
  }

  /** Non-loopback interfaces with an IPv4 address (SIOCGIFCONF through Node), in the kernel's order. */
  interfacesWithIpv4(): { name: string; address: string; mac: string }[] {
    const out: { name: string; address: string; mac: string }[] = [];
    for (const [name, addrs] of Object.entries(nodeOs.networkInterfaces())) {
      const a = addrs?.find((x) => x.family === 'IPv4' && !x.internal);
      if (a) out.push({ name, address: a.address, mac: a.mac });
    }
    return out;
  }

  /** IPv4 address of `ifname`, or undefined. */
  ipv4Of(ifname: string): string | undefined {
    return nodeOs.networkInterfaces()[ifname]?.find((x) => x.family === 'IPv4')?.address;
  }

  /** MAC of `ifname` (6 bytes) from sysfs (SIOCGIFHWADDR's answer), or undefined. */
  macOf(ifname: string): Buffer | undefined {
    if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(ifname)) return undefined;
    let t: string | undefined;
    // sysfs reports every attribute as 4096 bytes long: read it whole (it is one short line)
    try { t = fs.readFileSync(this.os.fs.p(`/sys/class/net/${ifname}/address`), 'utf8').slice(0, 64).trim(); } catch { return undefined; }
    if (!t || !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(t)) return undefined;
    return Buffer.from(t.split(':').map((h) => parseInt(h, 16)));
  }

  /** The temporary route that lets the probe's broadcast leave without a default route (§6.2 step 2). */
  async addBroadcastRoute(ifname: string): Promise<boolean> {
    const r = await this.os.run(['ip', 'route', 'add', '255.255.255.255', 'dev', ifname]);
    if (r.code !== 0) log.warn(`Cannot add the broadcast route on ${ifname}: ${(r.stdout + r.stderr).trim() || r.spawnError}`);
    return r.code === 0;
  }
  async removeBroadcastRoute(ifname: string): Promise<void> {
    const r = await this.os.run(['ip', 'route', 'del', '255.255.255.255', 'dev', ifname]);
    if (r.code !== 0) log.warn(`Cannot remove the broadcast route on ${ifname}: ${(r.stdout + r.stderr).trim() || r.spawnError}`);
  }

  /** §6.2 step 4 / §6.9: accept DHCP replies (udp/68) in the filter table; the rule stays. iptables only. */
  async allowDhcpReplies(): Promise<void> {
    if (!this.os.which('iptables')) return;
    const rule = ['INPUT', '-p', 'udp', '--dport', '68', '-j', 'ACCEPT'];
    await this.os.run(['iptables', '-D', ...rule]);
    const r = await this.os.run(['iptables', '-I', ...rule]);
    if (r.code !== 0) log.warn(`Cannot open udp/68 for DHCP replies: ${(r.stdout + r.stderr).trim() || r.spawnError}`);
  }

  /**
   * Route repair (§6.3, FIX forms): the default route through `gateway` when there is none, and each option-249
   * route. Errors (e.g. "File exists") are logged at VERBOSE and ignored. Returns the routes added.
   */
  async configureRoutes(ifname: string, gateway: string | undefined, routes: StaticRoute[]): Promise<string[]> {
    const added: string[] = [];
    if (gateway && !this.hasDefaultRoute()) {
      const r = await this.os.run(['ip', 'route', 'add', 'default', 'via', gateway, 'dev', ifname]);
      if (r.code === 0) added.push(`default via ${gateway}`);
      else log.verbose(`ip route add default via ${gateway}: ${(r.stdout + r.stderr).trim() || r.spawnError}`);
    }
    for (const rt of routes) {
      const dest = `${rt.network}/${rt.prefix}`;
      const r = await this.os.run(['ip', 'route', 'add', dest, 'via', rt.gateway, 'dev', ifname]);
      if (r.code === 0) added.push(`${dest} via ${rt.gateway}`);
      else log.verbose(`ip route add ${dest} via ${rt.gateway}: ${(r.stdout + r.stderr).trim() || r.spawnError}`);
    }
    return added;
  }

  /** The wire-server firewall backend: iptables where installed, else nft, else none (§6.8.2–§6.8.3). */
  firewall(ip: string, uid = 0): Firewall | undefined {
    if (this.os.which('iptables')) return new IptablesFirewall(this.os.run, ip, uid);
    if (this.os.which('nft')) return new NftFirewall(this.os.run, ip, uid);
    return undefined;
  }

  /** Process names (/proc/<pid>/comm, at most 15 characters) of the DHCP clients of §9.4's PID column: dhclient
   *  (dhclient3 on Ubuntu 12), dhcpcd, systemd-networkd, SUSE's wickedd-dhcp4, and NetworkManager (NEW: its own client). */
  dhcpClientNames(): string[] { return ['dhclient', 'dhclient3', 'dhcpcd', 'systemd-network', 'wickedd-dhcp4', 'NetworkManager']; }

  /** PIDs of the DHCP client (a scan of /proc/<pid>/comm, no fork), ascending. */
  dhcpClientPids(): number[] {
    const names = new Set(this.dhcpClientNames());
    const out: number[] = [];
    for (const e of this.os.fs.readdir('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try { if (names.has(this.os.fs.readText(`/proc/${e}/comm`, 256)?.trim() ?? '')) out.push(Number(e)); } catch { /* gone */ }
    }
    return out.sort((a, b) => a - b);
  }

  /** Whether `pid` still runs (§6.4: /proc/<pid> exists). */
  pidAlive(pid: number): boolean { return this.os.fs.exists(`/proc/${pid}`); }

  /** Whether this distro keeps persistent-net rules that must be moved away (§6.5: not on Debian/Ubuntu/Gaia). */
  removesPersistentNetRules(): boolean { return this.os.removesPersistentNetRules(); }

  /**
   * §6.5: moves the persistent-net udev rules into Lib.Dir so a re-deployed VM (new MAC) keeps `eth0`. Only regular
   * files are moved (REF `os.path.isfile`: a generator masked by a link to /dev/null stays masked); an older saved copy
   * is replaced. A saved copy stays while no rule file exists (REF deleted it on every pass, which left
   * `restorePersistentNetRules` nothing to restore). Works across file systems (/var on its own partition). Returns
   * the files moved (a second run moves nothing).
   */
  removePersistentNetRules(libDir: string): string[] {
    if (!this.removesPersistentNetRules()) return [];
    const moved: string[] = [];
    for (const f of PERSISTENT_NET_RULES) {
      if (!this.os.fs.stat(f)?.isFile()) continue;
      const dst = `${libDir}/${f.slice(f.lastIndexOf('/') + 1)}`;
      this.os.fs.mkdir(libDir, 0o700);
      this.moveFile(f, dst);
      log.warn(`Moved ${f} to ${dst} (keeps the interface name stable when the MAC changes)`);
      moved.push(f);
    }
    return moved;
  }

  /**
   * The inverse of removePersistentNetRules (REF `restore_rules_files`), for an uninstall path only: each saved rule
   * file goes back where it came from when the original is missing. Returns the files restored.
   */
  restorePersistentNetRules(libDir: string): string[] {
    const restored: string[] = [];
    for (const f of PERSISTENT_NET_RULES) {
      const saved = `${libDir}/${f.slice(f.lastIndexOf('/') + 1)}`;
      if (this.os.fs.lstat(f) || !this.os.fs.stat(saved)?.isFile()) continue;
      this.os.fs.mkdir(f.slice(0, f.lastIndexOf('/')), 0o755);
      this.moveFile(saved, f);
      log.info(`Restored ${f} from ${saved}`);
      restored.push(f);
    }
    return restored;
  }

  /** rename(2), or across file systems a copy (atomic, same mode) and an unlink of the source; `dst` is replaced. */
  private moveFile(src: string, dst: string): void {
    try {
      fs.renameSync(this.os.fs.p(src), this.os.fs.p(dst));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
      const st = fs.statSync(this.os.fs.p(src));
      this.os.fs.write(dst, readFileCapped(this.os.fs.p(src), 4 * 1024 * 1024), { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
      fs.rmSync(this.os.fs.p(src), { force: true });
    }
  }
}

/** The BSDs: the probe, route repair and firewall are not implemented there (README lists it). */
export class BsdNet extends LinuxNet {
  override async addBroadcastRoute(): Promise<boolean> { return false; }
  override async allowDhcpReplies(): Promise<void> { /* no iptables */ }
  override async configureRoutes(): Promise<string[]> { return []; }
  override firewall(): Firewall | undefined { return undefined; }
  override removesPersistentNetRules(): boolean { return false; }
  override routeText(): string { return ''; }
}
