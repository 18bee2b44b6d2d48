/**
 * Finding and reading waagent.conf (provisioning-and-os.md §2.1–§2.2): the default path per distro (with the
 * FreeBSD and Flatcar fall-backs), per-distro corrections of code defaults that would name files which do not exist
 * on that platform, and the read itself (BOM stripped, size capped). Problems in the file are logged with file:line.
 */
import { Config } from './config';
import { readFileCapped, decodeText } from '../core/files';
import type { SysRoot } from '../core/sysroot';
import type { DistroInfo } from '../os/detect';
import type { Logger } from '../core/log';

/** True for Flatcar and the old CoreOS Container Linux. */
function isCoreOs(d: DistroInfo): boolean {
  return d.id === 'coreos' || d.id === 'flatcar' || d.codename === 'coreos' || d.codename === 'flatcar';
}

function isClearLinux(d: DistroInfo): boolean {
  return d.id === 'clear-linux-os' || d.fullName.includes('Clear Linux');
}

/**
 * The configuration file used when `-configuration-path:` is not given (§2.1). `exists` answers for agent paths
 * (through the root prefix). FreeBSD prefers /usr/local/etc/waagent.conf and falls back to /etc/waagent.conf when
 * only that exists; CoreOS uses /usr/share/oem/waagent.conf and falls back to /etc/waagent.conf (Flatcar sysext).
 */
export function defaultConfigPath(distro: DistroInfo, exists: (abs: string) => boolean): string {
  if (distro.id === 'freebsd') {
    const head = '/usr/local/etc/waagent.conf';
    return !exists(head) && exists('/etc/waagent.conf') ? '/etc/waagent.conf' : head;
  }
  if (isCoreOs(distro)) {
    const oem = '/usr/share/oem/waagent.conf';
    return !exists(oem) && exists('/etc/waagent.conf') ? '/etc/waagent.conf' : oem;
  }
  if (isClearLinux(distro)) return '/usr/share/defaults/waagent/waagent.conf';
  return '/etc/waagent.conf';
}

/**
 * Code defaults that differ per platform, applied under the file's values. Only where the generic default names
 * something that does not exist there (the BSDs have no /etc/shadow; BIG-IP keeps state on /shared, §0.2 rule 6).
 * Never a Provisioning.* key: D29 depends on whether those are present in the file.
 */
export function distroDefaults(distro: DistroInfo): Record<string, string> {
  switch (distro.id) {
    case 'freebsd':
      return { 'OS.PasswordPath': '/etc/master.passwd', 'OS.SudoersDir': '/usr/local/etc/sudoers.d', 'ResourceDisk.Filesystem': 'ufs' };
    case 'openbsd':
      return { 'OS.PasswordPath': '/etc/master.passwd', 'ResourceDisk.Filesystem': 'ufs2' };
    case 'bigip':
      return { 'Lib.Dir': '/shared/vadc/azure/waagent/' };
    default:
      return {};
  }
}

export class ConfigFileError extends Error {
  constructor(message: string) { super(message); this.name = 'ConfigFileError'; }
}

/**
 * Reads and parses the configuration file `path` (an agent path, mapped through `root`), with the distro's default
 * corrections underneath. Throws ConfigFileError when the file is missing, unreadable, larger than 1 MiB or empty.
 * Invalid values and unknown keys are logged (warnings) when `logger` is given; the defaults then apply.
 */
export function loadConfig(path: string, root: SysRoot, distro: DistroInfo, logger?: Logger): Config {
  let text: string;
  try {
    text = decodeText(readFileCapped(root.path(path)));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigFileError(`Missing configuration in ${path}`);
    throw new ConfigFileError(`Cannot read configuration file ${path}: ${(e as Error).message}`);
  }
  let conf: Config;
  try {
    conf = Config.parse(text, path, distroDefaults(distro));
  } catch (e) {
    throw new ConfigFileError((e as Error).message);
  }
  if (logger) reportProblems(conf, logger);
  return conf;
}

/** Logs each invalid value (with file:line) and each unknown key once; notes that AutoUpdate is ignored (D4). */
export function reportProblems(conf: Config, logger: Logger): void {
  for (const p of conf.problems) logger.warn(p.message);
  for (const k of conf.unknownKeys) logger.warn(`${conf.source}: unknown configuration option ${k} (ignored)`);
  if (conf.values.has('AutoUpdate.Enabled') && conf.bool('AutoUpdate.Enabled')) {
    logger.info('AutoUpdate.Enabled is ignored: this agent never downloads or runs other agent versions');
  }
}
