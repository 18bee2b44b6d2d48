/**
 * The resource disk's OS seam (provisioning-and-os.md §5): what every OS must answer — where the disk is, whether it
 * is mounted, how to prepare and mount it, how to switch a swap file on — and the parts they share (the mount table
 * parse of §5.3 with whole-device matching, the swap file written with mode 0600 at a temporary name and renamed).
 * The Linux, FreeBSD and OpenBSD variants sit beside this file; the OS object says which one applies.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LinuxOS } from '../linux';

export interface ResourceDiskSettings {
  /** `ResourceDisk.Filesystem`, lower case (ext4, ext3, xfs, btrfs, ntfs; ufs on the BSDs). */
  fs: string;
  /** `ResourceDisk.MountPoint`. */
  mountPoint: string;
  /** `ResourceDisk.MountOptions` (null: none). */
  mountOptions: string | null;
  /** `ResourceDisk.SwapSizeMB` (OpenBSD sizes its swap partition from it). */
  swapSizeMb: number;
}

export interface MountedAt { device: string; mountPoint: string }

export interface ResourceDiskPlatform {
  /** Throws when this OS cannot use the configured file system (BSD: only ufs). Returns the type to mount with. */
  checkFilesystem(fsType: string): string;
  /** The resource disk (e.g. `/dev/sdb`), or undefined when this VM size has none. */
  findDisk(): Promise<string | undefined>;
  /** Where the disk or one of its partitions is mounted, or undefined. */
  mountedAt(disk: string): Promise<MountedAt | undefined>;
  /** Prepares the partition (retype/format only where §5.4–§5.6 say so) and mounts it at `s.mountPoint`; returns the
   *  partition mounted. Throws with a clear message on failure. */
  mount(disk: string, s: ResourceDiskSettings): Promise<string>;
  /** 'file': a swap file on the mounted disk (Linux, FreeBSD); 'partition': OpenBSD's swap partition. */
  readonly swapKind: 'file' | 'partition';
  /** Whether `file` is an active swap area. */
  swapActive(file: string): Promise<boolean>;
  /** Switches the swap file off (only this file, never all swap). */
  swapOff(file: string): Promise<void>;
  /** Reserves `bytes` for `file` cheaply (Linux: fallocate); false when this OS cannot (zeros are written then). */
  preallocate(file: string, bytes: number): Promise<boolean>;
  /** Initialises and switches on the swap file (mkswap + swapon; FreeBSD: mdconfig, geli onetime with `encrypt`). */
  activateSwap(file: string, encrypt: boolean): Promise<void>;
  /** OpenBSD: switches on the swap partition of `disk`. */
  activateSwapPartition?(disk: string): Promise<void>;
}

/** `mount` output (Linux: `<dev> on <mp> type <fs> (<opts>)`; BSD: `<dev> on <mp> (<fs>, ...)`) as entries. */
export function parseMountOutput(text: string): MountedAt[] {
  const out: MountedAt[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+) on (.+?)(?: type \S+)? \(/.exec(line.trim()) ?? /^(\S+) on (\S+)/.exec(line.trim());
    if (m) out.push({ device: m[1], mountPoint: m[2] });
  }
  return out;
}

/** /proc/self/mounts (`<dev> <mp> <fs> <opts> 0 0`, spaces and tabs escaped as octal) as entries. */
export function parseProcMounts(text: string): MountedAt[] {
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text.split('\n').map((l) => l.split(' ')).filter((f) => f.length >= 3)
    .map((f) => ({ device: unescape(f[0]), mountPoint: unescape(f[1]) }));
}

/**
 * Where `disk` or a partition of it is mounted (§5.3). Whole device paths only (§5.3 FIX): `/dev/sdb` matches
 * `/dev/sdb1` but never `/dev/sdba`; BSD partition suffixes (`s1`, `p2`, `a`) are passed as `partitionSuffix`.
 */
export function findMount(mounts: string | MountedAt[], disk: string, partitionSuffix: RegExp = /^(p?[0-9]+)?$/): MountedAt | undefined {
  const list = typeof mounts === 'string' ? parseMountOutput(mounts) : mounts;
  return list.find((m) => m.device.startsWith(disk) && partitionSuffix.test(m.device.slice(disk.length)));
}

/** Follows symbolic links of an agent path inside the root (at most 16 hops); undefined when it does not resolve. */
export function resolveLink(os: LinuxOS, p: string): string | undefined {
  let cur = p;
  for (let i = 0; i < 16; i++) {
    const st = os.fs.lstat(cur);
    if (!st) return undefined;
    if (!st.isSymbolicLink()) return cur;
    const target = fs.readlinkSync(os.fs.p(cur));
    cur = path.posix.resolve(path.posix.dirname(cur), target);
  }
  return undefined;
}

const CHUNK = 8 * 1024 * 1024;

/**
 * Creates the swap file at `file` with exactly `bytes` bytes and mode 0600, atomically: it is built at
 * `<file>.tmp` (created 0600, never wider), filled by `preallocate` or else by writing zeros (in this process, without
 * blocking the event loop, the remainder at its proper offset — §5.8 FIX), then renamed over `file`.
 * Returns how the space was reserved.
 */
export async function createSwapFile(os: LinuxOS, platform: ResourceDiskPlatform, file: string, bytes: number, zerosOnly = false): Promise<'fallocate' | 'zeros'> {
  const tmp = `${file}.tmp`;
  const real = os.fs.p(tmp);
  os.fs.remove(tmp);
  const fd = fs.openSync(real, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  let how: 'fallocate' | 'zeros' = 'zeros';
  try {
    fs.fchmodSync(fd, 0o600);
    if (!zerosOnly && await platform.preallocate(tmp, bytes) && fs.fstatSync(fd).size === bytes) {
      how = 'fallocate';
    } else {
      fs.ftruncateSync(fd, 0);
      const zeros = Buffer.alloc(Math.min(CHUNK, bytes));
      const handle = await fs.promises.open(real, 'r+');
      try {
        for (let off = 0; off < bytes; off += CHUNK) {
          const n = Math.min(CHUNK, bytes - off);
          await handle.write(zeros, 0, n, off);
        }
        await handle.sync();
      } finally { await handle.close(); }
    }
  } catch (e) {
    fs.closeSync(fd);
    os.fs.remove(tmp);
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(real, os.fs.p(file));
  return how;
}
