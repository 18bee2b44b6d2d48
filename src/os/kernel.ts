/**
 * Kernel tweaks through the OS object (provisioning-and-os.md §7.1–§7.3, §7.8): the running kernel's release, the
 * Hyper-V entropy table mixed into /dev/random, the SCSI disk timeouts in sysfs (Linux) or the CAM sysctl (FreeBSD),
 * and loading the ATAPI driver `ata_piix`. Files are read through the root prefix, so unit tests run on a temp dir.
 */
import type { LinuxOS } from './linux';
import { log, errorText } from '../core/log';
import * as fs from 'node:fs';

/** The running kernel's release (`uname -r`), from /proc/sys/kernel/osrelease; undefined when unreadable. */
export function kernelRelease(os: LinuxOS): string | undefined {
  return os.fs.readText('/proc/sys/kernel/osrelease', 4096)?.trim() || undefined;
}

/**
 * W20's NUMA test (§7.1): `-` → `.`, split on `.`, the first three fields as integers; true only for ≤ 2.6.37
 * (major ≤ 2, minor ≤ 6 and patch ≤ 37). A release that does not parse is not affected.
 */
export function needsNumaOff(release: string): boolean {
  const f = release.replace(/-/g, '.').split('.').slice(0, 3).map((x) => Number.parseInt(x, 10));
  if (f.length < 3 || f.some((n) => !Number.isFinite(n))) return false;
  const [major, minor, patch] = f;
  return !(major > 2 || minor > 6 || patch > 37);
}

const OEM0 = '/sys/firmware/acpi/tables/OEM0';

/**
 * §7.2: writes the Hyper-V OEM0 ACPI table to /dev/random (mixed in, not credited). Returns the bytes written, 0 when
 * there is no table. Never throws: every error is ignored (logged at VERBOSE).
 */
export function seedEntropy(os: LinuxOS): number {
  if (os.resourceDiskFlavor() !== 'linux') return 0;
  let data: Buffer;
  try { data = fs.readFileSync(os.fs.p(OEM0)); } catch { return 0; }
  if (data.length === 0) return 0;
  try {
    // /dev/random is a device: opened for writing without O_CREAT, so a missing device never turns into a file.
    const fd = fs.openSync(os.fs.p('/dev/random'), fs.constants.O_WRONLY);
    try { fs.writeSync(fd, data); } finally { fs.closeSync(fd); }
    return data.length;
  } catch (e) {
    log.verbose(`Hyper-V entropy: cannot write /dev/random: ${errorText(e)}`);
    return 0;
  }
}

/** One disk whose timeout was changed. */
export interface TimeoutChange { dev: string; from: string; to: string }

/**
 * §7.3 on Linux: for every `sd*` entry of /sys/block, sets `device/timeout` to `value` where its first line differs.
 * Devices that vanish between the listing and the read or write are skipped; a write that fails is logged and the
 * others go on. Returns what changed.
 */
export function setScsiTimeouts(os: LinuxOS, value: string): TimeoutChange[] {
  const out: TimeoutChange[] = [];
  for (const dev of os.fs.readdir('/sys/block')) {
    if (!dev.startsWith('sd') || dev.includes('/')) continue;
    const file = `/sys/block/${dev}/device/timeout`;
    let cur: string;
    try {
      cur = (fs.readFileSync(os.fs.p(file), 'utf8').split('\n')[0] ?? '').trim();
    } catch { continue; } // vanished, or not a SCSI device
    if (cur === value) continue;
    try {
      // A sysfs attribute: written in place (no temp file + rename there), never created.
      const fd = fs.openSync(os.fs.p(file), fs.constants.O_WRONLY | fs.constants.O_TRUNC);
      try { fs.writeSync(fd, value); } finally { fs.closeSync(fd); }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`Cannot set the SCSI timeout of ${dev}: ${errorText(e)}`);
      continue;
    }
    log.info(`Set block dev timeout: ${dev} with timeout: ${value}`);
    out.push({ dev, from: cur, to: value });
  }
  return out;
}

/** §7.3 on FreeBSD: `sysctl kern.cam.da.default_timeout=<n>`; throws when it fails. */
export async function setCamTimeout(os: LinuxOS, value: string): Promise<void> {
  await os.runOk(['sysctl', `kern.cam.da.default_timeout=${value}`], undefined, 'sysctl kern.cam.da.default_timeout');
}

/** Whether a module is loaded (a line of /proc/modules starts with its name): what `lsmod | grep` answers, unforked. */
export function moduleLoaded(os: LinuxOS, name: string): boolean {
  return (os.fs.readText('/proc/modules', 4 * 1024 * 1024) ?? '').split('\n').some((l) => l.split(' ')[0] === name);
}

/**
 * §7.8: loads `ata_piix` when it is not loaded — `modprobe ata_piix` (handles compressed modules), else `insmod` of
 * /lib/modules/<release>/kernel/drivers/ata/ata_piix.ko when that file exists — then checks again up to 3 times,
 * `pauseMs` apart. Failures are warnings; returns whether the module is loaded.
 */
export async function loadAtapiDriver(os: LinuxOS, pauseMs = 1000): Promise<boolean> {
  if (moduleLoaded(os, 'ata_piix')) return true;
  const r = await os.run(['modprobe', 'ata_piix'], { timeoutMs: 60_000 });
  if (r.code !== 0) {
    const ko = `/lib/modules/${kernelRelease(os) ?? ''}/kernel/drivers/ata/ata_piix.ko`;
    if (os.fs.exists(ko)) {
      const i = await os.run(['insmod', ko], { timeoutMs: 60_000 });
      if (i.code !== 0) log.warn(`Error while loading the ATAPI driver: ${(i.stdout + i.stderr).trim() || i.spawnError}`);
    } else {
      log.warn(`Error while loading the ATAPI driver: ${(r.stdout + r.stderr).trim() || r.spawnError || `modprobe exit ${r.code}`}`);
    }
  }
  for (let i = 0; i < 3; i++) {
    if (moduleLoaded(os, 'ata_piix')) return true;
    await new Promise((res) => setTimeout(res, pauseMs));
  }
  const ok = moduleLoaded(os, 'ata_piix');
  if (!ok) log.warn('The ATAPI driver ata_piix is not loaded');
  return ok;
}
