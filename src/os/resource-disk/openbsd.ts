/**
 * The resource disk on OpenBSD (provisioning-and-os.md §5.10): disk `wd1`, partition `wd1a`, ffs (`ufs`/`ufs2` map to
 * it); `mount -t ffs`, and only when that fails a new MBR (`fdisk -yi`), a disklabel from a template on stdin (with
 * a swap partition `b` when `ResourceDisk.SwapSizeMB` > 0, capped at 512 GiB) and `newfs -O2`. Swap is the partition,
 * switched on with `swapctl -a`. Every command is an argv array.
 */
import type { LinuxOS } from '../linux';
import type { ExecResult } from '../../core/exec';
import { log } from '../../core/log';
import { findMount, type MountedAt, type ResourceDiskPlatform, type ResourceDiskSettings } from './platform';

const out = (r: ExecResult): string => (r.stdout + r.stderr).trim() || r.spawnError || `exit code ${r.code}`;
const MAX_SWAP_MB = 524288;

export class OpenBSDResourceDisk implements ResourceDiskPlatform {
  readonly swapKind = 'partition' as const;
  constructor(private readonly os: LinuxOS) {}

  checkFilesystem(fsType: string): string {
    if (fsType === 'ufs' || fsType === 'ufs2' || fsType === 'ffs') return 'ffs';
    throw new Error(`Unsupported filesystem type:${fsType}, only ufs/ffs is supported.`);
  }

  async findDisk(): Promise<string | undefined> { return '/dev/wd1'; }

  async mountedAt(disk: string): Promise<MountedAt | undefined> {
    const r = await this.os.run(['mount']);
    if (r.code !== 0) throw new Error(`Cannot list mounts: ${out(r)}`);
    return findMount(r.stdout, disk, /^[a-p]?$/);
  }

  async mount(disk: string, s: ResourceDiskSettings): Promise<string> {
    const part = `${disk}a`;
    const name = disk.replace(/^\/dev\//, '');
    this.os.fs.mkdir(s.mountPoint, 0o755);
    this.os.fs.chmod(s.mountPoint, 0o755);
    const argv = ['mount', '-t', 'ffs', ...(s.mountOptions ? ['-o', s.mountOptions] : []), part, s.mountPoint];
    let r = await this.os.run(argv);
    if (r.code === 0) return part;
    log.info(`Mounting ${part} failed (${out(r)}): partitioning and formatting ${name}`);
    await this.os.runOk(['/sbin/fdisk', '-yi', name], undefined, `fdisk ${name}`);
    const swapMb = Math.min(Math.max(s.swapSizeMb, 0), MAX_SWAP_MB);
    if (swapMb > 0) {
      const template = `${s.mountPoint} 1G-* 50%\nswap 1-${swapMb}M 50%\n`;
      await this.os.runOk(['disklabel', '-w', '-A', '-T', '/dev/stdin', name], { input: template }, `disklabel ${name}`);
    }
    await this.os.runOk(['newfs', '-O2', `${name}a`], { timeoutMs: 30 * 60 * 1000 }, `newfs ${name}a`);
    r = await this.os.run(argv);
    if (r.code !== 0) throw new Error(`Could not mount ${part}: [${r.code}] ${out(r)}`);
    return part;
  }

  async swapActive(dev: string): Promise<boolean> {
    const r = await this.os.run(['swapctl', '-l']);
    return r.code === 0 && r.stdout.split('\n').some((l) => l.trim().split(/\s+/)[0] === dev);
  }
  async swapOff(dev: string): Promise<void> { await this.os.runOk(['swapctl', '-d', dev]); }
  async preallocate(): Promise<boolean> { return false; }
  async activateSwap(): Promise<void> { throw new Error('OpenBSD swaps on a partition, not a file'); }

  async activateSwapPartition(disk: string): Promise<void> {
    const dev = `${disk}b`;
    if (await this.swapActive(dev)) { log.info(`Swap already enabled on ${dev}`); return; }
    await this.os.runOk(['swapctl', '-a', dev], undefined, `swapctl -a ${dev}`);
    log.info(`Enabled swap on ${dev}`);
  }
}
