/** Provisioning step: the user's password (provisioning-and-os.md §3.9). */
import type { AgentContext } from '../../context';
import { cryptPassword } from '../../crypto/password-crypt';

/** The current hash of `user` in OS.PasswordPath (undefined when unreadable or absent). */
function currentHash(ctx: AgentContext, user: string): string | undefined {
  let t: string | undefined;
  try { t = ctx.os.fs.readText(ctx.os.passwordPath(), 16 * 1024 * 1024); } catch { return undefined; }
  const line = (t ?? '').split('\n').find((l) => l.startsWith(`${user}:`));
  return line?.split(':')[1];
}

/** Whether `hash` (a `$id$salt$…` crypt string) is the hash of `password`. */
function matches(password: string, hash: string | undefined): boolean {
  const m = /^\$([156])\$([A-Za-z0-9./]{1,16})\$/.exec(hash ?? '');
  if (!m) return false;
  try { return cryptPassword(password, m[1], m[2]) === hash; } catch { return false; }
}

/**
 * Sets `user`'s password unless the current hash already matches it. Throws `User <u> is a system user, will not set
 * password.`, a crypt-id error, or `Failed to set password for <u>: …` (never with the hash or the password).
 */
export async function applyPassword(ctx: AgentContext, user: string, password: string): Promise<boolean> {
  const os = ctx.os;
  if (os.isSystemUser(user)) throw new Error(`User ${user} is a system user, will not set password.`);
  ctx.log.addSecret(password);
  if (matches(password, currentHash(ctx, user))) { ctx.log.info(`Password of ${user} is already set`); return false; }
  const hash = await os.hashPassword(password);
  ctx.log.addSecret(hash);
  await os.setPassword(user, hash);
  ctx.log.info(`Password of ${user} set`);
  return true;
}
