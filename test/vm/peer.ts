/**
 * The reference agent for the bed (TOOLCHAIN.md "A real peer on the same bed"): Debian 12's own `waagent` package
 * (WALinuxAgent 2.7.3.0, pure Python). The .deb is fetched with `apt-get download` into `.cache/peer/` (by
 * .ci/setup, or here on first use) and only ever unpacked with `dpkg -x` into a VM's image layer: it is never
 * installed on the host (its maintainer scripts enable and start a service). Its Python dependencies
 * (python3, python3-distro, python3-pkg-resources) come from the host's lower layer when present; `peerUnavailable`
 * says what is missing.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { TOP, resolveHostParent } from './vm';

export const PEER_DIR = join(TOP, '.cache', 'peer');

/** Path of the cached waagent .deb, fetching it with `apt-get download waagent` when absent; undefined when neither works. */
export function peerDeb(): string | undefined {
  const find = (): string | undefined => {
    try { return readdirSync(PEER_DIR).filter((f) => /^waagent_2\.7\.3.*_all\.deb$/.test(f)).map((f) => join(PEER_DIR, f))[0]; } catch { return undefined; }
  };
  let deb = find();
  if (deb) return deb;
  try {
    mkdirSync(PEER_DIR, { recursive: true });
    execFileSync('apt-get', ['download', '-q', 'waagent'], { cwd: PEER_DIR, stdio: 'ignore', timeout: 60_000 });
  } catch { /* offline or not Debian */ }
  deb = find();
  return deb;
}

/** Why the peer cannot run in the bed here (no .deb, no python3 or its modules on the host), or undefined. */
export function peerUnavailable(): string | undefined {
  if (!peerDeb()) return "Debian 12's waagent 2.7.3 .deb is not in .cache/peer and 'apt-get download waagent' failed";
  if (!existsSync('/usr/bin/python3')) return 'the peer needs python3 in the image (lower layer = host)';
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import distro, pkg_resources'], { stdio: 'ignore' });
  } catch { return 'the peer needs python3-distro and python3-pkg-resources on the host (apt-get install python3-distro python3-pkg-resources)'; }
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
  const scratch = mkdtempSync(join(tmpdir(), 'waagent-peer-'));
  try {
    execFileSync('dpkg', ['-x', deb, scratch]);
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
