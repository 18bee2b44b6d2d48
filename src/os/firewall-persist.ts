/**
 * Persistence of the wire-server firewall across reboots (provisioning-and-os.md §6.8.4): firewalld's permanent direct
 * passthroughs where firewalld runs; otherwise, on systemd, our boot unit `<service>-network-setup.service` in
 * /etc/systemd/system (FIX: not /usr, which is read-only on image-based systems) running `waagent -setup-firewall=<ip>`
 * before the network comes up; no persistence elsewhere (the daemon re-adds the rules at start). Idempotent: an
 * unchanged unit is neither rewritten nor reloaded.
 */
import type { LinuxOS } from './linux';
import type { Firewall } from './firewall';
import { log } from '../core/log';

/** Bumped whenever the unit text below changes, so older units get rewritten. */
export const NETWORK_SETUP_UNIT_VERSION = 1;

export function networkSetupUnitPath(os: LinuxOS): string {
  return `/etc/systemd/system/${os.agentServiceName}-network-setup.service`;
}

/** The unit text (§6.8.4); `self` is how to run this agent (the executable, or node + script). */
export function networkSetupUnit(self: string[], ip: string): string {
  const quote = (a: string): string => (/[\s"'\\]/.test(a) ? JSON.stringify(a) : a);
  return [
    `# Created by the Azure VM agent (unit version ${NETWORK_SETUP_UNIT_VERSION}). Do not edit.`,
    '[Unit]',
    'Description=Setup network rules for the Azure VM agent',
    'After=local-fs.target',
    'Before=network-pre.target',
    'Wants=network-pre.target',
    'DefaultDependencies=no',
    `ConditionPathExists=${self[self.length - 1]}`,
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${[...self, `-setup-firewall=${ip}`].map(quote).join(' ')}`,
    'RemainAfterExit=yes',
    '',
    '[Install]',
    'WantedBy=network.target',
    '',
  ].join('\n');
}

/** Whether firewalld runs (`firewall-cmd --state` prints `running`). */
async function firewalldRunning(os: LinuxOS): Promise<boolean> {
  if (!os.which('firewall-cmd')) return false;
  return (await os.run(['firewall-cmd', '--state'])).stdout.trim() === 'running';
}

/**
 * Makes the rules of `fw` survive a reboot. Returns how: 'firewalld', 'unit' (written or already right) or 'none'.
 * Failures are logged and leave no half-installed unit.
 */
export async function persistFirewall(os: LinuxOS, fw: Firewall, self: string[]): Promise<'firewalld' | 'unit' | 'none'> {
  const unit = networkSetupUnitPath(os);
  if (await firewalldRunning(os)) {
    const direct = ['firewall-cmd', '--permanent', '--direct'];
    for (const rule of fw.ruleArgs()) {
      const args = ['ipv4', '-t', 'security', '-A', ...rule];
      if ((await os.run([...direct, '--query-passthrough', ...args])).code === 0) continue;
      const r = await os.run([...direct, '--add-passthrough', ...args]);
      if (r.code !== 0) log.warn(`firewalld: cannot add the passthrough ${rule.join(' ')}: ${(r.stdout + r.stderr).trim() || r.spawnError}`);
    }
    // agents ≤ 2.7.0.6 inserted the DNS rule with -I
    const legacy = ['ipv4', '-t', 'security', '-I', 'OUTPUT', '-d', fw.ip, '-p', 'tcp', '--destination-port', '53', '-j', 'ACCEPT'];
    if ((await os.run([...direct, '--query-passthrough', ...legacy])).code === 0) await os.run([...direct, '--remove-passthrough', ...legacy]);
    if (os.fs.exists(unit)) { os.fs.remove(unit); log.info(`Removed ${unit}: firewalld keeps the rules`); }
    return 'firewalld';
  }
  if (!os.systemdRunning()) return 'none';
  const text = networkSetupUnit(self, fw.ip);
  if (os.fs.readText(unit, 64 * 1024) === text) return 'unit';
  await os.writeSystemFile(unit, text, 0o644);
  await os.run(['systemctl', 'daemon-reload']);
  const r = await os.run(['systemctl', 'enable', unit.slice(unit.lastIndexOf('/') + 1)]);
  if (r.code !== 0) {
    log.warn(`systemctl enable ${unit} failed (${(r.stdout + r.stderr).trim() || r.spawnError}); removing the unit`);
    os.fs.remove(unit);
    return 'none';
  }
  log.info(`Installed ${unit} (firewall rules for ${fw.ip} at boot)`);
  return 'unit';
}
