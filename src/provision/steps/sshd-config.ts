/**
 * Provisioning step: sshd_config (provisioning-and-os.md §3.11). `setSshConfig` is WALinuxAgent's edit algorithm on
 * a list of lines (Match-block aware); `applySshdConfig` edits the file and, when sshd_config includes
 * `sshd_config.d/*.conf` and the directory exists, also writes the drop-in `40-waagent.conf` (NEW).
 */
import * as path from 'node:path';
import type { AgentContext } from '../../context';

/** The drop-in the step writes (beside sshd_config, in sshd_config.d) and the first line that marks it as ours. */
export const SSHD_DROP_IN = '40-waagent.conf';
export const SSHD_DROP_IN_HEADER = '# Written by the Azure guest agent (waagent) during provisioning';

/** The path of the drop-in for a given sshd_config path. */
export function sshdDropInPath(sshdConfig: string): string { return `${path.posix.dirname(sshdConfig)}/sshd_config.d/${SSHD_DROP_IN}`; }

/** Sets `directive value` in `lines` per §3.11 (returns a new array). */
export function setSshConfig(lines: readonly string[], directive: string, value: string): string[] {
  const out = [...lines];
  const want = `${directive} ${value}`;
  let blockStart: number | undefined;
  let replaced = false;
  for (let i = 0; i < out.length; i++) {
    const lower = out[i].toLowerCase();
    if (lower.startsWith('match all')) blockStart = undefined;
    else if (lower.startsWith('match')) { if (blockStart === undefined) blockStart = i; }
    else if (out[i].startsWith(directive) && blockStart === undefined) { out[i] = want; replaced = true; }
  }
  if (!replaced) {
    if (blockStart !== undefined) out.splice(blockStart, 0, want);
    else out.splice(Math.max(out.length - 1, 0), 0, want);
  }
  return out;
}

/** The three directives with their values. */
export function sshdSettings(disablePasswordAuth: boolean, clientAliveInterval: number): [string, string][] {
  const v = disablePasswordAuth ? 'no' : 'yes';
  return [['PasswordAuthentication', v], ['ChallengeResponseAuthentication', v], ['ClientAliveInterval', String(clientAliveInterval)]];
}

/** Whether an active `Include` line of sshd_config covers `<dir>/sshd_config.d`. */
export function includesDropInDir(text: string): boolean {
  return text.split('\n').some((l) => /^\s*include\s/i.test(l) && /sshd_config\.d(\/|\s|$)/.test(l));
}

/** Value of `PasswordAuthentication` in a drop-in (first global occurrence), lower-case. */
function passwordAuthIn(text: string): string | undefined {
  for (const l of text.split('\n')) {
    if (/^\s*match\s/i.test(l)) return undefined;
    const m = /^\s*passwordauthentication\s+(\S+)/i.exec(l);
    if (m) return m[1].toLowerCase();
  }
  return undefined;
}

/**
 * Applies the settings to sshd_config (no-op on distros that do not manage it) and the drop-in. Only files whose
 * content changes are written (atomically, keeping mode/owner, relabelled). Returns whether anything changed.
 * Throws when sshd_config is missing on a distro that manages it.
 */
export async function applySshdConfig(ctx: AgentContext, disablePasswordAuth: boolean): Promise<boolean> {
  const os = ctx.os;
  if (!os.managesSshdConfig()) { ctx.log.info('sshd_config is not managed on this distro: skipped'); return false; }
  const file = os.sshdConfigPath();
  const text = os.fs.readText(file);
  if (text === undefined) throw new Error(`${file} not found`);
  const settings = sshdSettings(disablePasswordAuth, ctx.conf.int('OS.SshClientAliveInterval') ?? 180);
  let lines = text.split('\n');
  for (const [d, v] of settings) lines = setSshConfig(lines, d, v);
  let changed = false;
  const nt = lines.join('\n');
  if (nt !== text) {
    await os.writeSystemFile(file, nt, 0o644);
    ctx.log.info(`Updated ${file}: ${settings.map(([d, v]) => `${d} ${v}`).join(', ')}`);
    changed = true;
  }
  const dir = `${path.posix.dirname(file)}/sshd_config.d`;
  if (includesDropInDir(text) && os.fs.stat(dir)?.isDirectory()) {
    const dropIn = `${dir}/${SSHD_DROP_IN}`;
    const content = `${SSHD_DROP_IN_HEADER}\n${settings.map(([d, v]) => `${d} ${v}`).join('\n')}\n`;
    if (os.fs.readText(dropIn) !== content) {
      os.fs.write(dropIn, content, { mode: 0o600 });
      await os.relabel(dropIn);
      ctx.log.info(`Wrote ${dropIn}`);
      changed = true;
    }
    const ours = disablePasswordAuth ? 'no' : 'yes';
    for (const f of os.fs.readdir(dir)) {
      if (!f.endsWith('.conf') || f >= '40-waagent.conf') continue;
      const v = passwordAuthIn(os.fs.readText(`${dir}/${f}`) ?? '');
      if (v !== undefined && v !== ours) ctx.log.warn(`${dir}/${f} sets PasswordAuthentication ${v} before 40-waagent.conf: sshd will use that value, not ${ours}`);
    }
  }
  return changed;
}
