/**
 * Which operating system this is (provisioning-and-os.md §9.1): distro id, version, code name and full name.
 * BSDs from the kernel name/release; Linux from /etc/os-release (else /usr/lib/os-release, /etc/lsb-release, the
 * first /etc/<x>-release), then HEAD's overrides for appliances and distros that os-release misnames. Every file is
 * read through the `SysRoot`; pure parsing is separate from reading, so tests feed sample files.
 */
import * as fs from 'node:fs';
import * as nodeOs from 'node:os';
import type { SysRoot } from '../core/sysroot';

export interface DistroInfo {
  /** Normalised lower-case id (`ubuntu`, `debian`, `rhel`, `centos`, `fedora`, `azurelinux`, `mariner`, `sles`,
   *  `opensuse`, `oracle`, `flatcar`, `coreos`, `alpine`, `arch`, `freebsd`, `openbsd`, `bigip`, `gaia`, …);
   *  `unknown` when nothing could be read. */
  id: string;
  /** ID_LIKE words, lower-case. */
  like: string[];
  version: string;
  codename: string;
  /** Full name: os-release NAME (PRETTY_NAME, then the id, when missing), or the override's name. */
  fullName: string;
  /** Name printed by -version and sent to the fabric: the same as `id` (WALinuxAgent's DISTRO_NAME). */
  name: string;
}

/** Kernel name and release as `uname -s` / `uname -r` print them. */
export interface Uname { sysname: string; release: string }

/** Files read at most (os-release and friends are tiny). */
const MAX_FILE = 64 * 1024;

/** ID normalisation of the `distro` package (os-release, lsb-release and release-file ids). */
const NORMALISED_IDS: Record<string, string> = {
  ol: 'oracle',
  'opensuse-leap': 'opensuse',
  redhat: 'rhel',
  redhatenterpriseworkstation: 'rhel',
  redhatenterpriseserver: 'rhel',
  redhatenterprisecomputenode: 'rhel',
  enterpriseenterpriseas: 'oracle',
  enterpriseenterpriseserver: 'oracle',
};

/** /etc/*-release files that never describe the distro (the `distro` package's ignore list, plus our overrides). */
const IGNORED_RELEASE_FILES = new Set([
  'lsb-release', 'os-release', 'system-release', 'oem-release', 'plesk-release', 'iredmail-release', 'board-release',
]);

const UNKNOWN: DistroInfo = { id: 'unknown', like: [], version: '', codename: '', fullName: 'unknown', name: 'unknown' };

/** Parses os-release / lsb-release content (`KEY=value`, optionally quoted, `#` comments). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) v = v.slice(1, -1);
    out[m[1]] = v.replace(/\\(["'\\$`])/g, '$1');
  }
  return out;
}

/** Lower-cases an id, strips surrounding quotes and spaces, spaces → `_`, then maps `ol` → `oracle` etc. */
export function normaliseId(raw: string): string {
  const id = raw.replace(/^["' ]+|["' ]+$/g, '').toLowerCase().replace(/\s+/g, '_');
  return NORMALISED_IDS[id] ?? id;
}

/** The code name of an os-release file: VERSION_CODENAME, UBUNTU_CODENAME, else from VERSION (`9.4 (Plow)`). */
function osReleaseCodename(kv: Record<string, string>): string {
  if (kv.VERSION_CODENAME) return kv.VERSION_CODENAME;
  if (kv.UBUNTU_CODENAME) return kv.UBUNTU_CODENAME;
  const m = /\(([^)\d][^)]*)\)|,\s*(\D+)$/.exec(kv.VERSION ?? '');
  return m ? (m[1] ?? m[2] ?? '').trim() : '';
}

/** Builds the distro from parsed os-release fields (id normalised, e.g. `ol` → `oracle`). */
export function distroFromOsRelease(kv: Record<string, string>): DistroInfo {
  const id = normaliseId(kv.ID ?? '') || 'unknown';
  return {
    id,
    like: (kv.ID_LIKE ?? '').toLowerCase().split(/\s+/).filter(Boolean),
    version: kv.VERSION_ID ?? '',
    codename: osReleaseCodename(kv),
    fullName: kv.NAME || kv.PRETTY_NAME || id,
    name: id,
  };
}

