/**
 * The wire-server firewall (provisioning-and-os.md §6.8.2–§6.8.3, fabric-protocol.md §1.5): only the agent's UID (root)
 * may open TCP connections to the wire server (port 80 and the host plugin's 32526; tcp/53 stays open to all), through
 * iptables' `security` table or, where iptables is not installed, an nftables table `ip walinuxagent`. Every command is
 * an argv array through the OS runner. The table is never flushed (§6.8.1); only our own rules are added or removed.
 */
import type { Runner } from '../core/exec';
import { isIPv4 } from 'node:net';

export type FirewallState = 'configured' | 'missing' | 'inconsistent';

/** What `ensure` did. */
export type FirewallChange = 'unchanged' | 'added' | 'reset';

export interface Firewall {
  readonly kind: 'iptables' | 'nft';
  readonly ip: string;
  /** Reads the rules: all present, none, or some (or foreign shapes). Throws on a command error. */
  check(): Promise<FirewallState>;
  /** Adds the rules (assumes none are present). Throws on failure. */
  setup(): Promise<void>;
  /** Removes our rules (every copy); rules of others stay. Throws on failure. */
  remove(): Promise<void>;
  /** Removes the rule of agents ≤ 2.2.25 (iptables only; no-op for nft). */
  removeLegacy(): Promise<void>;
  /** The state listing for the log. */
  describe(): Promise<string>;
  /** The rules as `iptables` argument lists (for persistence through firewalld and the log). */
  ruleArgs(): string[][];
}

/** Check, then add when missing or reset when inconsistent (the periodic task of §6.8.4). */
export async function ensureFirewall(fw: Firewall): Promise<FirewallChange> {
  const state = await fw.check();
  if (state === 'configured') return 'unchanged';
  if (state === 'inconsistent') { await fw.remove(); await fw.setup(); return 'reset'; }
  await fw.setup();
  return 'added';
}

/** Validates a dotted IPv4 address for the rules (the only input that reaches the argv). */
export function checkFirewallIp(ip: string): string {
  if (!isIPv4(ip)) throw new Error(`Invalid wire server address for the firewall: ${JSON.stringify(ip)}`);
  return ip;
}

const outText = (r: { stdout: string; stderr: string; spawnError?: string; code: number }): string =>
  (r.stdout + r.stderr).trim().slice(0, 500) || r.spawnError || `exit code ${r.code}`;

/** `iptables --version` → whether `-w` is understood (≥ 1.4.21; unparsable → no). */
export function iptablesSupportsWait(versionText: string): boolean {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(versionText);
  if (!m) return false;
  const v = [Number(m[1]), Number(m[2]), Number(m[3])];
  const min = [1, 4, 21];
  for (let i = 0; i < 3; i++) if (v[i] !== min[i]) return v[i] > min[i];
  return true;
}

export class IptablesFirewall implements Firewall {
  readonly kind = 'iptables' as const;
  private wait: boolean | undefined;
  constructor(private readonly run: Runner, readonly ip: string, private readonly uid = 0, private readonly program = 'iptables') {
    checkFirewallIp(ip);
  }

  ruleArgs(): string[][] {
    const d = ['OUTPUT', '-d', this.ip, '-p', 'tcp'];
    return [
      [...d, '--destination-port', '53', '-j', 'ACCEPT'],
      [...d, '-m', 'owner', '--uid-owner', String(this.uid), '-j', 'ACCEPT'],
      [...d, '-m', 'conntrack', '--ctstate', 'INVALID,NEW', '-j', 'DROP'],
    ];
  }
  private legacyArgs(): string[] { return ['OUTPUT', '-d', this.ip, '-p', 'tcp', '-m', 'conntrack', '--ctstate', 'INVALID,NEW', '-j', 'ACCEPT']; }

  private async base(): Promise<string[]> {
    if (this.wait === undefined) this.wait = iptablesSupportsWait((await this.run([this.program, '--version'])).stdout);
    return this.wait ? [this.program, '-w', '-t', 'security'] : [this.program, '-t', 'security'];
  }

  async check(): Promise<FirewallState> {
    const base = await this.base();
    const codes: number[] = [];
    for (const rule of this.ruleArgs()) {
      const r = await this.run([...base, '-C', ...rule]);
      if (r.code !== 0 && r.code !== 1) throw new Error(`${this.program} -C failed: ${outText(r)}`);
      codes.push(r.code);
    }
    if (codes.every((c) => c === 0)) return 'configured';
    if (codes.every((c) => c === 1)) return 'missing';
    return 'inconsistent';
  }

  async setup(): Promise<void> {
    const base = await this.base();
    for (const rule of this.ruleArgs()) {
      const r = await this.run([...base, '-A', ...rule]);
      if (r.code !== 0) throw new Error(`${this.program} -A ${rule.join(' ')} failed: ${outText(r)}`);
    }
  }

