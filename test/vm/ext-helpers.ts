/** Helpers of the extension VM tests: the fake extension's scenario entries, the uploaded status, the fake's record
 *  log, waiting for the agent while it runs as a daemon. */
import { createHash } from 'node:crypto';
import type { Vm, RunResult } from './vm';
import type { ExtensionSpec, Scenario } from '../fabric/scenario';
import { FAKE_LOG, type FakeRecord } from '../fabric/fake-extension';

export const N = 'Test.Fake';
export const L = '/var/lib/waagent';

export interface HandlerEntry {
  handlerName: string;
  handlerVersion: string;
  status: string;
  code: number;
  formattedMessage?: { message: string };
  runtimeSettingsStatus?: { sequenceNumber: number; settingsStatus: { status: { status: string; code: number | string; formattedMessage?: { message: string }; name?: string } } };
}

interface StatusDoc {
  aggregateStatus?: {
    handlerAggregateStatus?: HandlerEntry[];
    vmArtifactsAggregateStatus?: { goalStateAggregateStatus?: { inSvdSeqNo: string; status: string; code: number } };
  };
}

export function ext(over: Partial<ExtensionSpec> & { fake?: string }): ExtensionSpec {
  const { fake, ...rest } = over;
  return { name: N, version: '1.0.0', state: 'enabled', seqNo: 0, publicSettings: { fake: fake ?? 'status=success' }, ...rest };
}

export function latest(vm: Vm): StatusDoc | undefined {
  return vm.simulator.summary()?.latestStatus as StatusDoc | undefined;
}

export function entry(vm: Vm, name = N): HandlerEntry | undefined {
  return latest(vm)?.aggregateStatus?.handlerAggregateStatus?.find((h) => h.handlerName === name);
}

export function gsAggregate(vm: Vm): { inSvdSeqNo: string; status: string; code: number } | undefined {
  return latest(vm)?.aggregateStatus?.vmArtifactsAggregateStatus?.goalStateAggregateStatus;
}

export function fakeLog(vm: Vm): FakeRecord[] {
  const text = vm.readFile(`${L}/${FAKE_LOG}`)?.toString('utf8') ?? '';
  return text.split('\n').filter(Boolean).map((l) => {
    try { return JSON.parse(l) as FakeRecord; } catch { return { time: '', op: '?', raw: l }; }
  });
}

/** `op@version` of every command the fake recorded, from record `from` on. */
export function calls(vm: Vm, from = 0): string[] {
  return fakeLog(vm).filter((r) => !r.event && r.op !== '?').slice(from).map((r) => `${r.op}@${(r.handlerDir ?? '').split('-').pop()}`);
}
export function callRecords(vm: Vm): FakeRecord[] {
  return fakeLog(vm).filter((r) => !r.event && r.op !== '?');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every 100 ms; throws with `what` and the agent log's tail after `ms`. */
export async function waitFor<T>(vm: Vm, what: string, pred: () => T | undefined | false, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\nstatus: ${JSON.stringify(entry(vm))}\n--- agent log ---\n${vm.readFile('/var/log/waagent.log')?.toString().slice(-4000) ?? '(none)'}`);
    await sleep(100);
  }
}

/** Publishes a new incarnation whose ExtensionsConfig lists `extensions`. */
export function publish(vm: Vm, sc: Scenario, extensions: ExtensionSpec[]): number {
  sc.incarnation = Math.max(sc.incarnation, vm.simulator.summary()?.incarnation ?? 0) + 1;
  sc.extensions = extensions;
  vm.simulator.setScenario(sc);
  return sc.incarnation;
}

/** Starts the daemon in the background; `stop()` ends it with SIGTERM, `kill()` with SIGKILL. */
export function startDaemon(vm: Vm, timeoutMs = 600_000): { done: Promise<RunResult>; stop(): Promise<RunResult>; kill(): Promise<RunResult> } {
  let how: NodeJS.Signals | undefined;
  const done = vm.run(['-daemon'], { timeoutMs, killWhen: () => how !== undefined, get killSignal() { return how; } } as Parameters<Vm['run']>[1]);
  return {
    done,
    stop: () => { how = 'SIGTERM'; return done; },
    kill: () => { how = 'SIGKILL'; return done; },
  };
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

export function agentLog(vm: Vm): string {
  return vm.readFile('/var/log/waagent.log')?.toString() ?? '';
}
