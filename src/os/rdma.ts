/**
 * RDMA (provisioning-and-os.md §7.5, REF `common/rdma.py`, `pa/rdma/*`) through the OS object: the firmware's
 * NetworkDirect driver version from the Hyper-V KVP pool, the per-distro driver check and install (SLES > 11 with
 * zypper, CentOS/RHEL with yum/rpm and the packages under /opt/microsoft/rdma, Ubuntu with the versioned
 * hv_network_direct module alias or a linux-azure kernel update), and the device set-up (dat.conf address, module
 * load, /dev/hvnd_rdma for drivers older than 4.1, the RDMA interface up with its address). Reboots (`shutdown -r
 * now`) only where the spec says a new driver needs one. Every command is an argv array; nothing here is proven on RDMA
 * hardware (see README).
 */
import * as fs from 'node:fs';
import type { LinuxOS } from './linux';
import { log } from '../core/log';
import { kernelRelease, moduleLoaded } from './kernel';
import { compareVersions } from './version-compare';

export const KVP_POOL_0 = '/var/lib/hyperv/.kvp_pool_0';
const MODULE = 'hv_network_direct';
const RDMA_PKG_DIR = '/opt/microsoft/rdma';

/** The host's NetworkDirect driver version (`NdDriverVersion\0+(\d\d\d\.\d)` in KVP pool 0), or undefined. */
export function firmwareRdmaVersion(os: LinuxOS): string | undefined {
  if (!os.fs.exists(KVP_POOL_0)) { log.info(`RDMA: ${KVP_POOL_0} not found (is the KVP daemon running?)`); return undefined; }
  let text: string;
  try { text = fs.readFileSync(os.fs.p(KVP_POOL_0)).toString('latin1'); } catch { return undefined; }
  return /NdDriverVersion\0+(\d\d\d\.\d)/.exec(text)?.[1];
}

/** What a driver check concluded. */
export interface DriverOutcome { action: 'up-to-date' | 'installed' | 'aliased' | 'kernel-updated' | 'none'; reboot: boolean; detail?: string }

abstract class RdmaDriver {
  constructor(protected readonly os: LinuxOS) {}
  abstract readonly name: string;
  /** Checks the driver against `fw` and installs what is missing. Throws on a failed command that must succeed. */
  abstract ensure(fw: string, updateKernel: boolean): Promise<DriverOutcome>;
  protected out(r: { stdout: string; stderr: string; spawnError?: string }): string { return (r.stdout + r.stderr).trim() || r.spawnError || ''; }
  /** `modprobe --first-time hv_network_direct`: whether it loaded (an already loaded module counts as not loaded). */
  protected async loadModule(): Promise<boolean> {
    const r = await this.os.run(['modprobe', '--first-time', MODULE], { timeoutMs: 120_000 });
    if (r.code !== 0) log.warn(`RDMA: modprobe --first-time ${MODULE} failed: ${this.out(r)}`);
    return r.code === 0;
  }
}

