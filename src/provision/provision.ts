/**
 * Built-in provisioning (provisioning-and-os.md §3.6 steps 5–19): the orchestrator. Reports NotReady/Provisioning
 * first (never waiting for the fabric), runs each idempotent step in order, writes the marker, ejects the DVD,
 * handles ProvisionGuestAgent, reports Ready and the host-key thumbprint. Any error becomes NotReady /
 * ProvisioningFailed `Failed to provision: <msg>` (redacted), and the marker is not written (§3.18).
 */
import type { AgentContext } from '../context';
import type { FabricLink } from '../fabric/types';
import type { OvfEnv } from './ovf';
import { validateHostName, validateUserName } from './ovf';
import { applyHostname } from './steps/hostname';
import { ensureUser } from './steps/user';
import { applyPassword } from './steps/password';
import { applySudoers } from './steps/sudoers';
import { applySshdConfig } from './steps/sshd-config';
import { deployPublicKeys, deployKeyPairs, type ImdsPublicKey, type KeyOptions } from './steps/ssh-keys';
import { applyCustomData } from './steps/customdata';
import { applyRootPasswordLock } from './steps/root-password';
import { applyHostKeys } from './steps/host-keys';
import { writeMarker } from './marker';
import { execStats } from '../core/exec';
import { diagnoseStorage, withStorageHint } from './storage';

export interface ProvisionOutcome {
  success: boolean;
  /** The reported description on failure (`Failed to provision: …`). */
  error?: string;
  /** Host-key fingerprint sent as role property (undefined when it could not be computed). */
  thumbprint?: string;
  /** ProvisionGuestAgent was false: `<Lib.Dir>/disable_agent` was written. */
  agentDisabled: boolean;
  /** The failure came from a full or read-only file system (storage.ts): worth another attempt later. */
  retryable?: boolean;
}

export interface ProvisionInput {
  ovf: OvfEnv;
  fabric: FabricLink;
  getImdsPublicKeys?: () => Promise<ImdsPublicKey[]>;
  /** Called right after the marker is written (eject the DVD); errors are logged only. */
  onMarkerWritten?: () => Promise<void>;
  /** Bound of the wait for the fabric's certificates when a key needs one (default 5 minutes). */
  certificateWaitMs?: number;
  /** Stop request (SIGTERM): checked before each step; provisioning then ends without a report, to resume later. */
  signal?: AbortSignal;
}

/** Thrown between steps when the stop request came: not a provisioning failure. */
class Interrupted extends Error {}

const DEFAULT_CERT_WAIT_MS = 5 * 60 * 1000;

/** Waits for `fabric.connected()` at most `ms`; never throws. */
export async function waitForFabric(ctx: AgentContext, fabric: FabricLink, ms: number): Promise<boolean> {
  if (fabric.isConnected) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => { timer = setTimeout(() => r(false), ms); });
  try {
    const ok = await Promise.race([fabric.connected().then(() => true, () => false), timeout]);
    if (!ok) ctx.log.warn(`The fabric did not deliver certificates within ${Math.round(ms / 1000)}s`);
    return ok;
  } finally { clearTimeout(timer); }
}

/** Writes `<Lib.Dir>/disable_agent` when ProvisionGuestAgent is false (§3.20); returns whether the agent is disabled. */
export function applyProvisionGuestAgent(ctx: AgentContext, ovf: OvfEnv): boolean {
  if (ovf.provisionGuestAgent) return false;
  const f = `${ctx.libDir}/disable_agent`;
  if (!ctx.os.fs.exists(f)) ctx.os.fs.write(f, '', { mode: 0o644 });
  ctx.log.info(`ProvisionGuestAgent is false: wrote ${f}; extensions will not be processed`);
  return true;
}

