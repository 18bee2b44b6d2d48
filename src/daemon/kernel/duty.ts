/**
 * The kernel duty (provisioning-and-os.md §7.1–§7.3, §3.1 step 5): once per daemon start, beside provisioning, the
 * Hyper-V entropy table into /dev/random and the virtual-NUMA check (kernels ≤ 2.6.37 get `numa=off` in the boot
 * configuration, effective at the next boot); then, when `OS.RootDeviceScsiTimeout` is set, the SCSI disk timeouts
 * at start and every `OS.RootDeviceScsiTimeoutPeriod` seconds (hot-added disks too). FreeBSD: the CAM sysctl once.
 */
import type { Duty, DutyEnv } from '../duties';
import type { AgentContext } from '../../context';
import { errorText } from '../../core/log';
import { kernelRelease, needsNumaOff, seedEntropy, setCamTimeout, setScsiTimeouts } from '../../os/kernel';

/** The configured SCSI timeout, or undefined when unset/None; a value that is not a positive integer is refused. */
export function scsiTimeoutSetting(ctx: AgentContext): string | undefined {
  const v = ctx.conf.str('OS.RootDeviceScsiTimeout')?.trim();
  if (!v || v.toLowerCase() === 'none') return undefined;
  if (!/^[1-9]\d{0,6}$/.test(v)) {
    ctx.log.warn(`OS.RootDeviceScsiTimeout=${v} is not a number of seconds: SCSI timeouts are left alone`);
    return undefined;
  }
  return v;
}

class KernelDuty implements Duty {
  readonly name = 'kernel';
  private timeout: string | undefined;

  /** OpenBSD: nothing of this applies (§7.3). */
  enabled(ctx: AgentContext): boolean { return ctx.os.resourceDiskFlavor() !== 'openbsd'; }

  periodMs(ctx: AgentContext): number | undefined {
    if (ctx.os.resourceDiskFlavor() !== 'linux' || scsiTimeoutSetting(ctx) === undefined) return undefined;
    return Math.max(1, ctx.conf.int('OS.RootDeviceScsiTimeoutPeriod') ?? 30) * 1000;
  }

  async start({ ctx }: DutyEnv): Promise<void> {
    const { os, log } = ctx;
    const n = seedEntropy(os);
    if (n) log.info(`Mixed ${n} bytes of the Hyper-V OEM0 table into /dev/random`);
    if (os.resourceDiskFlavor() === 'linux') {
      const rel = kernelRelease(os);
      if (rel && needsNumaOff(rel)) {
        try {
          const { addKernelOptions } = await import('../../os/boot-config');
          const r = await addKernelOptions(os, 'numa=off');
          if (r.changed) log.info(`Kernel ${rel} has the virtual NUMA bug: disabled NUMA (numa=off) in ${r.config.file}; effective at the next boot`);
        } catch (e) {
          log.warn(`Kernel ${rel} has the virtual NUMA bug, but numa=off could not be set: ${errorText(e)}`);
        }
      }
    }
    this.timeout = scsiTimeoutSetting(ctx);
    if (this.timeout === undefined) return;
    if (os.resourceDiskFlavor() === 'freebsd') { await setCamTimeout(os, this.timeout); return; }
    if (os.resourceDiskFlavor() === 'linux') setScsiTimeouts(os, this.timeout);
  }

  async tick({ ctx }: DutyEnv): Promise<void> {
    if (this.timeout !== undefined) setScsiTimeouts(ctx.os, this.timeout);
  }
}

export function kernelDuty(): Duty { return new KernelDuty(); }
