/**
 * Provisioning step: SSH host keys and their fingerprint (provisioning-and-os.md §3.14, D5, D23). RSA, ECDSA and
 * Ed25519 keys are generated in-process (src/crypto/openssh-key.ts: same files and formats as `ssh-keygen -N ''`,
 * several times faster for RSA-3072); `auto` makes the set `ssh-keygen -A` makes on current OpenSSH (rsa, ecdsa,
 * ed25519); only `dsa` still runs ssh-keygen. The fingerprint is computed as `ssh-keygen -lf` prints it, `:` removed.
 */
import type { AgentContext } from '../../context';
import { errorText } from '../../core/log';
import { generateHostKey, sshFingerprint, type HostKeyType } from '../../crypto/openssh-key';

const TYPES = ['rsa', 'dsa', 'ecdsa', 'ed25519', 'auto'];

/** Configured host key type (`Provisioning.SshHostKeyPairType`), validated; unknown types fall back to rsa. */
export function hostKeyType(ctx: AgentContext): string {
  const t = ctx.conf.s('Provisioning.SshHostKeyPairType').toLowerCase();
  if (TYPES.includes(t)) return t;
  ctx.log.warn(`Unknown Provisioning.SshHostKeyPairType ${t}: using rsa`);
  return 'rsa';
}

/** Path of the public host key whose fingerprint is reported (`auto` → rsa). */
export function hostKeyPubPath(ctx: AgentContext): string {
  const t = hostKeyType(ctx);
  return `${ctx.os.sshDir()}/ssh_host_${t === 'auto' ? 'rsa' : t}_key.pub`;
}

/** Parses `ssh-keygen -lf` output: the second field with every `:` removed. */
export function parseFingerprint(out: string): string | undefined {
  const f = out.trim().split(/\s+/)[1];
  return f ? f.replace(/:/g, '') : undefined;
}

/** Writes one generated key pair: private 0600, public 0644, root-owned, then relabels them (SELinux). */
async function writeHostKey(ctx: AgentContext, type: HostKeyType, comment: string): Promise<void> {
  const k = await generateHostKey(type, comment);
  const base = `${ctx.os.sshDir()}/ssh_host_${type}_key`;
  ctx.os.fs.write(base, k.privateKey, { mode: 0o600, uid: 0, gid: 0 });
  ctx.os.fs.write(`${base}.pub`, `${k.publicLine}\n`, { mode: 0o644, uid: 0, gid: 0 });
  await ctx.os.relabel(base);
  await ctx.os.relabel(`${base}.pub`);
}

/**
 * Deletes the host keys and generates new ones (only with RegenerateSshHostKeyPair=y). `hostName` makes the key
 * comment `root@<hostName>` as ssh-keygen would after the host name is set. Failures are logged, never thrown.
 */
export async function regenerateHostKeys(ctx: AgentContext, hostName?: string): Promise<void> {
  if (!ctx.conf.bool('Provisioning.RegenerateSshHostKeyPair')) return;
  const os = ctx.os; const dir = os.sshDir(); const t = hostKeyType(ctx);
  for (const f of os.fs.readdir(dir)) {
    if (/^ssh_host_.*key/.test(f) && os.fs.lstat(`${dir}/${f}`)?.isFile()) os.fs.remove(`${dir}/${f}`);
  }
  const comment = `root@${hostName ?? ((await os.getHostname().catch(() => '')) || 'localhost')}`;
  try {
    if (t === 'dsa') {
      const r = await os.run(['ssh-keygen', '-N', '', '-t', 'dsa', '-f', `${dir}/ssh_host_dsa_key`]);
      if (r.code !== 0) throw new Error(`ret=${r.code}, out= ${(r.stdout + r.stderr).trim() || r.spawnError}`);
    } else {
      const types: HostKeyType[] = t === 'auto' ? ['rsa', 'ecdsa', 'ed25519'] : [t as HostKeyType];
      await Promise.all(types.map((type) => writeHostKey(ctx, type, comment)));
    }
    ctx.log.info(`Generated new SSH host keys (${t})`);
  } catch (e) {
    ctx.log.warn(`Failed to generate ssh host key: ${errorText(e)}`);
    // The old keys are gone: never leave sshd without host keys if the default set can still be made.
    const all = await os.run(['ssh-keygen', '-A']);
    if (all.code !== 0) ctx.log.error(`ssh-keygen -A failed as well: sshd may have no host keys (${(all.stdout + all.stderr).trim() || all.spawnError})`);
  }
}

/** The host key fingerprint (e.g. `SHA256AbC…`), or undefined (logged) when it cannot be computed (D23). */
export async function hostKeyFingerprint(ctx: AgentContext): Promise<string | undefined> {
  const pub = hostKeyPubPath(ctx);
  try {
    const line = ctx.os.fs.readText(pub, 64 * 1024);
    if (!line || !/^\S+ [A-Za-z0-9+/=]+/.test(line.trim())) throw new Error(line === undefined ? 'no such file' : 'not an OpenSSH public key');
    return sshFingerprint(line).replace(/:/g, '');
  } catch (e) {
    ctx.log.warn(`Failed to get the ssh host key fingerprint of ${pub}: ${errorText(e)}`);
    return undefined;
  }
}

/** Regenerates (if configured) and fingerprints the host key; never throws for key problems (D5/D23). */
export async function applyHostKeys(ctx: AgentContext, hostName?: string): Promise<string | undefined> {
  await regenerateHostKeys(ctx, hostName);
  return hostKeyFingerprint(ctx);
}
