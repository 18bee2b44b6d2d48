/**
 * The resource disk on Linux (provisioning-and-os.md §5.2–§5.8, §5.11): detection through `/dev/disk/azure/resource`
 * or Hyper-V's sysfs (Gen1 IDE port 1, Gen2 SCSI LUN 1), the partition table (parted/sfdisk: the NTFS-typed partition
 * Azure delivers is retyped 83 and formatted; any other type is kept), mkfs, mount with `-t` and the options, and the
 * swap file (fallocate, mkswap, swapon). Every command is an argv array through the OS object.
 */
import * as path from 'node:path';
import type { LinuxOS } from '../linux';
import type { ExecResult } from '../../core/exec';
import { log } from '../../core/log';
import { findMount, parseProcMounts, resolveLink, type MountedAt, type ResourceDiskPlatform, type ResourceDiskSettings } from './platform';

/** Instance GUID of Gen2's synthetic SCSI controller that carries the OS and resource disks (§5.2 step 3). */
export const GEN2_SCSI_DEVICE_ID = 'f8b3781a-1e82-4818-a1c3-63d806ec15bb';
const VMBUS = '/sys/bus/vmbus/devices';
const TWO_TIB = 2 * 1024 ** 4;

const out = (r: ExecResult): string => (r.stdout + r.stderr).trim() || r.spawnError || `exit code ${r.code}`;

export class LinuxResourceDisk implements ResourceDiskPlatform {
  readonly swapKind = 'file' as const;
  /** Checks for the partition node (§5.4 step 6): count and pause (tests shorten the pause). */
  partitionWaitMs = 5000;
  mkfsTimeoutMs = 30 * 60 * 1000;

  constructor(private readonly os: LinuxOS) {}

  checkFilesystem(fsType: string): string { return fsType; }

  // ---- §5.2 detection -----------------------------------------------------------------------------------------
  async findDisk(): Promise<string | undefined> {
    const link = resolveLink(this.os, '/dev/disk/azure/resource');
    if (link && link.startsWith('/dev/')) return link;
    const name = this.sysfsDisk();
    return name ? `/dev/${name}` : undefined;
  }

  /** The block device name of the resource disk from Hyper-V's vmbus tree: Gen1 first, then Gen2. */
  sysfsDisk(): string | undefined {
    const devices = this.os.fs.readdir(VMBUS).map((d) => ({ d, id: this.deviceId(`${VMBUS}/${d}`) }));
    for (const { d, id } of devices) {
      const f = id.split('-');
      if (f.length === 5 && f[0] === '00000000' && f[1] === '0001') {
        const name = this.findBlock(`${VMBUS}/${d}`, () => true);
        if (name) return name;
      }
    }
    for (const { d, id } of devices) {
      if (id !== GEN2_SCSI_DEVICE_ID) continue;
      const name = this.findBlock(`${VMBUS}/${d}`, (parent) => /^\d+:\d+:\d+:1$/.test(parent));
      if (name) return name;
    }
    return undefined;
  }

  private deviceId(dir: string): string {
    return (this.os.fs.readText(`${dir}/device_id`, 4096) ?? '').replace(/[{}\s]/g, '').toLowerCase();
  }

  /** Breadth-first walk of a vmbus device's subtree (directories only, never symbolic links, bounded depth): the
   *  first `block` directory whose parent passes `parentOk` names the disk in its first child; older kernels have a
   *  `block:<name>` directory instead. */
  private findBlock(top: string, parentOk: (parent: string) => boolean): string | undefined {
    let level = [top];
    for (let depth = 0; depth < 8 && level.length; depth++) {
      const next: string[] = [];
      for (const dir of level) {
        for (const e of this.os.fs.readdir(dir)) {
          const p = `${dir}/${e}`;
          const st = this.os.fs.lstat(p);
          if (!st?.isDirectory()) continue;
          if (e === 'block' && parentOk(path.posix.basename(dir))) {
            const first = this.os.fs.readdir(p)[0];
            if (first && /^[A-Za-z0-9]+$/.test(first)) return first;
          }
          const m = /^block:([A-Za-z0-9]+)$/.exec(e);
          if (m && parentOk(path.posix.basename(dir))) return m[1];
          next.push(p);
        }
      }
      level = next;
    }
    return undefined;
  }

