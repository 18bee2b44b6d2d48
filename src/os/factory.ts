/**
 * OS class selection (provisioning-and-os.md §9.2, first match wins): maps the detected distro to the LinuxOS variant
 * that implements its differences. Unknown distros get the generic LinuxOS with a log line.
 */
import type { DistroInfo } from './detect';
import type { SysRoot } from '../core/sysroot';
import type { Runner } from '../core/exec';
import type { Config } from '../config/config';
import { log } from '../core/log';
import { LinuxOS } from './linux';
import { DebianOS } from './debian';
import { UbuntuOS } from './ubuntu';
import { RedHatOS, FedoraOS, MarinerOS } from './redhat';
import { SuseOS } from './suse';
import { CoreOS } from './coreos';
import { AlpineOS } from './alpine';
import { ArchOS, ClearLinuxOS } from './arch';
import { FreeBSDOS } from './freebsd';
import { OpenBSDOS } from './openbsd';

type Ctor = new (d: DistroInfo, r: SysRoot, run: Runner, c: Config) => LinuxOS;

/** The class for a distro (exported for tests); `LinuxOS` itself for the default. */
export function osClassFor(d: DistroInfo): { cls: Ctor; name: string } {
  const id = d.id.toLowerCase();
  const code = d.codename.toLowerCase();
  const full = d.fullName;
  if (id === 'arch') return { cls: ArchOS, name: 'Arch' };
  if (/Clear Linux/i.test(full) || id === 'clear-linux-os') return { cls: ClearLinuxOS, name: 'ClearLinux' };
  if (id === 'ubuntu') return { cls: UbuntuOS, name: 'Ubuntu' };
  if (id === 'alpine' || id === 'alpaquita') return { cls: AlpineOS, name: 'Alpine' };
  if (id === 'kali') return { cls: DebianOS, name: 'DebianBase' };
  if (['coreos', 'flatcar'].includes(id) || ['coreos', 'flatcar'].includes(code)) return { cls: CoreOS, name: 'CoreOS' };
  if (['suse', 'sles', 'sle_hpc', 'sle-micro', 'opensuse', 'opensuse-leap', 'opensuse-tumbleweed'].includes(id)) return { cls: SuseOS, name: 'SUSE' };
  if (id === 'debian' || id === 'devuan') return { cls: DebianOS, name: 'Debian' };
  if (['redhat', 'rhel', 'centos', 'oracle', 'ol', 'almalinux', 'cloudlinux', 'rocky', 'euleros', 'uos'].includes(id)) return { cls: RedHatOS, name: 'RedHat' };
  if (id === 'fedora') return { cls: FedoraOS, name: 'Fedora' };
  if (id === 'freebsd') return { cls: FreeBSDOS, name: 'FreeBSD' };
  if (id === 'openbsd') return { cls: OpenBSDOS, name: 'OpenBSD' };
  if (id === 'mariner' || id === 'azurelinux') return { cls: MarinerOS, name: 'Mariner' };
  return { cls: LinuxOS, name: 'Default' };
}

/** Creates the OS object for `distro` (§9.2). */
export function createOs(distro: DistroInfo, root: SysRoot, run: Runner, conf: Config): LinuxOS {
  const { cls, name } = osClassFor(distro);
  if (name === 'Default') log.warn(`Unable to load distro implementation for ${distro.id}. Using default distro implementation instead.`);
  return new cls(distro, root, run, conf);
}
