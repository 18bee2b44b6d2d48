/**
 * The RDMA duty (provisioning-and-os.md §7.5, §3.1 step 10): on when any of `OS.EnableRDMA`, `OS.UpdateRdmaDriver`,
 * `OS.CheckRdmaDriver` is `y`; once per daemon start, after provisioning. The driver check and install of this distro
 * against the firmware's NetworkDirect version (a reboot when the spec says the new driver needs one), then — once the
 * fabric link holds a goal state — the device set-up from SharedConfig's rdmaIPv4Address and rdmaMacAddress. All
 * errors are logged; nothing here stops the daemon.
 */
import type { Duty, DutyEnv } from '../duties';
import type { AgentContext } from '../../context';
import { errorText } from '../../core/log';
import { firmwareRdmaVersion, normalizeMac, rdmaDriverFor, setupRdmaDevice, type DeviceSetupDeps } from '../../os/rdma';
import { wireServerHost } from '../network/connected';

export function rdmaEnabled(ctx: AgentContext): boolean {
  return ctx.conf.bool('OS.EnableRDMA') || ctx.conf.bool('OS.UpdateRdmaDriver') || ctx.conf.bool('OS.CheckRdmaDriver');
}

/** §7.5 step 1. Returns true when the VM is being rebooted for a new driver. */
export async function checkRdmaDriver(ctx: AgentContext): Promise<boolean> {
  const { os, log } = ctx;
  const driver = rdmaDriverFor(os);
  if (!driver) { log.info(`No RDMA handler exists for distro='${os.distro.fullName || os.distro.id}' version='${os.distro.version}'`); return false; }
  const fw = firmwareRdmaVersion(os);
  if (!fw) { log.info('RDMA: the host did not give a NetworkDirect driver version; skipping the driver check'); return false; }
  log.info(`RDMA: firmware NetworkDirect driver ${fw}; checking the ${driver.name} driver`);
  const r = await driver.ensure(fw, ctx.conf.bool('OS.UpdateRdmaDriver'));
  log.info(`RDMA driver: ${r.action}${r.detail ? ` (${r.detail})` : ''}`);
  if (!r.reboot) return false;
  log.warn('RDMA: rebooting to load the new driver');
  await os.runOk(['shutdown', '-r', 'now'], undefined, 'shutdown -r now');
  return true;
}

export function rdmaDuty(deps: DeviceSetupDeps = {}): Duty {
  return {
    name: 'RDMA',
    enabled: rdmaEnabled,
    async start(env: DutyEnv): Promise<void> {
      const { ctx } = env;
      await env.provisioned;
      try {
        if (await checkRdmaDriver(ctx)) return;
      } catch (e) {
        ctx.log.error(`RDMA driver check failed: ${errorText(e)}`);
      }
      if (!(await wireServerHost(env.link, env.signal))) return;
      const sc = env.link.goalState?.sharedConfig;
      const ip = sc?.rdmaIPv4Address;
      const mac = sc?.rdmaMacAddress ? normalizeMac(sc.rdmaMacAddress) : undefined;
      if (!ip || !mac || !/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) {
        ctx.log.info(`RDMA: SharedConfig gives no usable RDMA address (ip ${ip ?? 'none'}, MAC ${sc?.rdmaMacAddress ?? 'none'}); no device set-up`);
        return;
      }
      try {
        await setupRdmaDevice(ctx.os, ip, mac, deps);
      } catch (e) {
        ctx.log.error(`RDMA device set-up failed: ${errorText(e)}`);
      }
    },
  };
}