  private async deleteAll(rule: string[]): Promise<void> {
    const base = await this.base();
    for (let i = 0; i < 99; i++) {
      const r = await this.run([...base, '-D', ...rule]);
      if (r.code === 1) return;
      if (r.code !== 0) throw new Error(`${this.program} -D ${rule.join(' ')} failed: ${outText(r)}`);
    }
  }

  async remove(): Promise<void> { for (const rule of this.ruleArgs()) await this.deleteAll(rule); }
  async removeLegacy(): Promise<void> { await this.deleteAll(this.legacyArgs()); }

  async describe(): Promise<string> {
    const r = await this.run([...(await this.base()), '-L', '-nxv']);
    return outText(r);
  }
}

/** The nftables input of §6.8.3. */
export function nftRulesetText(ip: string, uid = 0): string {
  return [
    'add table ip walinuxagent',
    'add chain ip walinuxagent output { type filter hook output priority 0 ; policy accept ; }',
    `add rule ip walinuxagent output ip daddr ${checkFirewallIp(ip)} tcp dport != 53 skuid != ${uid} ct state invalid,new counter drop`,
    '',
  ].join('\n');
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? v as Json : undefined);

/** Whether one rule's JSON expressions are exactly ours (§6.8.3 check). */
export function nftRuleIsOurs(expr: unknown, ip: string, uid = 0): boolean {
  if (!Array.isArray(expr)) return false;
  let daddr = false; let dport = false; let skuid = false; let drop = false;
  for (const e of expr) {
    const o = obj(e);
    if (!o) continue;
    if ('drop' in o) drop = true;
    const m = obj(o.match);
    if (!m) continue;
    const left = obj(m.left);
    const payload = obj(left?.payload);
    const meta = obj(left?.meta);
    if (payload?.protocol === 'ip' && payload.field === 'daddr' && m.op === '==' && m.right === ip) daddr = true;
    if (payload?.protocol === 'tcp' && payload.field === 'dport' && m.op === '!=' && m.right === 53) dport = true;
    if (meta?.key === 'skuid' && m.op === '!=' && m.right === uid) skuid = true;
  }
  return daddr && dport && skuid && drop;
}

/** State of our nft table from `nft --json list tables` and `nft --json list table ip walinuxagent` output. */
export function nftStateFrom(tablesJson: string, tableJson: string | undefined, ip: string, uid = 0): FirewallState {
  const items = (t: string): Json[] => {
    const v = obj(JSON.parse(t));
    return Array.isArray(v?.nftables) ? (v!.nftables as unknown[]).map(obj).filter((x): x is Json => !!x) : [];
  };
  const hasTable = items(tablesJson).some((i) => { const t = obj(i.table); return t?.family === 'ip' && t.name === 'walinuxagent'; });
  if (!hasTable) return 'missing';
  if (tableJson === undefined) return 'inconsistent';
  const rules = items(tableJson).map((i) => obj(i.rule)).filter((r): r is Json => !!r && r.chain === 'output');
  return rules.length === 1 && nftRuleIsOurs(rules[0].expr, ip, uid) ? 'configured' : 'inconsistent';
}

export class NftFirewall implements Firewall {
  readonly kind = 'nft' as const;
  constructor(private readonly run: Runner, readonly ip: string, private readonly uid = 0) { checkFirewallIp(ip); }

  ruleArgs(): string[][] { return new IptablesFirewall(this.run, this.ip, this.uid).ruleArgs(); }

  async check(): Promise<FirewallState> {
    const tables = await this.run(['nft', '--json', 'list', 'tables']);
    if (tables.code !== 0) throw new Error(`nft list tables failed: ${outText(tables)}`);
    const state = (table: string | undefined): FirewallState => {
      try { return nftStateFrom(tables.stdout, table, this.ip, this.uid); } catch (e) { throw new Error(`nft printed JSON that cannot be read: ${(e as Error).message}`); }
    };
    if (state(undefined) === 'missing') return 'missing';
    const r = await this.run(['nft', '--json', 'list', 'table', 'ip', 'walinuxagent']);
    return state(r.code === 0 ? r.stdout : undefined);
  }

  async setup(): Promise<void> {
    const r = await this.run(['nft', '-f', '-'], { input: nftRulesetText(this.ip, this.uid) });
    if (r.code !== 0) throw new Error(`nft -f - failed: ${outText(r)}`);
  }

  async remove(): Promise<void> {
    const tables = await this.run(['nft', '--json', 'list', 'tables']);
    let absent = false;
    try { absent = tables.code === 0 && nftStateFrom(tables.stdout, undefined, this.ip, this.uid) === 'missing'; } catch { /* try the delete */ }
    if (absent) return;
    const r = await this.run(['nft', 'delete', 'table', 'ip', 'walinuxagent']);
    if (r.code !== 0) throw new Error(`nft delete table failed: ${outText(r)}`);
  }

  async removeLegacy(): Promise<void> { /* nothing older used nft */ }

  async describe(): Promise<string> { return outText(await this.run(['nft', 'list', 'table', 'ip', 'walinuxagent'])); }
}
