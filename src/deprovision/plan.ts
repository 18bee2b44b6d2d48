/**
 * Deprovisioning (provisioning-and-os.md §4): the ordered warnings and deferred actions that turn a provisioned VM
 * back into an image that provisions cleanly on its next boot, and their execution. Planning changes nothing (it only
 * reads: the config, the saved ovf-env.xml for `+user`, where /etc/resolv.conf points); every change happens in
 * `executePlan`, one action at a time, a failure logged and the rest still run (§4.1 FIX).
 */
import * as path from 'node:path';
import type { AgentContext } from '../context';
import { errorText, log as defaultLog } from '../core/log';
import { parseOvf } from '../provision/ovf';
import { osClassFor } from '../os/factory';
import { compareVersions } from '../os/version-compare';
import { SSHD_DROP_IN_HEADER, sshdDropInPath } from '../provision/steps/sshd-config';
import { acquirePidFile, pidFileHolder, waitForPidFileRelease } from '../daemon/pidfile';
import { emptyDirectory, removeFile, removeMatching, resolveInRoot } from './files';

/** One step; when a `fatal` one fails, the steps after it do not run (they would race a live agent). */
export interface DeprovisionAction { name: string; run(): Promise<void>; fatal?: boolean }
export interface DeprovisionPlan { warnings: string[]; actions: DeprovisionAction[] }
export interface ActionFailure { name: string; error: string }

const DEFAULT_HOSTNAME = 'localhost.localdomain';

/** Files deleted by row 8 (OpenBSD leftovers are harmless elsewhere). */
const LEFTOVER_FILES = [
  '/root/.bash_history', '/var/log/waagent.log', '/etc/random.seed', '/var/db/host.random', '/etc/isakmpd/local.pub',
  '/etc/isakmpd/private/local.key', '/etc/iked/private/local.key', '/etc/iked/local.pub',
];
const UNIT_DIRS = ['/etc/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'];

/**
 * Deletes cached DHCP leases (row 3): the contents of the distro's lease directories (kept themselves), and the files
 * `/var/db/dhclient.leases.*`, `/var/lib/NetworkManager/dhclient-*.lease`, `/run/systemd/netif/leases/*`.
 */
export function deleteDhcpLeases(ctx: AgentContext): void {
  const hfs = ctx.os.fs;
  for (const d of ctx.os.dhcpLeaseDirs()) emptyDirectory(hfs, d);
  removeMatching(hfs, '/var/db', /^dhclient\.leases\./);
  removeMatching(hfs, '/var/lib/NetworkManager', /^dhclient-.*\.lease$/);
  removeMatching(hfs, '/run/systemd/netif/leases', /./);
}

/** Deletes the firewall persistence unit (`<unit dir>/<service>-network-setup.service`) and its script (row 12). */
export function deleteFirewallPersistence(ctx: AgentContext): void {
  const hfs = ctx.os.fs;
  const names = [...new Set(['waagent', ctx.os.agentServiceName])].map((s) => `${s}-network-setup.service`);
  for (const d of UNIT_DIRS) for (const n of names) removeFile(hfs, `${d}/${n}`);
  removeFile(hfs, `${ctx.libDir.replace(/\/+$/, '')}/waagent-network-setup.py`);
}

/** How long deprovisioning waits for a daemon to exit after SIGTERM. */
export const DAEMON_STOP_WAIT_MS = 30_000;

/**
 * NEW (§10.9): a daemon that the service manager did not stop (started by hand, or another unit name) would keep
 * writing what deprovisioning deletes. It gets SIGTERM and up to 30 s to exit; then this command holds the PID file
 * until it ends, so that a daemon restarted meanwhile waits. Throws when the daemon does not exit or another
 * -provision/-deprovision holds the file.
 */
