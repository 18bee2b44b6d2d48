/**
 * JIT users (fabric-protocol.md §2.6, §3.6; WALinuxAgent's remote-access handler): on every goal state with a new
 * incarnation (after provisioning), fetch the RemoteAccessInfo document, create the accounts it lists that are not
 * expired (useradd with the comment `JIT_Account` and an expiry one day after the given expiration, the password
 * decrypted with the transport key and set as a hash, sudo with a password), remove JIT accounts that expired or are no
 * longer listed, and remove them all when the goal state has no RemoteAccessInfo. Accounts are recognised only by
 * their `JIT_Account` comment: an account the agent did not create is never touched. A failed fetch is retried every
 * minute until it succeeds or a newer goal state arrives.
 */
import type { Duty, DutyEnv } from '../duties';
import type { AgentContext } from '../../context';
import type { GoalState } from '../../fabric/wire';
import { errorText } from '../../core/log';
import { parseRemoteAccess, decryptPassword, type RemoteAccessUser } from '../../fabric/remote-access';
import type { TransportPair } from '../../crypto/transport';
import type { Recipient } from '../../crypto/pkcs7';
import { applyPassword } from '../../provision/steps/password';
import { applySudoers } from '../../provision/steps/sudoers';

/** The GECOS comment that marks an account as a JIT account (WALinuxAgent's REMOTE_ACCESS_ACCOUNT_COMMENT). */
export const JIT_COMMENT = 'JIT_Account';
const NAME_RE = /^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$/;
const DAY = 24 * 3600 * 1000;

/** `YYYY-MM-DD` (UTC) one day after `d`: the account stays usable through the whole last day (WALinuxAgent). */
export function accountExpiry(d: Date): string {
  return new Date(d.getTime() + DAY).toISOString().slice(0, 10);
}

/** Names of the existing JIT accounts (comment `JIT_Account` in /etc/passwd). */
export function existingJitUsers(ctx: AgentContext): string[] {
  return ctx.os.readPasswd().filter((e) => e.gecos === JIT_COMMENT).map((e) => e.name);
}

/** Who may open a JIT password: the transport pair (in memory only: the link's, new at every start), then any tenant
 *  certificate with its key in Lib.Dir. */
function recipients(ctx: AgentContext, gs: GoalState | undefined, transport: TransportPair | undefined): Recipient[] {
  const { os, libDir } = ctx;
  const out: Recipient[] = [];
  if (transport) out.push({ keyPem: transport.keyPem, certPem: transport.certPem });
  for (const c of gs?.certificates ?? []) {
    if (!c.hasPrivateKey || !/^[0-9A-F]{40}$/.test(c.thumbprint)) continue;
    const k = os.fs.readText(`${libDir}/${c.thumbprint}.prv`);
    const crt = os.fs.readText(`${libDir}/${c.thumbprint}.crt`);
    if (k && crt) { ctx.log.addSecret(k); out.push({ keyPem: k, certPem: crt }); }
  }
  return out;
}

/** Creates one JIT account; an account half-made (password or sudo failed) is removed again. */
async function addUser(ctx: AgentContext, u: RemoteAccessUser, expiration: Date, gs: GoalState | undefined, transport: TransportPair | undefined): Promise<void> {
  const keys = recipients(ctx, gs, transport);
  if (keys.length === 0) throw new Error('no transport key to decrypt the password');
  const password = decryptPassword(u.encryptedPassword, keys);
  ctx.log.addSecret(password);
  const expiry = accountExpiry(expiration);
  ctx.log.info(`Adding remote access user '${u.name}' with expiration date ${expiry}`);
  await ctx.os.createUser(u.name, expiry, JIT_COMMENT);
  try {
    await applyPassword(ctx, u.name, password);
    await applySudoers(ctx, u.name, false);
  } catch (e) {
    try { await ctx.os.deleteAccount(u.name); } catch (d) { ctx.log.warn(`Cannot remove the half-created user ${u.name}: ${errorText(d)}`); }
    throw e;
  }
}

