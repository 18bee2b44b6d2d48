/**
 * Which operating system this is (provisioning-and-os.md §9.1): distro id, version, code name and full name from
 * /etc/os-release (Linux) or uname (BSD). Pure parsing is separate from reading, so tests feed sample files.
 */
import * as fs from 'node:fs';
import type { SysRoot } from '../core/sysroot';

export interface DistroInfo {
  /** Lower-case id (`ubuntu`, `debian`, `rhel`, `centos`, `fedora`, `azurelinux`, `mariner`, `sles`, `opensuse-leap`,
   *  `flatcar`, `coreos`, `alpine`, `arch`, `freebsd`, `openbsd`, …); `unknown` when nothing could be read. */
  id: string;
  /** ID_LIKE words, lower-case. */
  like: string[];
  version: string;
  codename: string;
  fullName: string;
  /** Name printed by -version (os-release NAME, or the id). */
  name: string;
}

/** Parses os-release content (`KEY=value`, optionally quoted, `#` comments). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    out[m[1]] = v.replace(/\\(["'\\$`])/g, '$1');
  }
  return out;
}

export function distroFromOsRelease(kv: Record<string, string>): DistroInfo {
  const id = (kv.ID ?? 'unknown').toLowerCase();
  return {
    id,
    like: (kv.ID_LIKE ?? '').toLowerCase().split(/\s+/).filter(Boolean),
    version: kv.VERSION_ID ?? '',
    codename: kv.VERSION_CODENAME ?? '',
    fullName: kv.PRETTY_NAME ?? kv.NAME ?? id,
    name: id,
  };
}

/** Detects the distro under `root`: os-release first (/etc, then /usr/lib), else the kernel name for the BSDs. */
export function detectDistro(root: SysRoot, platform: string = process.platform): DistroInfo {
  if (platform === 'freebsd' || platform === 'openbsd') {
    const release = safeRead(root.path('/etc/os-release'));
    if (release) return distroFromOsRelease(parseOsRelease(release));
    const os = require('node:os') as typeof import('node:os');
    const version = os.release().replace(/-.*$/, '');
    return { id: platform, like: [], version, codename: '', fullName: `${platform} ${version}`, name: platform };
  }
  for (const p of ['/etc/os-release', '/usr/lib/os-release']) {
    const t = safeRead(root.path(p));
    if (t) return distroFromOsRelease(parseOsRelease(t));
  }
  return { id: 'unknown', like: [], version: '', codename: '', fullName: 'unknown', name: 'unknown' };
}

function safeRead(p: string): string | undefined {
  try { return fs.readFileSync(p, 'utf8'); } catch { return undefined; }
}