/** SLES > 11: the `msft-rdma-kmp-default` package matching the firmware, from the repositories or /opt/microsoft/rdma. */
class SuseRdma extends RdmaDriver {
  readonly name = 'SUSE';
  async ensure(fw: string): Promise<DriverOutcome> {
    const pkg = 'msft-rdma-kmp-default';
    const se = await this.os.run(['zypper', '-n', 'se', '-s', pkg], { timeoutMs: 300_000 });
    const rows = se.stdout.split('\n').map((l) => l.split('|').map((f) => f.trim())).filter((f) => f.length >= 4 && f[1] === pkg);
    if (rows.some((f) => f[0] === 'i' && f[3].includes(fw))) return { action: 'up-to-date', reboot: false, detail: `${pkg} for ${fw} is installed` };
    const hadOld = rows.some((f) => f[0] === 'i');
    if (hadOld) {
      log.info(`RDMA: removing the installed ${pkg} (not for ${fw})`);
      await this.os.runOk(['zypper', '-n', 'rm', pkg], { timeoutMs: 300_000 }, `zypper rm ${pkg}`);
    }
    const repo = rows.find((f) => f[3].includes(fw));
    let installed = false;
    if (repo) {
      const r = await this.os.run(['zypper', '-n', 'in', `${pkg}-${repo[3]}`], { timeoutMs: 600_000 });
      installed = r.code === 0;
      if (!installed) log.warn(`RDMA: zypper in ${pkg}-${repo[3]} failed: ${this.out(r)}`);
    }
    if (!installed) {
      const local = this.os.fs.readdir(RDMA_PKG_DIR).filter((f) => f.endsWith('.rpm') && f.includes(fw));
      for (const f of local) {
        const r = await this.os.run(['zypper', '-n', '--no-refresh', 'in', `${RDMA_PKG_DIR}/${f}`], { timeoutMs: 600_000 });
        if (r.code === 0 || r.code === 106) { installed = true; break; } // 106: some repositories could not be refreshed
        log.warn(`RDMA: zypper in ${f} failed: ${this.out(r)}`);
      }
    }
    if (!installed) throw new Error(`no ${pkg} package for the firmware's driver ${fw} (repositories or ${RDMA_PKG_DIR})`);
    const loaded = await this.loadModule();
    return { action: 'installed', reboot: !loaded || hadOld, detail: `${pkg} for ${fw}` };
  }
}

/** CentOS/RHEL: a KVP daemon, and `microsoft-hyper-v-rdma` of the firmware's build from /opt/microsoft/rdma/rhel<MM>. */
class CentOSRdma extends RdmaDriver {
  readonly name = 'CentOS';
  async ensure(fw: string): Promise<DriverOutcome> {
    if (!this.os.processRunning('hypervkvpd') && !this.os.processRunning('hv_kvp_daemon')) {
      log.info('RDMA: no KVP daemon runs: installing hypervkvpd');
      await this.os.runOk(['yum', 'install', '-y', '-q', 'hypervkvpd'], { timeoutMs: 600_000 }, 'yum install hypervkvpd');
      return { action: 'installed', reboot: true, detail: 'hypervkvpd' };
    }
    const q = await this.os.run(['rpm', '-q', 'microsoft-hyper-v-rdma']);
    if (q.code === 0 && q.stdout.includes(`-${fw}-`)) return { action: 'up-to-date', reboot: false, detail: q.stdout.trim() };
    log.info(`RDMA: microsoft-hyper-v-rdma is ${q.code === 0 ? q.stdout.trim() : 'not installed'}; the firmware wants ${fw}`);
    await this.os.run(['yum', 'clean', 'all'], { timeoutMs: 300_000 });
    await this.os.run(['yum', 'updateinfo'], { timeoutMs: 600_000 });
    const re = await this.os.run(['yum', 'reinstall', '-y', 'msft-rdma-drivers'], { timeoutMs: 600_000 });
    if (re.code !== 0) await this.os.runOk(['yum', 'install', '-y', 'msft-rdma-drivers'], { timeoutMs: 600_000 }, 'yum install msft-rdma-drivers');
    const [maj, min = '0'] = this.os.distro.version.split('.');
    const dir = `${RDMA_PKG_DIR}/rhel${maj}${min}`;
    const files = this.os.fs.readdir(dir);
    const kmod = files.find((f) => f.startsWith('kmod-microsoft-hyper-v-rdma-') && f.includes(`-${fw}-`) && f.endsWith('.x86_64.rpm'));
    const user = files.find((f) => f.startsWith('microsoft-hyper-v-rdma-') && f.includes(`-${fw}-`) && f.endsWith('.rpm'));
    if (!kmod || !user) throw new Error(`no RDMA packages for ${fw} in ${dir}`);
    for (const old of ['kmod-microsoft-hyper-v-rdma', 'microsoft-hyper-v-rdma', 'kmod-microsoft-hyper-v', 'microsoft-hyper-v']) {
      if ((await this.os.run(['rpm', '-q', old])).code === 0) await this.os.runOk(['rpm', '-e', '--nodeps', old], undefined, `rpm -e ${old}`);
    }
    await this.os.runOk(['rpm', '-i', `${dir}/${kmod}`, `${dir}/${user}`], { timeoutMs: 600_000 }, 'rpm -i RDMA packages');
    const loaded = (await this.os.run(['modprobe', MODULE], { timeoutMs: 120_000 })).code === 0;
    return { action: 'installed', reboot: !loaded, detail: `${kmod}, ${user}` };
  }
}