async function removeUser(ctx: AgentContext, name: string): Promise<void> {
  ctx.log.info(`Removing remote access user '${name}'`);
  await ctx.os.deleteAccount(name);
}

/**
 * Brings the JIT accounts in line with one RemoteAccess document (undefined: the goal state has none). Errors of one
 * user are logged and the others go on; returns whether every removal succeeded.
 */
export async function reconcileJitUsers(ctx: AgentContext, xml: string | undefined, gs: GoalState | undefined, transport?: TransportPair, now = new Date()): Promise<boolean> {
  const existing = new Set(existingJitUsers(ctx));
  let removalsOk = true;
  const remove = async (name: string): Promise<void> => {
    try { await removeUser(ctx, name); } catch (e) { removalsOk = false; ctx.log.error(`Error removing remote access user '${name}' - ${errorText(e)}`); }
  };
  if (xml === undefined) {
    for (const name of existing) await remove(name);
    return removalsOk;
  }
  const doc = parseRemoteAccess(xml);
  ctx.log.info(`Processing remote access users in goal state (${doc.users.length})`);
  const listed = new Set<string>();
  for (const u of doc.users) {
    listed.add(u.name);
    try {
      if (!NAME_RE.test(u.name) || u.name === '.' || u.name === '..') throw new Error('not a valid user name');
      if (!u.expiration) throw new Error(`cannot parse the expiration ${JSON.stringify(u.expirationText.slice(0, 64))}`);
      const isJit = existing.has(u.name);
      if (!isJit && ctx.os.userExists(u.name)) throw new Error('an account of that name exists and is not a JIT account: left alone');
      if (!isJit && now < u.expiration) await addUser(ctx, u, u.expiration, gs, transport);
      else if (isJit && now >= u.expiration) {
        ctx.log.info(`Remote access user '${u.name}' expired.`);
        await remove(u.name);
      }
    } catch (e) {
      ctx.log.error(`Error processing remote access user '${u.name.slice(0, 64)}' - ${errorText(e)}`);
    }
  }
  for (const name of existing) if (!listed.has(name)) await remove(name);
  return removalsOk;
}

class JitUsersDuty implements Duty {
  readonly name = 'JIT users';
  /** Incarnation whose document was applied. */
  private applied: string | undefined;
  /** A goal state whose document could not be fetched yet (retried by tick). */
  private pending: GoalState | undefined;
  /** Whether JIT accounts may still exist while the goal state lists none (checked until they are all gone). */
  private checkExisting = true;
  private chain: Promise<void> = Promise.resolve();

  enabled(): boolean { return true; }
  periodMs(): number { return 60_000; }

  onGoalState(gs: GoalState, env: DutyEnv): void {
    this.pending = gs;
    this.chain = this.chain.then(() => this.apply(env));
  }

  async tick(env: DutyEnv): Promise<void> {
    if (!this.pending) return;
    this.chain = this.chain.then(() => this.apply(env));
    await this.chain;
  }

  private async apply(env: DutyEnv): Promise<void> {
    await env.provisioned;
    const gs = this.pending;
    if (!gs || env.signal.aborted) return;
    const { ctx } = env;
    const inc = gs.doc.incarnation;
    if (inc === this.applied) { this.pending = undefined; return; }
    try {
      const uri = gs.doc.remoteAccessUri;
      if (!uri) {
        if (this.checkExisting) {
          if (existingJitUsers(ctx).length) ctx.log.info('No remote access users in the goal state: removing the existing ones');
          this.checkExisting = !(await reconcileJitUsers(ctx, undefined, gs));
        }
      } else {
        const wire = env.link.wire;
        if (!wire) throw new Error('the fabric link is not connected');
        const xml = await wire.fetchRemoteAccess(uri);
        this.checkExisting = true;
        await reconcileJitUsers(ctx, xml, gs, wire.transport);
      }
      this.applied = inc;
      if (this.pending === gs) this.pending = undefined;
    } catch (e) {
      ctx.log.warn(`Remote access (goal state ${inc}) failed, retrying in a minute: ${errorText(e)}`);
    }
  }
}

export function jitUsersDuty(): Duty { return new JitUsersDuty(); }
