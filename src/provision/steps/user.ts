/** Provisioning step: the user account (provisioning-and-os.md §3.8). */
import type { AgentContext } from '../../context';
import { validateUserName } from '../ovf';

/**
 * Creates `name` (useradd -m) unless /etc/passwd already has it; returns its uid, gid and home. Throws on an invalid
 * name, a failing useradd, or when the account is still missing afterwards.
 */
export async function ensureUser(ctx: AgentContext, name: string): Promise<{ uid: number; gid: number; home: string; created: boolean }> {
  validateUserName(name);
  const os = ctx.os;
  let created = false;
  if (os.userExists(name)) {
    ctx.log.info(`User ${name} already exists, skip useradd`);
  } else {
    await os.createUser(name);
    ctx.log.info(`Created user account ${name}`);
    created = true;
  }
  const u = os.getUser(name);
  if (!u) throw new Error(`User ${name} was not found in /etc/passwd after useradd`);
  const expected = `${os.homeDir()}/${name}`;
  if (u.home !== expected) ctx.log.warn(`Home directory of ${name} is ${u.home}, not ${expected}: key paths under ${expected}/ go to ${u.home}/`);
  return { ...u, created };
}
