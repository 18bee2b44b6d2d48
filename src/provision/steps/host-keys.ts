/** Provisioning step: SSH host keys and their fingerprint (provisioning-and-os.md §3.14, D5, D23). */
import type { AgentContext } from '../../context';

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

/** Deletes the host keys and generates new ones (only with RegenerateSshHostKeyPair=y). Failures are logged. */
export async function regenerateHostKeys(ctx: AgentContext): Promise<void> {
  if (!ctx.conf.bool('Provisioning.RegenerateSshHostKeyPair')) return;
  const os = ctx.os; const dir = os.sshDir(); const t = hostKeyType(ctx);
  for (const f of os.fs.readdir(dir)) {
    if (/^ssh_host_.*key/.test(f) && os.fs.lstat(`${dir}/${f}`)?.isFile()) os.fs.remove(`${dir}/${f}`);
  }
  const argv = t === 'auto' ? ['ssh-keygen', '-A'] : ['ssh-keygen', '-N', '', '-t', t, '-f', `${dir}/ssh_host_${t}_key`];
  const r = await os.run(argv);
  if (r.code === 0) { ctx.log.info(`Generated new SSH host keys (${t})`); return; }
  ctx.log.warn(`Failed to generate ssh host key: ret=${r.code}, out= ${(r.stdout + r.stderr).trim() || r.spawnError}`);
  // The old keys are gone: never leave sshd without host keys if the default set can still be made.
  if (t !== 'auto') {
    const all = await os.run(['ssh-keygen', '-A']);
    if (all.code !== 0) ctx.log.error(`ssh-keygen -A failed as well: sshd may have no host keys (${(all.stdout + all.stderr).trim() || all.spawnError})`);
  }
}

/** The host key fingerprint (e.g. `SHA256AbC…`), or undefined (logged) when it cannot be computed (D23). */
export async function hostKeyFingerprint(ctx: AgentContext): Promise<string | undefined> {
  const pub = hostKeyPubPath(ctx);
  const r = await ctx.os.run(['ssh-keygen', '-lf', pub]);
  const fp = r.code === 0 ? parseFingerprint(r.stdout) : undefined;
  if (!fp) ctx.log.warn(`Failed to get the ssh host key fingerprint of ${pub}: ret=${r.code}, out= ${(r.stdout + r.stderr).trim() || r.spawnError}`);
  return fp;
}

/** Regenerates (if configured) and fingerprints the host key; never throws for key problems (D5/D23). */
export async function applyHostKeys(ctx: AgentContext): Promise<string | undefined> {
  await regenerateHostKeys(ctx);
  return hostKeyFingerprint(ctx);
}