/** Runs the built-in provisioning; see the module comment. Never throws. */
export async function provision(ctx: AgentContext, input: ProvisionInput): Promise<ProvisionOutcome> {
  const { ovf, fabric } = input;
  const started = Date.now();
  const commandsBefore = execStats.count;
  fabric.reportHealth({ state: 'NotReady', subStatus: 'Provisioning', description: 'Starting' });
  if (ovf.userPassword) ctx.log.addSecret(ovf.userPassword);
  let thumbprint: string | undefined;
  let agentDisabled = false;
  // Independent work runs side by side (host keys in the thread pool, the host name and its DHCP publication beside
  // the account steps); every promise is awaited before the marker, so a failure still stops provisioning.
  const pending: Promise<unknown>[] = [];
  const track = <T>(p: Promise<T>): Promise<T> => { p.catch(() => undefined); pending.push(p); return p; };
  try {
    const step = (): void => { if (input.signal?.aborted) throw new Interrupted('interrupted'); };
    validateHostName(ovf.hostName);
    validateUserName(ovf.userName);
    step();
    track(applyHostname(ctx, ovf.hostName));
    const u = await ensureUser(ctx, ovf.userName);
    const user = { name: ovf.userName, uid: u.uid, gid: u.gid, home: u.home };
    step();
    if (ovf.userPassword) await applyPassword(ctx, ovf.userName, ovf.userPassword);
    step();
    await applySudoers(ctx, ovf.userName, !ovf.userPassword);
    step();
    // Host keys in the thread pool from here: started earlier they compete with the transport key the fabric link
    // is making at the same moment (the critical path to Ready), and they are needed only at the end.
    // Executed CustomData must find the host keys as they were (§3.6: step 12 before step 14), so then they wait.
    const runsCustomData = ovf.customData !== undefined && ctx.conf.bool('Provisioning.ExecuteCustomData');
    let hostKeys = runsCustomData ? undefined : track(applyHostKeys(ctx, ovf.hostName));
    await applySshdConfig(ctx, ovf.disableSshPasswordAuthentication);
    step();
    const keyOpts: KeyOptions = {
      getImdsPublicKeys: input.getImdsPublicKeys,
      waitForCertificates: async () => { await waitForFabric(ctx, fabric, input.certificateWaitMs ?? DEFAULT_CERT_WAIT_MS); },
    };
    await deployPublicKeys(ctx, user, ovf.publicKeys, keyOpts);
    step();
    await deployKeyPairs(ctx, user, ovf.keyPairs, keyOpts);
    step();
    await applyCustomData(ctx, ovf.customData);
    step();
    await applyRootPasswordLock(ctx);
    step();
    hostKeys ??= track(applyHostKeys(ctx, ovf.hostName));
    await Promise.all(pending);
    thumbprint = await hostKeys;
    step();
    await ctx.os.reloadSshdIfRunning();
    await writeMarker(ctx);
  } catch (e) {
    await Promise.allSettled(pending);
    if (e instanceof Interrupted) {
      ctx.log.info('Provisioning stopped before its next step (stop request); the marker is not written');
      return { success: false, error: 'interrupted', agentDisabled: false };
    }
    const storage = diagnoseStorage(ctx, e);
    const msg = ctx.log.redact(withStorageHint(`Failed to provision: ${(e as Error)?.message ?? String(e)}`, storage));
    ctx.log.error(`Provisioning failed: ${msg}`);
    fabric.reportHealth({ state: 'NotReady', subStatus: 'ProvisioningFailed', description: msg });
    return { success: false, error: msg, agentDisabled: false, retryable: storage.retryable };
  }
  if (input.onMarkerWritten) {
    try { await input.onMarkerWritten(); } catch (e) { ctx.log.warn(`Ejecting the provisioning DVD failed: ${(e as Error).message}`); }
  }
  ctx.log.info(`Provisioning succeeded (${((Date.now() - started) / 1000).toFixed(2)}s, ${execStats.count - commandsBefore} commands run)`);
  try { agentDisabled = applyProvisionGuestAgent(ctx, ovf); } catch (e) { ctx.log.warn(`Cannot write disable_agent: ${(e as Error).message}`); }
  fabric.reportHealth({ state: 'Ready' });
  if (thumbprint) fabric.reportRoleProperties(thumbprint);
  return { success: true, thumbprint, agentDisabled };
}

/** Provisioning disabled (§3.2): write the marker and report Ready; nothing else is touched. Never throws. */
export async function provisionDisabled(ctx: AgentContext, fabric: FabricLink): Promise<ProvisionOutcome> {
  try { await writeMarker(ctx); } catch (e) { ctx.log.error(`Cannot write the provisioned marker: ${(e as Error).message}`); }
  ctx.log.info('Provisioning is disabled: reporting Ready');
  fabric.reportHealth({ state: 'Ready' });
  return { success: true, agentDisabled: false };
}