export async function stopDaemonAndHold(ctx: AgentContext, waitMs = DAEMON_STOP_WAIT_MS): Promise<void> {
  const pidFile = ctx.conf.s('Pid.File');
  const holder = pidFileHolder(ctx.os.fs, pidFile);
  if (holder?.role === 'daemon') {
    ctx.log.info(`The daemon (pid ${holder.pid}) is still running: sending SIGTERM`);
    try { process.kill(holder.pid, 'SIGTERM'); } catch { /* gone */ }
    if (!(await waitForPidFileRelease(ctx.os.fs, pidFile, { timeoutMs: waitMs, pollMs: 200 }))) {
      throw new Error(`the daemon (pid ${holder.pid}) did not stop within ${Math.round(waitMs / 1000)} s: nothing else was changed`);
    }
  }
  const got = await acquirePidFile(ctx.os.fs, pidFile);
  if (!got.owned) throw new Error(`another agent process (pid ${got.holder.pid}) holds ${pidFile}: nothing else was changed`);
}

/**
 * Builds the plan of §4.2 for the detected distro. With `withUser`, parses `<Lib.Dir>/ovf-env.xml` now (before the
 * actions delete it) to learn the user to delete; a missing or unparsable file only gives the two warnings of row 10′.
 * Reads only; throws nothing for an ordinary system.
 */
export function planDeprovision(ctx: AgentContext, withUser: boolean): DeprovisionPlan {
  const { conf, os } = ctx;
  const hfs = os.fs;
  const warnings: string[] = [];
  const actions: DeprovisionAction[] = [];
  const act = (name: string, run: () => Promise<void> | void) => actions.push({ name, run: async () => { await run(); } });
  const family = osClassFor(os.distro).name;
  const libDir = ctx.libDir.replace(/\/+$/, '') || '/';

  // 1. Agent service.
  warnings.push('WARNING! The waagent service will be stopped.');
  act('stop the agent service', () => os.stopAgentService());
  actions.push({ name: 'stop a daemon still running and hold its PID file', fatal: true, run: () => stopDaemonAndHold(ctx) });

  // 2. SSH host keys.
  if (conf.bool('Provisioning.RegenerateSshHostKeyPair')) {
    warnings.push('WARNING! All SSH host key pairs will be deleted.');
    act('delete SSH host keys', () => removeMatching(hfs, os.sshDir(), /^ssh_host_.*key/, true));
  }

  // 2′. NEW: the sshd drop-in provisioning wrote (§3.11): a captured image would otherwise keep this VM's
  // PasswordAuthentication choice for every VM made from it. Only a file that carries our header is deleted.
  const dropIn = sshdDropInPath(os.sshdConfigPath());
  if (hfs.lstat(dropIn)?.isFile() && (hfs.readText(dropIn, 64 * 1024) ?? '').startsWith(SSHD_DROP_IN_HEADER)) {
    warnings.push(`WARNING! ${dropIn} (written by the agent) will be deleted.`);
    act(`delete ${dropIn}`, () => {
      if ((hfs.readText(dropIn, 64 * 1024) ?? '').startsWith(SSHD_DROP_IN_HEADER)) removeFile(hfs, dropIn);
    });
  }

  // 3. DHCP leases.
  warnings.push('WARNING! Cached DHCP leases will be deleted.');
  act('delete cached DHCP leases', () => deleteDhcpLeases(ctx));

  // 4. Host name.
  act('reset the host name', async () => {
    await os.setHostname(DEFAULT_HOSTNAME);
    await os.setDhcpHostname(DEFAULT_HOSTNAME);
  });

  // 5. Root password.
  if (conf.bool('Provisioning.DeleteRootPassword')) {
    warnings.push('WARNING! root password will be disabled. You will not be able to login as root.');
    act('lock the root password', () => os.lockRootPassword());
  }

  // 6. cloud-init state: HEAD dropped it (use `cloud-init clean`).

  // 7. Agent state and extension logs (directories kept).
  const extLogDir = conf.s('Extension.LogDir');
  act(`delete the contents of ${libDir} and ${extLogDir}`, () => {
    emptyDirectory(hfs, libDir);
    emptyDirectory(hfs, extLogDir);
  });

  // 8. Leftover files.
  act('delete history, agent log and key leftovers', () => { for (const f of LEFTOVER_FILES) removeFile(hfs, f); });

  // 9. /etc/resolv.conf and its variants.
  planResolvConf(ctx, warnings, act);

  // 10. The provisioned user.
  if (withUser) {
    const user = savedUserName(ctx, libDir);
    if (user) {
      warnings.push(`WARNING! ${user} account and entire home directory will be deleted.`);
      act(`delete user ${user}`, () => os.deleteAccount(user));
    } else {
      warnings.push('WARNING! ovf-env.xml is not found.', 'WARNING! Skip delete user.');
    }
  }

  // 11. machine-id on Arch and CoreOS/Flatcar.
  if (family === 'Arch' || family === 'CoreOS') {
    warnings.push('WARNING! /etc/machine-id will be removed.');
    act('delete /etc/machine-id', () => removeFile(hfs, '/etc/machine-id'));
  }

  // 12. Firewall persistence (HEAD).
  act('delete the firewall persistence unit', () => deleteFirewallPersistence(ctx));

  return { warnings, actions };
}