/** Ubuntu: the versioned module `hv_network_direct_<fw>` through an alias, or (UpdateRdmaDriver) a newer linux-azure. */
class UbuntuRdma extends RdmaDriver {
  readonly name = 'Ubuntu';
  static readonly CONF = '/etc/modprobe.d/vmbus-rdma.conf';
  async ensure(fw: string, updateKernel: boolean): Promise<DriverOutcome> {
    const want = `${MODULE}_${fw.replace(/\./g, '_')}`;
    const res = await this.os.run(['modprobe', '-R', MODULE]);
    if (res.code === 0 && res.stdout.trim().split('\n').includes(want)) return { action: 'up-to-date', reboot: false, detail: want };
    if ((await this.os.run(['modinfo', want])).code === 0) {
      const line = `alias ${MODULE} ${want}`;
      const old = this.os.fs.readText(UbuntuRdma.CONF) ?? '';
      const lines = old.split('\n').filter((l) => l !== '' && !new RegExp(`^\\s*alias\\s+${MODULE}\\s`).test(l));
      const text = `${[...lines, line].join('\n')}\n`;
      if (text !== old) await this.os.writeSystemFile(UbuntuRdma.CONF, text, 0o644);
      return { action: 'aliased', reboot: false, detail: line };
    }
    const rel = kernelRelease(this.os) ?? '';
    if (!updateKernel || !rel.endsWith('-azure')) {
      return { action: 'none', reboot: false, detail: `no ${want} module for kernel ${rel}${updateKernel ? ' (not an -azure kernel)' : '; OS.UpdateRdmaDriver=n'}` };
    }
    await this.os.runOk(['apt-get', 'update'], { timeoutMs: 600_000 }, 'apt-get update');
    const show = await this.os.runOk(['apt-cache', 'show', '--no-all-versions', 'linux-azure'], undefined, 'apt-cache show linux-azure');
    const avail = /^Version:\s*(\S+)/m.exec(show.stdout)?.[1];
    const current = rel.replace(/-azure$/, '').replace(/-/g, '.');
    if (!avail || compareVersions(avail.split('.').slice(0, 4).join('.'), current) <= 0) {
      return { action: 'none', reboot: false, detail: `linux-azure ${avail ?? '(unknown)'} is not newer than ${rel}` };
    }
    await this.os.runOk(['apt-get', '-y', 'install', 'linux-azure'], { timeoutMs: 1_800_000 }, 'apt-get install linux-azure');
    return { action: 'kernel-updated', reboot: true, detail: `linux-azure ${avail}` };
  }
}

/** The driver handler for this distro (§7.5 step 1), or undefined ("No RDMA handler"). */
export function rdmaDriverFor(os: LinuxOS): RdmaDriver | undefined {
  const id = os.distro.id.toLowerCase();
  const major = Number.parseInt(os.distro.version.split('.')[0] ?? '', 10);
  if (['sles', 'sle_hpc', 'suse'].includes(id) && major > 11) return new SuseRdma(os);
  if (['centos', 'rhel', 'redhat', 'almalinux', 'rocky'].includes(id)) return new CentOSRdma(os);
  if (id === 'ubuntu') return new UbuntuRdma(os);
  return undefined;
}

export const DAT_CONF = ['/etc/dat.conf', '/etc/rdma/dat.conf', '/usr/local/etc/dat.conf'];
const DAT_RE = /^(ofa-v2-ib0 u2\.0 nonthreadsafe default libdaplofa\.so\.2 dapl\.2\.0 ")\S+( 0")/m;

/** `aabbccddeeff` → `aa:bb:cc:dd:ee:ff` (lower case); a MAC that already has colons is kept. Undefined when invalid. */
export function normalizeMac(mac: string): string | undefined {
  const hex = mac.replace(/[:-]/g, '').toLowerCase();
  return /^[0-9a-f]{12}$/.test(hex) ? hex.match(/../g)!.join(':') : undefined;
}

