/**
 * The reference agent for the bed (TOOLCHAIN.md "A real peer on the same bed"): Debian 12's own `waagent` package
 * (WALinuxAgent 2.7.3.0, pure Python). The .deb is fetched with `apt-get download` into `.cache/peer/` (by
 * .ci/setup, or here on first use) and only ever unpacked with `dpkg -x` into a VM's image layer: it is never
 * installed on the host (its maintainer scripts enable and start a service). python3 itself comes from the host (the
 * lower layer); python3-distro and python3-pkg-resources too when the host has them, else their .debs are fetched the
 * same way and unpacked beside the agent. `peerUnavailable` says what is missing.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { TOP, resolveHostParent } from './vm';

export const PEER_DIR = join(TOP, '.cache', 'peer');

/** Path of a cached .deb of `pkg` in .cache/peer (matching `re`), fetched with `apt-get download` when absent. */
function cachedDeb(pkg: string, re: RegExp): string | undefined {
  const find = (): string | undefined => {
    try { return readdirSync(PEER_DIR).filter((f) => re.test(f)).map((f) => join(PEER_DIR, f))[0]; } catch { return undefined; }
  };
  if (find()) return find();
  try {
    mkdirSync(PEER_DIR, { recursive: true });
    execFileSync('apt-get', ['download', '-q', pkg], { cwd: PEER_DIR, stdio: 'ignore', timeout: 60_000 });
  } catch { /* offline or not Debian */ }
  return find();
}

/** The peer's .deb (Debian 12's waagent 2.7.3), fetched on first use; undefined when unavailable. */
export function peerDeb(): string | undefined { return cachedDeb('waagent', /^waagent_2\.7\.3.*_all\.deb$/); }

/** Python modules the peer imports, and the Debian packages that carry them (pure Python, `Architecture: all`). */
const PEER_PY_DEPS: [string, string][] = [['distro', 'python3-distro'], ['pkg_resources', 'python3-pkg-resources']];

/** The dependency packages the host's python3 lacks (to be unpacked into the image layer, never installed). */
function missingPyDeps(): string[] {
  return PEER_PY_DEPS.filter(([mod]) => {
    try { execFileSync('/usr/bin/python3', ['-c', `import ${mod}`], { stdio: 'ignore' }); return false; } catch { return true; }
  }).map(([, pkg]) => pkg);
}

/** Why the peer cannot run in the bed here (no .deb, no python3 on the host), or undefined. */
export function peerUnavailable(): string | undefined {
  if (!peerDeb()) return "Debian 12's waagent 2.7.3 .deb is not in .cache/peer and 'apt-get download waagent' failed";
  if (!existsSync('/usr/bin/python3')) return 'the peer needs python3 in the image (its lower layer is the host, which has none)';
  for (const pkg of missingPyDeps()) {
    if (!cachedDeb(pkg, new RegExp(`^${pkg}_.*_all\\.deb$`))) return `the peer needs ${pkg}: not on the host, and 'apt-get download ${pkg}' failed`;
  }
  return undefined;
}

/**
 * Unpacks the peer's files into an image layer (`dpkg -x` into a scratch directory: files only, no maintainer script
 * runs), then moves each file to its VM path with symlinked parents resolved as the host has them (`/lib` →
 * `usr/lib` on a merged-/usr Debian; a real `lib/` in the image layer would hide the host's libraries).
 */
export function unpackPeer(imageDir: string): void {
  const deb = peerDeb();
  if (!deb) throw new Error('peer .deb unavailable');
  const debs = [deb, ...missingPyDeps().map((pkg) => cachedDeb(pkg, new RegExp(`^${pkg}_.*_all\\.deb$`)) ?? '')].filter(Boolean);
  const scratch = mkdtempSync(join(tmpdir(), 'waagent-peer-'));
  try {
    for (const d of debs) execFileSync('dpkg', ['-x', d, scratch]);
    const walk = (rel: string): void => {
      for (const e of readdirSync(join(scratch, rel))) {
        const r = `${rel}/${e}`;
        const st = lstatSync(join(scratch, r));
        if (st.isDirectory()) { walk(r); continue; }
        const target = join(imageDir, resolveHostParent(r));
        mkdirSync(dirname(target), { recursive: true });
        if (st.isSymbolicLink()) symlinkSync(readlinkSync(join(scratch, r)), target);
        else { copyFileSync(join(scratch, r), target); chmodSync(target, st.mode & 0o7777); }
      }
    };
    walk('');
  } finally { rmSync(scratch, { recursive: true, force: true }); }
}
