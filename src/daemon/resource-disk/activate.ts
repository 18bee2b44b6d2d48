/**
 * Activating the resource disk (provisioning-and-os.md §5.1, §5.3, §5.7, §5.8, §5.12; DECISIONS.md D18): find the
 * disk, mount it unless it is mounted already (the OS variant prepares and formats only what §5.4 says), (re)write
 * the data-loss warning file, then keep the swap file at `ResourceDisk.SwapSizeMB`. Every step reads the current
 * state first, so a second run changes nothing that is right; a VM without a resource disk logs one line.
 */
import type { AgentContext } from '../../context';
import { errorText } from '../../core/log';
import { createSwapFile, type ResourceDiskPlatform, type ResourceDiskSettings } from '../../os/resource-disk/platform';

export const WARNING_FILE = 'DATALOSS_WARNING_README.txt';
export const WARNING_TEXT = [
  'WARNING: THIS IS A TEMPORARY DISK.',
  '',
  'Any data stored on this drive is SUBJECT TO LOSS and THERE IS NO WAY TO RECOVER IT.',
  '',
  'Please do not use this disk for storing any personal or application data.',
  '',
  'For additional details to please refer to the MSDN documentation at :',
  'http://msdn.microsoft.com/en-us/library/windowsazure/jj672979.aspx',
  '',
].join('\n');

export type DiskOutcome =
  | { kind: 'none' }
  | { kind: 'mounted'; disk: string; mountPoint: string; already: boolean; swap?: SwapOutcome };
export type SwapOutcome = 'unchanged' | 'enabled' | 'failed';

/** Loads the platform the OS object names (lazy: only the variant in use is loaded). */
export async function platformFor(ctx: AgentContext): Promise<ResourceDiskPlatform> {
  switch (ctx.os.resourceDiskFlavor()) {
    case 'freebsd': return new (await import('../../os/resource-disk/freebsd')).FreeBSDResourceDisk(ctx.os);
    case 'openbsd': return new (await import('../../os/resource-disk/openbsd')).OpenBSDResourceDisk(ctx.os);
    default: return new (await import('../../os/resource-disk/linux')).LinuxResourceDisk(ctx.os);
  }
}

export function settingsOf(ctx: AgentContext): ResourceDiskSettings {
  const c = ctx.conf;
  return {
    fs: c.s('ResourceDisk.Filesystem').trim().toLowerCase(),
    mountPoint: c.s('ResourceDisk.MountPoint').replace(/\/+$/, '') || '/mnt/resource',
    mountOptions: c.str('ResourceDisk.MountOptions')?.trim() || null,
    swapSizeMb: c.int('ResourceDisk.SwapSizeMB') ?? 0,
  };
}

/**
 * §5.1: mount, warning file, swap. Throws when the disk cannot be mounted (the duty logs `Failed to mount resource
 * disk …`); a swap failure is logged here and reported as `swap: 'failed'` (the disk stays mounted).
 */
export async function activateResourceDisk(ctx: AgentContext, platform: ResourceDiskPlatform): Promise<DiskOutcome> {
  const { log } = ctx;
  const s = settingsOf(ctx);
  if (!s.mountPoint.startsWith('/')) throw new Error(`ResourceDisk.MountPoint must be an absolute path: ${s.mountPoint}`);
  s.fs = platform.checkFilesystem(s.fs);
  if (!/^[a-z0-9]+$/.test(s.fs)) throw new Error(`Unsupported filesystem type: ${s.fs}`);
  const disk = await platform.findDisk();
  if (!disk) {
    log.info('This VM has no resource disk (unable to detect disk topology): nothing to mount');
    return { kind: 'none' };
  }
  const mounted = await platform.mountedAt(disk);
  let mountPoint = s.mountPoint;
  if (mounted) {
    mountPoint = mounted.mountPoint;
    log.info(`Resource disk [${mounted.device}] is already mounted [${mountPoint}]`);
  } else {
    await platform.mount(disk, s);
    log.info(`Resource disk ${disk} is mounted at ${mountPoint} with ${s.fs}`);
  }
  writeWarning(ctx, mountPoint);
  const out: DiskOutcome = { kind: 'mounted', disk, mountPoint, already: !!mounted };
  if (ctx.conf.bool('ResourceDisk.EnableSwap')) {
    try {
      if (platform.swapKind === 'partition') {
        if (s.swapSizeMb > 0) await platform.activateSwapPartition?.(disk);
        out.swap = 'enabled';
      } else {
        out.swap = await ensureSwapFile(ctx, platform, `${mountPoint}/swapfile`, s.swapSizeMb * 1024 * 1024);
      }
    } catch (e) {
      log.error(`Failed to enable swap on the resource disk: ${errorText(e)}`);
      out.swap = 'failed';
    }
  }
  return out;
}

/** §5.7: (re)written every run; a failure is a warning only. */
function writeWarning(ctx: AgentContext, mountPoint: string): void {
  const f = `${mountPoint}/${WARNING_FILE}`;
  try {
    if (ctx.os.fs.readText(f) === WARNING_TEXT) return;
    ctx.os.fs.write(f, WARNING_TEXT, { mode: 0o644 });
  } catch (e) { ctx.log.warn(`Cannot write ${f}: ${errorText(e)}`); }
}

/**
 * §5.8: keeps `file` as an active swap area of exactly `bytes`. Active with that size → only its mode is tightened.
 * Another size → switched off (this file only) and re-made. Not active → re-initialised (mkswap) and switched on;
 * a file reserved by fallocate that swapon refuses is written again with zeros once.
 */
export async function ensureSwapFile(ctx: AgentContext, platform: ResourceDiskPlatform, file: string, bytes: number): Promise<SwapOutcome> {
  const { log, os } = ctx;
  if (!(bytes > 0)) throw new Error(`Invalid swap size [${bytes / 1048576}]`);
  let st = os.fs.lstat(file);
  if (st && !st.isFile()) throw new Error(`${file} exists and is not a regular file`);
  const active = st ? await platform.swapActive(file) : false;
  if (active && st!.size === bytes) {
    if (st!.mode & 0o077) os.fs.chmod(file, 0o600);
    log.info('Swap already enabled');
    return 'unchanged';
  }
  if (active) {
    log.info(`Swap file ${file} has ${st!.size} bytes, ${bytes} wanted: switching it off to resize it`);
    await platform.swapOff(file);
  }
  if (st && st.size !== bytes) { os.fs.remove(file); st = undefined; }
  let how: 'fallocate' | 'zeros' | 'kept' = 'kept';
  if (!st) how = await createSwapFile(os, platform, file, bytes);
  else if (st.mode & 0o077) os.fs.chmod(file, 0o600);
  try {
    await platform.activateSwap(file, ctx.conf.bool('ResourceDisk.EnableSwapEncryption'));
  } catch (e) {
    if (how === 'zeros') throw e;
    log.warn(`${errorText(e)}: writing the swap file with zeros and trying once more`);
    os.fs.remove(file);
    await createSwapFile(os, platform, file, bytes, true);
    await platform.activateSwap(file, ctx.conf.bool('ResourceDisk.EnableSwapEncryption'));
  }
  log.info(`Enabled ${bytes / 1024}KB of swap at ${file}`);
  return 'enabled';
}