  // ---- §5.3 already mounted -----------------------------------------------------------------------------------
  async mountedAt(disk: string): Promise<MountedAt | undefined> {
    // The kernel's table of this mount namespace (as seen from our root) saves a `mount` process; `mount` otherwise.
    const proc = this.os.fs.readText('/proc/self/mounts', 4 * 1024 * 1024);
    if (proc !== undefined && proc.trim()) return findMount(parseProcMounts(proc), disk);
    const r = await this.os.run(['mount']);
    if (r.code !== 0) throw new Error(`Cannot list mounts: ${out(r)}`);
    return findMount(r.stdout, disk);
  }

  // ---- §5.4–§5.6 partition, format, mount ----------------------------------------------------------------------
  partitionOf(disk: string): string { return /\d$/.test(disk) ? `${disk}p1` : `${disk}1`; }

  async mount(disk: string, s: ResourceDiskSettings): Promise<string> {
    const part = this.partitionOf(disk);
    this.os.fs.mkdir(s.mountPoint, 0o755);
    this.os.fs.chmod(s.mountPoint, 0o755);
    const format = await this.preparePartitionTable(disk, s.fs);
    await this.waitForPartition(part);
    if (format) await this.format(part, s.fs);
    let r = await this.mountOnce(part, s);
    if (r.code !== 0 && !alreadyMounted(r)) {
      log.warn(`Mounting ${part} failed (${out(r)}): re-reading the partition table and trying again`);
      await this.rereadPartitionTable(disk);
      r = await this.mountOnce(part, s);
      if (r.code !== 0 && !alreadyMounted(r) && s.fs !== 'ntfs') {
        // Last resort (§5.6 step 3); never for ntfs (§5.11 NEW): that would erase what Windows left there.
        log.warn(`Mounting ${part} failed again: formatting it with ${s.fs}`);
        await this.format(part, s.fs);
        r = await this.mountOnce(part, s);
      }
      if (r.code !== 0 && !alreadyMounted(r)) throw new Error(`Could not mount ${part} after syncing partition table: [${r.code}] ${out(r)}`);
    }
    if (alreadyMounted(r)) log.warn(`${part} is already mounted: ${out(r)}`);
    return part;
  }

  /** §5.4: returns whether the partition must be formatted (retyped from NTFS, re-made on GPT, or a new label). */
  private async preparePartitionTable(disk: string, fsType: string): Promise<boolean> {
    const pr = await this.os.run(['parted', '-s', disk, 'print']);
    if (pr.code !== 0 && !pr.spawnError) {
      if (/unrecogni[sz]ed disk label/i.test(out(pr))) {
        // NEW (§5.4 step 5): a blank disk gets one partition spanning it.
        const label = (await this.diskBytes(disk)) >= TWO_TIB ? 'gpt' : 'msdos';
        log.info(`${disk} has no partition table: creating a ${label} label with one partition`);
        await this.os.runOk(['parted', '-s', disk, 'mklabel', label, 'mkpart', 'primary', '0%', '100%'], undefined, `Creating a partition table on ${disk}`);
        await this.rereadPartitionTable(disk);
        return true;
      }
      throw new Error(`Could not determine partition info for ${disk}: ${out(pr)}`);
    }
    if (!pr.spawnError && /Partition Table:\s*gpt/i.test(pr.stdout)) {
      const count = pr.stdout.split('\n').filter((l) => /^\s*\d/.test(l)).length;
      if (count <= 1) return false;
      log.info(`GPT disk ${disk} has ${count} partitions: re-making one`);
      for (let i = 1; i <= count; i++) await this.os.runOk(['parted', '-s', disk, 'rm', String(i)], undefined, `Removing partition ${i} of ${disk}`);
      await this.os.runOk(['parted', '-s', disk, 'mkpart', 'primary', '0%', '100%'], undefined, `Creating a partition on ${disk}`);
      await this.rereadPartitionTable(disk);
      return true;
    }
    // MBR (or parted missing): the type of partition 1.
    let t = await this.os.run(['sfdisk', '--part-type', '-f', disk, '1', '-n']);
    if (t.code !== 0) t = await this.os.run(['sfdisk', '-c', '-f', disk, '1', '-n']);
    if (t.code !== 0) throw new Error(`Could not determine partition info for ${disk}: ${out(t)}`);
    const type = t.stdout.trim();
    if (type === '7' && fsType !== 'ntfs') {
      log.info(`The partition of ${disk} is NTFS-typed (7): setting type 83 and formatting it with ${fsType}`);
      // --no-tell-kernel: sfdisk's own re-read starts with a sync() of every file system (≈300 ms on a busy host);
      // the re-read below does it for this disk only. Older util-linux (< 2.28) lacks the flag, then plain, then -c.
      let w = await this.os.run(['sfdisk', '--no-tell-kernel', '--part-type', disk, '1', '83']);
      if (w.code !== 0) w = await this.os.run(['sfdisk', '--part-type', disk, '1', '83']);
      if (w.code !== 0) w = await this.os.run(['sfdisk', '-c', disk, '1', '83']);
      if (w.code !== 0) throw new Error(`Could not change the partition type of ${disk}: ${out(w)}`);
      await this.rereadPartitionTable(disk);
      return true;
    }
    log.info(`The partition type is ${type}`);
    return false;
  }