/** Builds the distro from /etc/lsb-release fields; undefined without DISTRIB_ID. */
export function distroFromLsbRelease(kv: Record<string, string>): DistroInfo | undefined {
  const id = normaliseId(kv.DISTRIB_ID ?? '');
  if (!id) return undefined;
  const full = (kv.DISTRIB_DESCRIPTION || kv.DISTRIB_ID).trim();
  return { id, like: [], version: kv.DISTRIB_RELEASE ?? '', codename: kv.DISTRIB_CODENAME ?? '', fullName: full, name: id };
}

/**
 * Parses the first line of an /etc/<x>-release file, `<Name> release <X.Y> (<code>)` (also without the word
 * `release`); `x` gives the id. Undefined when the line has no name.
 */
export function distroFromReleaseFile(x: string, text: string): DistroInfo | undefined {
  const line = (text.split('\n').find((l) => l.trim() !== '') ?? '').trim();
  if (!line) return undefined;
  const m = /^(.*?)\s+(?:release\s+)?v?(\d[\w.]*)\s*(?:\(([^)]*)\))?/.exec(line);
  const fullName = (m ? m[1] : line).trim();
  if (!fullName) return undefined;
  const id = normaliseId(x);
  return { id, like: [], version: m?.[2] ?? '', codename: (m?.[3] ?? '').trim(), fullName, name: id };
}

/** Reads an agent path under the root; undefined when missing or unreadable (detection never fails). */
function readText(root: SysRoot, abs: string): string | undefined {
  try {
    const p = root.path(abs);
    const st = fs.statSync(p);
    if (!st.isFile()) return undefined;
    const fd = fs.openSync(p, 'r');
    try {
      const buf = Buffer.alloc(Math.min(st.size, MAX_FILE));
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      return buf.subarray(0, n).toString('utf8').replace(/^\uFEFF/, '');
    } finally { fs.closeSync(fd); }
  } catch { return undefined; }
}

function pathExists(root: SysRoot, abs: string): boolean {
  try { fs.statSync(root.path(abs)); return true; } catch { return false; }
}

/** The base detection of §9.1 step 2: os-release, lsb-release, the first /etc/<x>-release. */
function linuxBase(root: SysRoot): { info: DistroInfo; osRelease?: Record<string, string>; lsb?: Record<string, string> } {
  for (const p of ['/etc/os-release', '/usr/lib/os-release']) {
    const t = readText(root, p);
    if (t !== undefined) {
      const kv = parseOsRelease(t);
      if (kv.ID || kv.NAME) return { info: distroFromOsRelease(kv), osRelease: kv };
    }
  }
  const lsbText = readText(root, '/etc/lsb-release');
  const lsb = lsbText === undefined ? undefined : parseOsRelease(lsbText);
  const fromLsb = lsb && distroFromLsbRelease(lsb);
  if (fromLsb) return { info: fromLsb, lsb };
  let names: string[] = [];
  try { names = fs.readdirSync(root.path('/etc')).sort(); } catch { names = []; }
  for (const n of names) {
    const m = /^(\w+)-release$/.exec(n);
    if (!m || IGNORED_RELEASE_FILES.has(n)) continue;
    const t = readText(root, `/etc/${n}`);
    const d = t === undefined ? undefined : distroFromReleaseFile(m[1], t);
    if (d) return { info: d, lsb };
  }
  return { info: { ...UNKNOWN }, lsb };
}

/** F5 BIG-IP / BIG-IQ / iWorkflow from /VERSION (`Version: X.Y.Z`, `Product: <P>`); undefined without /VERSION. */
function f5Platform(root: SysRoot): DistroInfo | undefined {
  const t = readText(root, '/VERSION');
  if (t === undefined) return undefined;
  let version = '';
  let product = '';
  for (const line of t.split('\n')) {
    const v = /^Version: (\d+\.\d+\.\d+)/.exec(line);
    const p = /^Product: ([\w-]+)/.exec(line);
    if (v) version = v[1]; else if (p) product = p[1];
  }
  const names: Record<string, string> = { 'BIG-IP': 'bigip', 'BIG-IQ': 'bigiq', iWorkflow: 'iworkflow' };
  const id = names[product] ?? (product ? normaliseId(product) : 'unknown');
  return { id, like: [], version, codename: id, fullName: product || id, name: id };
}

/** Check Point Gaia: full name from /etc/cp-release, version `<take>.<build>` and code name from /etc/cloud-version. */
function checkpointPlatform(root: SysRoot, cpRelease: string): DistroInfo {
  let take = ''; let build = ''; let release = '';
  for (const line of (readText(root, '/etc/cloud-version') ?? '').split('\n')) {
    const i = line.indexOf(': ');
    if (i < 0) continue;
    const k = line.slice(0, i); const v = line.slice(i + 2).trim();
    if (k === 'release') release = v; else if (k === 'take') take = v; else if (k === 'build') build = v;
  }
  const version = take || build ? `${take}.${build}` : '';
  return { id: 'gaia', like: [], version, codename: release, fullName: cpRelease.trim(), name: 'gaia' };
}

