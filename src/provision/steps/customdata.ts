/** Provisioning step: CustomData (provisioning-and-os.md §3.15); its output goes to a 0600 file, not to the log. */
import type { AgentContext } from '../../context';

export const CUSTOM_DATA_TIMEOUT_MS = 30 * 60 * 1000;

/**
 * Saves CustomData to `<Lib.Dir>/CustomData` (0600), base64/UTF-8 decoded when DecodeCustomData or ExecuteCustomData
 * is set (invalid data throws), and runs it synchronously as root with cwd Lib.Dir when ExecuteCustomData=y (0700,
 * 30-minute timeout, exit status logged, not fatal). Neither the content nor the output is ever logged. Returns whether the file changed.
 */
export async function applyCustomData(ctx: AgentContext, customData: string | undefined, timeoutMs = CUSTOM_DATA_TIMEOUT_MS): Promise<boolean> {
  if (customData === undefined) return false;
  const os = ctx.os;
  const execute = ctx.conf.bool('Provisioning.ExecuteCustomData');
  let content = customData;
  if (execute || ctx.conf.bool('Provisioning.DecodeCustomData')) {
    const compact = customData.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) throw new Error('CustomData is not valid base64');
    const bytes = Buffer.from(compact, 'base64');
    try { content = new TextDecoder('utf-8', { fatal: true }).decode(bytes); } catch { throw new Error('CustomData is not valid UTF-8 after base64 decoding'); }
  }
  const file = `${ctx.libDir}/CustomData`;
  os.fs.mkdir(ctx.libDir, 0o700);
  const changed = os.fs.readText(file, 64 * 1024 * 1024) !== content;
  os.fs.write(file, content, { mode: execute ? 0o700 : 0o600 });
  ctx.log.info(`Saved CustomData to ${file}${changed ? '' : ' (unchanged)'}`);
  if (!execute) return changed;
  const started = Date.now();
  const r = await os.run([file], { cwd: ctx.libDir, timeoutMs, quietOutput: true, resolveOnExit: true });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (r.timedOut) ctx.log.error(`CustomData did not finish within ${Math.round(timeoutMs / 60000)} minutes and was killed (${secs}s)`);
  else if (r.spawnError) ctx.log.error(`CustomData could not be started: ${r.spawnError}`);
  else ctx.log.info(`CustomData finished with exit code ${r.code}${r.signal ? ` (signal ${r.signal})` : ''} after ${secs}s`);
  saveOutput(ctx, r.stdout, r.stderr);
  return changed;
}

/** Bytes of each stream kept in `<Lib.Dir>/CustomData.out`. */
export const CUSTOM_DATA_OUTPUT_MAX = 1024 * 1024;

/**
 * Keeps what CustomData printed in `<Lib.Dir>/CustomData.out` (0600, root), never in the log: the log file is
 * world-readable and lines go to /dev/console until provisioning completes, while a script's output may carry secrets.
 */
function saveOutput(ctx: AgentContext, stdout: string, stderr: string): void {
  const file = `${ctx.libDir}/CustomData.out`;
  if (!stdout && !stderr) { ctx.os.fs.remove(file); return; }
  const cut = (t: string) => (t.length > CUSTOM_DATA_OUTPUT_MAX ? `${t.slice(0, CUSTOM_DATA_OUTPUT_MAX)}\n[truncated]\n` : t);
  try {
    ctx.os.fs.write(file, `--- stdout ---\n${cut(stdout)}\n--- stderr ---\n${cut(stderr)}`, { mode: 0o600 });
    ctx.log.info(`CustomData output (${stdout.length + stderr.length} characters) saved to ${file}`);
  } catch (e) {
    ctx.log.warn(`Cannot save the CustomData output to ${file}: ${(e as Error).message}`);
  }
}
