/**
 * The resource-disk duty (provisioning-and-os.md §5.1, DECISIONS.md D18): once per daemon start, beside provisioning
 * (never on the path to Ready), when `ResourceDisk.Format=y`. A failure is logged as `Failed to mount resource disk`
 * and never stops the daemon; a VM without a resource disk logs one line and the duty is done.
 */
import type { Duty } from '../duties';
import { errorText } from '../../core/log';
import { activateResourceDisk, platformFor } from './activate';

export const resourceDiskDuty: Duty = {
  name: 'resource disk',
  enabled: (ctx) => ctx.conf.bool('ResourceDisk.Format'),
  async start({ ctx }) {
    try {
      await activateResourceDisk(ctx, await platformFor(ctx));
    } catch (e) {
      ctx.log.error(`Failed to mount resource disk ${errorText(e)}`);
    }
  },
};
