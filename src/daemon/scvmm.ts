/**
 * SCVMM (System Center Virtual Machine Manager 2012 R2; provisioning-and-os.md §8, §7.8), with `DetectScvmmEnv=y`
 * only, at daemon start before the resource disk and provisioning: load the ATAPI driver, then look on each optical
 * device of /dev (sorted) for `linuxosconfiguration.xml` — the medium already mounted, or one mount attempt at
 * `DVD.MountPoint` — and when found hand the VM over to the medium's installer (`/bin/bash <mp>/install "-p <mp>"`,
 * detached), write `<Lib.Dir>/scvmm_started`, wait 300 s and end the daemon with 0. On a later start the marker means
 * the installer owns the VM: no detection, the daemon only idles until it is stopped. Nothing found → normal start.
 */
import type { AgentContext } from '../context';
import { errorText } from '../core/log';
import { loadAtapiDriver } from '../os/kernel';
import { sortDeviceNames } from '../provision/dvd';

export const SCVMM_MARKER = 'scvmm_started';
const DEVICE_RE = /^(sr[0-9]|hd[c-z]|cdrom[0-9]?|cd[0-9]+)/;

export interface ScvmmDeps {
  /** Starts the installer detached (default os/detached.ts, real root only). */
  launch?: (argv: string[]) => Promise<unknown>;
  /** ata_piix re-check pause (default 1 s). */
  atapiPauseMs?: number;
}

export type ScvmmOutcome = 'none' | 'started' | 'handed-over';

/** Mount point of `/dev/<dev>` from /proc/mounts (octal escapes decoded), or undefined. */
function mountedAt(ctx: AgentContext, dev: string): string | undefined {
  for (const line of (ctx.os.fs.readText('/proc/mounts', 4 * 1024 * 1024) ?? '').split('\n')) {
    const f = line.split(' ');
    if (f[0] === `/dev/${dev}` && f[1]) return f[1].replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  }
  return undefined;
}

/** §8 steps 1–3. Returns 'started' when the installer was launched, 'handed-over' when an earlier start did. */
export async function detectScvmm(ctx: AgentContext, deps: ScvmmDeps = {}): Promise<ScvmmOutcome> {
  const { os, log, libDir } = ctx;
  if (os.fs.exists(`${libDir}/${SCVMM_MARKER}`)) return 'handed-over';
  await loadAtapiDriver(os, deps.atapiPauseMs ?? 1000);
  const mp = ctx.conf.s('DVD.MountPoint').replace(/\/+$/, '') || '/mnt/cdrom/secure';
  const devices = sortDeviceNames(os.fs.readdir('/dev').map((e) => DEVICE_RE.exec(e)?.[0]).filter((d): d is string => !!d));
  for (const dev of devices) {
    let where = mountedAt(ctx, dev);
    const mountedByUs = !where;
    if (!where) {
      os.fs.mkdir(mp, 0o700);
      const r = await os.run(['mount', '-o', 'ro', '-t', 'udf,iso9660', `/dev/${dev}`, mp], { timeoutMs: 60_000 });
      if (r.code !== 0) { log.verbose(`SCVMM: mount /dev/${dev}: ${(r.stdout + r.stderr).trim() || r.spawnError}`); continue; }
      where = mp;
    }
    if (os.fs.exists(`${where}/linuxosconfiguration.xml`)) {
      log.info('Starting Microsoft System Center VMM Initialization Process');
      const launch = deps.launch ?? (async (argv: string[]) => (await import('../os/detached')).spawnDetached(os.root, argv));
      await launch(['/bin/bash', `${where}/install`, `-p ${where}`]);
      os.fs.mkdir(libDir, 0o700);
      os.fs.write(`${libDir}/${SCVMM_MARKER}`, `${new Date().toISOString()} /dev/${dev}\n`, { mode: 0o600 });
      return 'started';
    }
    if (mountedByUs) {
      const u = await os.run(['umount', mp], { timeoutMs: 60_000 });
      if (u.code !== 0) log.warn(`SCVMM: umount ${mp} failed: ${(u.stdout + u.stderr).trim()}`);
    }
  }
  log.info('VMM Init script not found. Provisioning for Azure');
  return 'none';
}

/**
 * The daemon's SCVMM step: 'continue' with the normal start, or 'exit' (0) once the installer was launched and 300 s
 * passed, or — installer launched by an earlier start — once the daemon is stopped. Detection errors are logged and
 * the normal start goes on.
 */
export async function runScvmmStep(ctx: AgentContext, signal: AbortSignal, deps: ScvmmDeps & { waitMs?: number } = {}): Promise<'continue' | 'exit'> {
  let outcome: ScvmmOutcome;
  try {
    outcome = await detectScvmm(ctx, deps);
  } catch (e) {
    ctx.log.error(`SCVMM detection failed: ${errorText(e)}; continuing with the Azure start-up`);
    return 'continue';
  }
  if (outcome === 'none') return 'continue';
  const forever = outcome === 'handed-over';
  if (forever) ctx.log.info(`The SCVMM installer was started earlier (${ctx.libDir}/${SCVMM_MARKER}): idling`);
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = forever ? undefined : setTimeout(done, deps.waitMs ?? 300_000);
    function done(): void { if (t) clearTimeout(t); signal.removeEventListener('abort', done); resolve(); }
    signal.addEventListener('abort', done, { once: true });
  });
  return 'exit';
}