/** Number of dot-separated parts of a version (its precision). */
function precision(v: string): number { return v ? v.split('.').length : 0; }

/** The version number in a release file's first line (`CBL-Mariner 2.0.20240123`). */
function releaseFileVersion(text: string | undefined): string {
  const line = (text ?? '').split('\n')[0] ?? '';
  return /(\d+(?:\.\d+)+)/.exec(line)?.[1] ?? '';
}

/**
 * Detects the distro under `root` (§9.1). `platform` is Node's platform name; `uname` (kernel name and release,
 * default `os.type()` / `os.release()`) decides FreeBSD / OpenBSD / NS-BSD. Never throws: unreadable files are
 * skipped, and nothing found gives id `unknown`.
 */
export function detectDistro(
  root: SysRoot,
  platform: string = process.platform,
  uname: Uname = { sysname: nodeOs.type(), release: nodeOs.release() },
): DistroInfo {
  const bsdNames: Record<string, string> = { FreeBSD: 'freebsd', OpenBSD: 'openbsd', 'NS-BSD': 'nsbsd' };
  let info: DistroInfo;
  let osRelease: Record<string, string> | undefined;
  let lsb: Record<string, string> | undefined;
  const bsd = bsdNames[uname.sysname] ?? (platform === 'freebsd' || platform === 'openbsd' ? platform : undefined);
  if (bsd) {
    // §9.1 step 1: `13.2-RELEASE` → `13.2`.
    const version = uname.release.replace(/-.*$/, '');
    info = { id: bsd, like: [], version, codename: '', fullName: bsd, name: bsd };
  } else {
    ({ info, osRelease, lsb } = linuxBase(root));
  }

  // Step 3: overrides, in HEAD's order (common/version.py); each later one wins.
  if (pathExists(root, '/etc/oracle-release')) info = { ...info, codename: 'oracle', fullName: 'Oracle Linux' };
  if (pathExists(root, '/etc/euleros-release')) info = { ...info, id: 'euleros' };
  if (pathExists(root, '/etc/UnionTech-release')) info = { ...info, id: 'uos' };
  const marinerRelease = readText(root, '/etc/mariner-release');
  if (marinerRelease !== undefined) info = { ...info, id: 'mariner' };
  if (pathExists(root, '/shared/vadc')) info = f5Platform(root) ?? info;
  const cp = readText(root, '/etc/cp-release');
  if (cp !== undefined) info = checkpointPlatform(root, cp);
  if (pathExists(root, '/home/guestshell/azure')) {
    info = { id: 'iosxe', like: [], version: 'csr1000v', codename: '', fullName: 'Cisco IOSXE Linux', name: 'iosxe' };
  }
  if (pathExists(root, '/etc/photon-release')) info = { ...info, id: 'photonos' };
  if (pathExists(root, '/etc/alpaquita-release')) info = { ...info, id: 'alpaquita' };
  if (pathExists(root, '/etc/openwrt_release')) info = { ...info, id: 'openwrt' };

  // Step 4: lower-case, no surrounding quotes or spaces.
  const id = info.id.replace(/^["' ]+|["' ]+$/g, '').toLowerCase() || 'unknown';
  info = { ...info, id, name: id };

  // Step 5: Ubuntu Core.
  if ((readText(root, '/etc/motd') ?? '').includes('snappy')) info = { ...info, fullName: 'Snappy Ubuntu Core' };

  // Step 6: Mariner / Azure Linux: the most precise version of os-release, lsb-release and the release file.
  if (id === 'mariner' || id === 'azurelinux') {
    const candidates = [
      info.version,
      osRelease?.VERSION ? (/^\d+(?:\.\d+)*/.exec(osRelease.VERSION)?.[0] ?? '') : '',
      (lsb ?? parseOsRelease(readText(root, '/etc/lsb-release') ?? '')).DISTRIB_RELEASE ?? '',
      releaseFileVersion(marinerRelease),
      releaseFileVersion(readText(root, '/etc/azurelinux-release')),
    ];
    let best = info.version;
    for (const c of candidates) if (precision(c) > precision(best)) best = c;
    info = { ...info, version: best };
  }
  return info;
}
