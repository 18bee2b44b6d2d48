/**
 * Provisioning step: SSH public keys (provisioning-and-os.md §3.12, D12) and key pairs (§3.13). Paths get `$HOME` →
 * OS.HomeDir, are normalised and must lie strictly inside the provisioned user's own home (never OS.HomeDir itself,
 * never another user's home); no component below the home may be a symbolic link, and the parent directory is
 * changed through a descriptor opened with O_NOFOLLOW; keys are appended and de-duplicated; files are written
 * atomically, owned by the user.
 */
import * as path from 'node:path';
import { createPublicKey } from 'node:crypto';
import type { AgentContext } from '../../context';
import type { OvfPublicKey, OvfKeyPair } from '../ovf';
import { sshPublicKeyFromPem } from '../../crypto/ssh-keys';

export interface ImdsPublicKey { keyData: string; path: string }
export interface UserInfo { name: string; uid: number; gid: number; home: string }
export interface KeyOptions {
  /** Asks IMDS for compute/publicKeys (D12). */
  getImdsPublicKeys?: () => Promise<ImdsPublicKey[]>;
  /** Called once when a certificate is missing: waits (bounded) for the fabric to deliver certificates. */
  waitForCertificates?: () => Promise<void>;
}

const KEY_TYPE = /^(ssh-|ecdsa-sha2-|sk-)/;

/**
 * Normalises an OVF key path (§3.12 step 2): `$HOME` → OS.HomeDir, normalised, `<HomeDir>/<user>/` rewritten to the
 * real home. Throws unless the result is absolute and strictly inside the user's own home: a path directly in
 * OS.HomeDir (`$HOME/authorized_keys`) or in another user's home would make the step chmod/chown that directory.
 */
export function normaliseKeyPath(ctx: AgentContext, user: UserInfo, raw: string | undefined): string {
  if (!raw) throw new Error('Public key path is None');
  if (raw.includes('\0') || raw.includes('\n')) throw new Error('Invalid SSH key path');
  const homeBase = ctx.os.homeDir();
  let p = path.posix.normalize(raw.split('$HOME').join(homeBase));
  if (!p.startsWith('/')) throw new Error(`SSH key path ${raw} is not absolute`);
  const expected = `${homeBase}/${user.name}`;
  if (user.home !== expected && p.startsWith(`${expected}/`)) p = user.home + p.slice(expected.length);
  const home = path.posix.normalize(user.home).replace(/\/+$/, '');
  if (!home.startsWith('/') || home === '' || home === path.posix.normalize(homeBase).replace(/\/+$/, '')) {
    throw new Error(`The home directory ${user.home} of ${user.name} cannot hold SSH keys: refused`);
  }
  if (!p.startsWith(`${home}/`)) throw new Error(`SSH key path ${raw} is outside the home directory of ${user.name}: refused`);
  return p;
}

/**
 * Creates the key's parent directory if missing, mode 0700, owned by the user (only that directory). Every existing
 * component from the home down to the file must be a real directory (a symbolic link anywhere below the home is
 * refused: the user could point it at /etc); the mode and owner are set through an O_NOFOLLOW descriptor.
 */
function prepareDir(ctx: AgentContext, user: UserInfo, file: string): void {
  const home = path.posix.normalize(user.home).replace(/\/+$/, '');
  const dir = path.posix.dirname(file);
  const homeSt = ctx.os.fs.lstat(home);
  if (homeSt?.isSymbolicLink()) throw new Error(`The home directory ${home} is a symbolic link: refused`);
  const rel = dir.slice(home.length).split('/').filter(Boolean);
  let cur = home;
  for (const part of rel) {
    cur = `${cur}/${part}`;
    const st = ctx.os.fs.lstat(cur);
    if (st?.isSymbolicLink()) throw new Error(`${cur} is a symbolic link: refused`);
    if (st && !st.isDirectory()) throw new Error(`${cur} is not a directory: refused`);
  }
  ctx.os.fs.mkdirNoFollow(dir, 0o700, user.uid, user.gid);
}

function refuseSymlink(ctx: AgentContext, file: string): void {
  if (ctx.os.fs.lstat(file)?.isSymbolicLink()) throw new Error(`${file} is a symbolic link: refused`);
}

/** Appends `keys` to `file` (one per line) unless already present; 0600, owned by the user. Returns added count. */
function appendKeys(ctx: AgentContext, user: UserInfo, file: string, keys: string[]): number {
  refuseSymlink(ctx, file);
  const old = ctx.os.fs.readText(file) ?? '';
  const lines = old.split('\n').map((l) => l.trim()).filter(Boolean);
  const have = new Set(lines);
  const added: string[] = [];
  for (const k of keys) if (!have.has(k)) { have.add(k); added.push(k); }
  const st = ctx.os.fs.stat(file);
  if (added.length === 0 && st && (st.mode & 0o777) === 0o600 && st.uid === user.uid) return 0;
  const base = old.length && !old.endsWith('\n') ? `${old}\n` : old;
  ctx.os.fs.write(file, base + added.map((k) => `${k}\n`).join(''), { mode: 0o600, uid: user.uid, gid: user.gid });
  return added.length;
}

function checkKeyValue(v: string): string {
  const k = v.trim();
  if (!KEY_TYPE.test(k) || /[\r\n]/.test(k)) throw new Error(`Bad public key: ${k.slice(0, 40)}`);
  return k;
}

