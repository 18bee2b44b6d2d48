/**
 * `-register-service` (provisioning-and-os.md §1.2, §10.8): register the agent with the init system, stop it, start
 * it. The distro commands (§9.3) belong to the OS object: `registerAgentService`, `stopAgentService`,
 * `startAgentService`. A failing stop is ignored (the service may not be running); a failing register or start makes
 * the exit status 1 (D16).
 */
import { writeSync } from 'node:fs';
import type { CliOptions } from './args';
import { setupAgent } from './setup';
import { errorText } from '../core/log';

/** What -register-service needs from the OS object (LinuxOS and its variants implement it, §9.3). */
export interface AgentServiceControl {
  registerAgentService(): Promise<void>;
  stopAgentService(): Promise<void>;
  startAgentService(): Promise<void>;
}

/** Runs register, stop, start with the three progress lines of REF; returns 0 or 1. */
export async function registerService(svc: AgentServiceControl, say: (line: string) => void, logError: (m: string) => void): Promise<number> {
  let rc = 0;
  say('Register WALinuxAgent service');
  try { await svc.registerAgentService(); } catch (e) { logError(`Registering the agent service failed: ${errorText(e)}`); rc = 1; }
  say('Stop WALinuxAgent service');
  try { await svc.stopAgentService(); } catch { /* not running: fine */ }
  say('Start WALinuxAgent service');
  try { await svc.startAgentService(); } catch (e) { logError(`Starting the agent service failed: ${errorText(e)}`); rc = 1; }
  return rc;
}

/** The command: start-up (§1.4), then registerService with the distro's OS object. */
export async function runRegisterService(opts: CliOptions): Promise<number> {
  const ctx = await setupAgent(opts);
  return registerService(ctx.os, (l) => writeSync(1, `${l}\n`), (m) => { ctx.log.error(m); process.stderr.write(`${m}\n`); });
}
