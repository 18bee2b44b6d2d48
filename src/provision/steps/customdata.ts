/** Provisioning step: CustomData (provisioning-and-os.md §3.15). */
import type { AgentContext } from '../../context';

export const CUSTOM_DATA_TIMEOUT_MS = 30 * 60 * 1000;

/**
 * Saves CustomData to `<Lib.Dir>/CustomData` (0600), base64/UTF-8 decoded when DecodeCustomData or ExecuteCustomData
 * is set (invalid data throws), and runs it synchronously as root with cwd Lib.Dir when ExecuteCustomData=y (0700,
 * 30-minute timeout, exit status logged, not fatal). The content is never logged. Returns whether the file changed.
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
  const out = (r.stdout + r.stderr).trim();
  if (out) ctx.log.info(`CustomData output:\n${out.slice(0, 16 * 1024)}`);
  return changed;
}