  private async diskBytes(disk: string): Promise<number> {
    const r = await this.os.run(['blockdev', '--getsize64', disk]);
    const n = Number(r.stdout.trim());
    return r.code === 0 && Number.isFinite(n) ? n : 0;
  }

  /** `blockdev --rereadpt` (§5.4 lists `sfdisk -R` first, but util-linux removed it in 2.26: a wasted process on every
   *  current distro), `sfdisk -R` only where blockdev is missing; failure is only logged (a disk in use refuses). */
  async rereadPartitionTable(disk: string): Promise<void> {
    let r = await this.os.run(['blockdev', '--rereadpt', disk]);
    if (r.spawnError) r = await this.os.run(['sfdisk', '-R', disk]);
    if (r.code !== 0) log.verbose(`Re-reading the partition table of ${disk} failed: ${out(r)}`);
  }

  private async waitForPartition(part: string): Promise<void> {
    for (let i = 0; i < 5; i++) {
      if (this.os.fs.exists(part)) return;
      if (i < 4) await new Promise((r) => setTimeout(r, this.partitionWaitMs));
    }
    throw new Error(`Partition was not created [${part}]`);
  }

  /** §5.5: `mkfs.<fs> -F|-f <part>`; the mount that follows is the test, a failure is logged. */
  async format(part: string, fsType: string): Promise<void> {
    const force = fsType === 'xfs' || fsType === 'btrfs' ? '-f' : '-F';
    log.info(`Formatting ${part} with ${fsType}`);
    const r = await this.os.run([`mkfs.${fsType}`, force, part], { timeoutMs: this.mkfsTimeoutMs });
    if (r.code !== 0) log.warn(`mkfs.${fsType} ${part} failed: ${out(r)}`);
  }

  private mountOnce(part: string, s: ResourceDiskSettings): Promise<ExecResult> {
    const argv = ['mount', '-t', s.fs];
    if (s.mountOptions) argv.push('-o', s.mountOptions);
    argv.push(part, s.mountPoint);
    return this.os.run(argv, { timeoutMs: 120_000 });
  }

  // ---- §5.8 swap -------------------------------------------------------------------------------------------------
  async swapActive(file: string): Promise<boolean> {
    const r = await this.os.run(['swapon', '-s']);
    if (r.code !== 0) return false;
    return r.stdout.split('\n').some((l) => l.trim().split(/\s+/)[0] === file);
  }

  async swapOff(file: string): Promise<void> {
    await this.os.runOk(['swapoff', file], undefined, `swapoff ${file}`);
  }

  async preallocate(file: string, bytes: number): Promise<boolean> {
    const r = await this.os.run(['fallocate', '-l', String(bytes), file], { timeoutMs: 120_000 });
    if (r.code !== 0) log.verbose(`fallocate ${file} failed (${out(r)}): writing zeros`);
    return r.code === 0;
  }

  async activateSwap(file: string): Promise<void> {
    await this.os.runOk(['mkswap', file], { timeoutMs: 120_000 }, `mkswap ${file}`);
    const r = await this.os.run(['swapon', file], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`Failed to enable swap file ${file}: ${out(r)}`);
  }
}

function alreadyMounted(r: ExecResult): boolean {
  return r.code === 32 && /already mounted/i.test(r.stdout + r.stderr);
}
