/**
 * `-serialconsole` (provisioning-and-os.md §7.4, W20): adds `console=ttyS0 earlyprintk=ttyS0` to the kernel command
 * line of the boot configuration (GRUB 2's /etc/default/grub, GRUB legacy's menu.lst; FreeBSD's loader.conf gets the
 * comconsole variables), regenerates the boot-loader files, logs `Configured kernel to use ttyS0 as the boot console.`
 * and exits 0. Already configured → nothing changes, exit 0. Exit 1 when the image has no boot configuration it
 * knows or the regeneration fails (the file is then left as it was).
 */
import type { CliOptions } from './args';
import { setupAgent } from './setup';
import { addKernelOptions } from '../os/boot-config';

export const SERIAL_CONSOLE_OPTIONS = 'console=ttyS0 earlyprintk=ttyS0';

export async function runSerialConsole(opts: CliOptions): Promise<number> {
  const ctx = await setupAgent(opts);
  const r = await addKernelOptions(ctx.os, SERIAL_CONSOLE_OPTIONS);
  if (!r.changed) {
    ctx.log.info(`The kernel already uses ttyS0 as the boot console (${r.config.file}); nothing changed.`);
    return 0;
  }
  if (r.regenerated) ctx.log.info(`Boot configuration regenerated (${r.regenerated})`);
  ctx.log.info('Configured kernel to use ttyS0 as the boot console.');
  return 0;
}