async function imdsKeysFor(opts: KeyOptions, ctx: AgentContext, user: UserInfo, p: string): Promise<string[]> {
  if (!opts.getImdsPublicKeys) return [];
  let all: ImdsPublicKey[];
  try { all = await opts.getImdsPublicKeys(); } catch (e) { ctx.log.warn(`IMDS public keys unavailable: ${(e as Error).message}`); return []; }
  const out: string[] = [];
  for (const k of all) {
    let kp: string;
    try { kp = normaliseKeyPath(ctx, user, k.path); } catch { continue; }
    if (kp === p && typeof k.keyData === 'string') out.push(checkKeyValue(k.keyData));
  }
  return out;
}

/** Reads `<Lib.Dir>/<FP>.crt`, writes `<FP>.pub` (SPKI PEM, 0600) and returns the OpenSSH key; undefined if no cert. */
async function keyFromCertificate(ctx: AgentContext, fp: string): Promise<string | undefined> {
  if (!/^[0-9A-F]+$/.test(fp)) throw new Error(`Invalid key fingerprint ${fp.slice(0, 60)}`);
  const crt = ctx.os.fs.readText(`${ctx.libDir}/${fp}.crt`);
  if (crt === undefined) return undefined;
  const spki = createPublicKey(crt).export({ type: 'spki', format: 'pem' }).toString();
  const pubFile = `${ctx.libDir}/${fp}.pub`;
  if (ctx.os.fs.readText(pubFile) !== spki) ctx.os.fs.write(pubFile, spki, { mode: 0o600 });
  await ctx.os.relabel(pubFile);
  return checkKeyValue(sshPublicKeyFromPem(spki));
}

/**
 * Deploys the OVF public keys for `user` (§3.12): value → certificate by fingerprint → IMDS. Throws `Public key path
 * is None`, `Bad public key: …`, `Can't find <FP>.crt`, `SSH public key Fingerprint and Value are None`, or a refusal
 * for a path outside the home. Returns the number of keys added.
 */
export async function deployPublicKeys(ctx: AgentContext, user: UserInfo, keys: OvfPublicKey[], opts: KeyOptions = {}): Promise<number> {
  let added = 0; let waited = false;
  for (const k of keys) {
    const p = normaliseKeyPath(ctx, user, k.path);
    let values: string[];
    if (k.value !== undefined && k.value.trim()) values = [checkKeyValue(k.value)];
    else if (k.fingerprint) {
      let key = await keyFromCertificate(ctx, k.fingerprint);
      if (key === undefined && opts.waitForCertificates && !waited) {
        waited = true;
        ctx.log.info(`Waiting for the certificate ${k.fingerprint}.crt from the fabric`);
        await opts.waitForCertificates();
        key = await keyFromCertificate(ctx, k.fingerprint);
      }
      values = key !== undefined ? [key] : await imdsKeysFor(opts, ctx, user, p);
      if (values.length === 0) throw new Error(`Can't find ${k.fingerprint}.crt`);
    } else {
      values = await imdsKeysFor(opts, ctx, user, p);
      if (values.length === 0) throw new Error('SSH public key Fingerprint and Value are None');
    }
    prepareDir(ctx, user, p);
    const n = appendKeys(ctx, user, p, values);
    await ctx.os.relabel(path.posix.dirname(p), true);
    if (n) ctx.log.info(`Added ${n} SSH public key(s) to ${p}`);
    added += n;
  }
  return added;
}

/**
 * Deploys the OVF key pairs (§3.13): `<Lib.Dir>/<FP>.prv` copied to the path (0600) and its OpenSSH public half to
 * `<path>.pub` (0644), both owned by the user; unchanged files are not rewritten. Throws `Can't find <FP>.prv` and
 * path refusals. Returns the number of files written.
 */
export async function deployKeyPairs(ctx: AgentContext, user: UserInfo, pairs: OvfKeyPair[], opts: KeyOptions = {}): Promise<number> {
  let written = 0; let waited = false;
  for (const kp of pairs) {
    const p = normaliseKeyPath(ctx, user, kp.path);
    const fp = kp.fingerprint ?? '';
    if (!/^[0-9A-F]+$/.test(fp)) throw new Error(`Invalid key pair fingerprint ${fp.slice(0, 60)}`);
    const prvFile = `${ctx.libDir}/${fp}.prv`;
    if (!ctx.os.fs.exists(prvFile) && opts.waitForCertificates && !waited) { waited = true; await opts.waitForCertificates(); }
    const prv = ctx.os.fs.readText(prvFile);
    if (prv === undefined) throw new Error(`Can't find ${fp}.prv`);
    const spki = createPublicKey(prv).export({ type: 'spki', format: 'pem' }).toString();
    const pub = `${sshPublicKeyFromPem(spki)}\n`;
    prepareDir(ctx, user, p);
    for (const [file, data, mode] of [[p, prv, 0o600], [`${p}.pub`, pub, 0o644]] as [string, string, number][]) {
      refuseSymlink(ctx, file);
      const st = ctx.os.fs.stat(file);
      if (ctx.os.fs.readText(file) === data && st && (st.mode & 0o777) === mode && st.uid === user.uid) continue;
      ctx.os.fs.write(file, data, { mode, uid: user.uid, gid: user.gid });
      written++;
    }
    await ctx.os.relabel(path.posix.dirname(p), true);
    ctx.log.info(`Key pair ${fp} deployed to ${p}`);
  }
  return written;
}
