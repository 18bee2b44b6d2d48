/** Provisioning step: sudo rights for the provisioned user (provisioning-and-os.md §3.10). */
import * as path from 'node:path';
import type { AgentContext } from '../../context';

/**
 * Grants `user` sudo: appends `<user> ALL=(ALL) NOPASSWD: ALL` (no password given) or `<user> ALL=(ALL) ALL` to
 * `<OS.SudoersDir>/waagent` unless present, mode 0440; creates the directory and its `#includedir` when missing;
 * checks the new content with `visudo -cf` (when installed) before it replaces the file, and throws without changing
 * it if the check fails. On OpenBSD
 * appends the `permit` line to /etc/doas.conf instead. Returns whether the file changed.
 */
export async function applySudoers(ctx: AgentContext, user: string, nopasswd: boolean): Promise<boolean> {
  const os = ctx.os;
  if (os.sudoMechanism() === 'doas') {
    const f = '/etc/doas.conf';
    const old = os.fs.readText(f);
    const lines = old === undefined ? ['permit keepenv nopass root'] : old.replace(/\n$/, '').split('\n');
    const line = nopasswd ? `permit keepenv nopass ${user}` : `permit keepenv persist ${user}`;
    if (lines.some((l) => l.trimEnd() === line)) return false;
    lines.push(line);
    os.fs.write(f, `${lines.join('\n')}\n`, { mode: 0o644 });
    ctx.log.info(`Added ${user} to ${f}`);
    return true;
  }
  const dir = os.sudoersDir();
  const file = `${dir}/waagent`;
  if (!os.fs.exists(dir)) {
    os.fs.mkdir(dir, 0o750);
    const main = path.posix.join(path.posix.dirname(dir), 'sudoers');
    const t = os.fs.readText(main) ?? '';
    os.fs.write(main, `${t}\n#includedir ${dir}\n`, { mode: 0o440, preserveExisting: true });
  }
  const line = nopasswd ? `${user} ALL=(ALL) NOPASSWD: ALL` : `${user} ALL=(ALL) ALL`;
  const old = os.fs.readText(file);
  const lines = old === undefined || old === '' ? [] : old.replace(/\n$/, '').split('\n');
  if (lines.some((l) => l.trimEnd() === line)) {
    if (((os.fs.stat(file)?.mode ?? 0) & 0o7777) !== 0o440) os.fs.chmod(file, 0o440);
    ctx.log.info(`sudoers entry for ${user} already present`);
    return false;
  }
  const content = `${[...lines, line].join('\n')}\n`;
  if (os.which('visudo')) {
    // Checked before it goes live: the candidate's name has a dot, which sudo's #includedir skips, so a file that
    // fails validation never reaches sudo, not even for a moment.
    const candidate = `${dir}/.waagent.check`;
    os.fs.write(candidate, content, { mode: 0o440 });
    try {
      const r = await os.run(['visudo', '-cf', candidate]);
      if (r.code !== 0) throw new Error(`sudoers entry for ${user} failed validation (visudo -cf): ${(r.stdout + r.stderr).trim()}`);
    } finally {
      os.fs.remove(candidate);
    }
  }
  os.fs.write(file, content, { mode: 0o440 });
  await os.relabel(file);
  ctx.log.info(`Added sudoers entry for ${user}${nopasswd ? ' (NOPASSWD)' : ''}`);
  return true;
}