/** Row 9 with its variants: Ubuntu < 18.04 resolvconf, Ubuntu ≥ 18.04, and (NEW) any symlink into /run. */
function planResolvConf(ctx: AgentContext, warnings: string[], act: (name: string, run: () => void) => void): void {
  const hfs = ctx.os.fs;
  const d = ctx.os.distro;
  const file = '/etc/resolv.conf';
  const r = resolveInRoot(hfs, file);
  if (d.id === 'ubuntu') {
    if (compareVersions(d.version, '18.04') >= 0) {
      warnings.push('WARNING! /etc/resolv.conf will NOT be removed, this is a behavior change to earlier versions of Ubuntu.');
      return;
    }
    if (r?.path === '/run/resolvconf/resolv.conf') {
      warnings.push('WARNING! /etc/resolvconf/resolv.conf.d/tail and /etc/resolvconf/resolv.conf.d/original will be deleted.');
      act('delete resolvconf tail and original', () => {
        removeFile(hfs, '/etc/resolvconf/resolv.conf.d/tail');
        removeFile(hfs, '/etc/resolvconf/resolv.conf.d/original');
      });
      return;
    }
  }
  const target = r?.firstTarget;
  if (target && /^\/(var\/)?run\//.test(target)) {
    warnings.push(`WARNING! /etc/resolv.conf will NOT be removed: it links to ${target}, which the system manages.`);
    return;
  }
  warnings.push('WARNING! /etc/resolv.conf will be deleted.');
  act('delete /etc/resolv.conf', () => {
    // "Is a regular file" semantics: a file, or a link to an existing file, is deleted; a dangling link is left.
    const now = resolveInRoot(hfs, file);
    if (now?.exists && hfs.stat(now.path)?.isFile()) removeFile(hfs, file);
  });
}

/** The UserName of the saved ovf-env.xml, or undefined when the file is missing or cannot be parsed. */
function savedUserName(ctx: AgentContext, libDir: string): string | undefined {
  const f = path.posix.join(libDir, 'ovf-env.xml');
  try {
    const text = ctx.os.fs.readText(f);
    if (text === undefined) return undefined;
    return parseOvf(text).userName;
  } catch (e) {
    ctx.log.warn(`Cannot parse ${f}: ${errorText(e)}`);
    return undefined;
  }
}

/**
 * Runs the actions in order. A failing action is logged (`Failed to <name>: <error>`) and the next one still runs,
 * unless it is `fatal`; returns the failures (empty = success).
 */
export async function executePlan(plan: DeprovisionPlan, ctx?: Pick<AgentContext, 'log'>): Promise<ActionFailure[]> {
  const failures: ActionFailure[] = [];
  const log = ctx?.log ?? defaultLog;
  for (const a of plan.actions) {
    try {
      log.verbose(`Deprovision: ${a.name}`);
      await a.run();
    } catch (e) {
      failures.push({ name: a.name, error: errorText(e) });
      log.error(`Failed to ${a.name}: ${errorText(e)}`);
      if (a.fatal) break;
    }
  }
  return failures;
}