/** Sets the address of the ofa-v2-ib0 entry in the first dat.conf that exists. Returns the file changed, if any. */
export async function updateDatConf(os: LinuxOS, ip: string): Promise<string | undefined> {
  const file = DAT_CONF.find((f) => os.fs.exists(f));
  if (!file) { log.info(`RDMA: no dat.conf (${DAT_CONF.join(', ')})`); return undefined; }
  const t = os.fs.readText(file) ?? '';
  if (!DAT_RE.test(t)) { log.warn(`RDMA: ${file} has no ofa-v2-ib0 entry`); return undefined; }
  const nt = t.replace(DAT_RE, `$1${ip}$2`);
  if (nt === t) return undefined;
  await os.writeSystemFile(file, nt, 0o644);
  log.info(`RDMA: ${file}: ofa-v2-ib0 address set to ${ip}`);
  return file;
}

/** The interface (`eth<n>`) whose MAC is `mac`, from /sys/class/net. */
export function interfaceWithMac(os: LinuxOS, mac: string): string | undefined {
  for (const n of os.fs.readdir('/sys/class/net')) {
    if (!/^eth\d+$/.test(n)) continue;
    if (os.fs.readText(`/sys/class/net/${n}/address`, 256)?.trim().toLowerCase() === mac) return n;
  }
  return undefined;
}

export interface DeviceSetupDeps { sleep?: (ms: number) => Promise<void>; waitMs?: number }

/**
 * §7.5 step 2 (after the addresses are known): dat.conf, `modprobe hv_network_direct`, the /dev/hvnd_rdma write for a
 * driver below 4.1, the interface up with `<ip>/16` (`ip`, or `ifconfig` where `ip` is missing). Idempotent: an
 * address already on the interface is replaced, not added twice. Throws on a failure that leaves RDMA unusable.
 */
export async function setupRdmaDevice(os: LinuxOS, ip: string, mac: string, deps: DeviceSetupDeps = {}): Promise<{ iface?: string }> {
  await updateDatConf(os, ip);
  if (!moduleLoaded(os, MODULE)) await os.runOk(['modprobe', MODULE], { timeoutMs: 120_000 }, `modprobe ${MODULE}`);
  const info = await os.run(['modinfo', MODULE]);
  const ver = /^version:\s*(\S+)/m.exec(info.stdout)?.[1];
  if (ver && compareVersions(ver, '4.1') < 0) {
    const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const waitMs = deps.waitMs ?? 120_000;
    let waited = 0;
    while (!os.fs.exists('/dev/hvnd_rdma') && waited < waitMs) { await sleep(1000); waited += 1000; }
    if (!os.fs.exists('/dev/hvnd_rdma')) throw new Error(`/dev/hvnd_rdma did not appear within ${waitMs / 1000} s (driver ${ver})`);
    const fd = fs.openSync(os.fs.p('/dev/hvnd_rdma'), fs.constants.O_WRONLY);
    try { fs.writeSync(fd, `rdmaMacAddress="${mac}" rdmaIPv4Address="${ip}"`); } finally { fs.closeSync(fd); }
    log.info(`RDMA: wrote the addresses to /dev/hvnd_rdma (driver ${ver})`);
  }
  const iface = interfaceWithMac(os, mac);
  if (!iface) { log.warn(`RDMA: no eth interface has the MAC ${mac}`); return {}; }
  if (os.which('ip')) {
    await os.runOk(['ip', 'link', 'set', iface, 'up'], undefined, `ip link set ${iface} up`);
    await os.runOk(['ip', 'addr', 'replace', `${ip}/16`, 'dev', iface], undefined, `ip addr replace ${ip}/16`);
  } else {
    await os.runOk(['ifconfig', iface, 'up'], undefined, `ifconfig ${iface} up`);
    await os.runOk(['ifconfig', iface, `${ip}/16`], undefined, `ifconfig ${iface} ${ip}/16`);
  }
  log.info(`RDMA: ${iface} (${mac}) is up with ${ip}/16`);
  return { iface };
}
