// The glue of extensions.md §3.2/§3.7: a new incarnation is processed once, in the background; the same incarnation
// polled again runs nothing; a goal state arriving mid-way waits for the running one (newest only); progress uploads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExtensionsHandler } from '../../src/extensions/handler';
import { Config } from '../../src/config/config';
import { log } from '../../src/core/log';
import type { AgentContext } from '../../src/context';
import type { FabricLinkHandle } from '../../src/fabric/link';
import type { GoalState } from '../../src/fabric/wire';
import type { StatusInput } from '../../src/fabric/status';
import { extConfig, plugin, scSettings, makeFakeBed, L } from './ext-helpers';
import { HandlerDir } from '../../src/extensions/handler-state';

function gs(incarnation: string, seq: number): GoalState {
  const ec = extConfig([plugin('Test.Fake', '1.0.0')], [scSettings('Test.Fake', '1.0.0', seq)]);
  return { doc: {} as GoalState['doc'], ids: { incarnation, containerId: 'c', instanceId: 'i', configName: 'n' }, extensionsConfig: ec, certificates: [], certificatesOk: true };
}

test('handler: process a new incarnation once, queue the newest during a run, upload progress and the aggregate', async () => {
  const bed = makeFakeBed();
  try {
    const ctx = { conf: new Config('(test)', { 'Extension.LogDir': '/var/log/azure' }), os: { fs: bed.fs, run: async () => ({ code: 0 }) }, log, libDir: L } as unknown as AgentContext;
    const uploads: Partial<StatusInput>[] = [];
    const link = { wire: undefined, uploadStatus: async (s: Partial<StatusInput>) => { uploads.push(s); return 'direct'; } } as unknown as FabricLinkHandle;
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let enables = 0;
    const deps = {
      ...bed.deps,
      async runCommand(a: Parameters<typeof bed.deps.runCommand>[0]) {
        const r = await bed.deps.runCommand(a);
        if (a.operation === 'enable' && ++enables === 1) await gate; // the first enable hangs until released
        return r;
      },
      readExtensionStatus: async () => ({ status: 'success', code: 0 }),
    };
    const h = new ExtensionsHandler(ctx, link, { deps: () => deps, progressIntervalMs: 0 });
    const first = await h.onPoll(gs('1', 0));
    assert.equal(first.goalState, undefined);
    await new Promise((r) => setTimeout(r, 50));
    await h.onPoll(gs('1', 0)); // same incarnation: nothing new
    await h.onPoll(gs('2', 1)); // arrives mid-way: waits
    await h.onPoll(gs('3', 2)); // newer: replaces 2
    release();
    await h.idle();
    await new Promise((r) => setTimeout(r, 50));
    await h.idle();
    assert.deepEqual(bed.events.filter((e) => e.startsWith('install') || e.startsWith('enable')), ['install@1.0.0', 'enable@1.0.0', 'enable@1.0.0']);
    assert.deepEqual(bed.calls.filter((c) => c.op === 'enable').map((c) => c.env.ConfigSequenceNumber), ['0', '2']);
    const s = await h.statusInput();
    assert.equal(s.goalState?.inSvdSeqNo, '3');
    assert.equal(s.goalState?.status, 'Success');
    assert.deepEqual(s.handlers?.map((x) => [x.handlerName, x.status, x.runtimeSettings?.sequenceNumber, x.runtimeSettings?.status.status]), [['Test.Fake', 'Ready', 2, 'success']]);
    assert.ok(uploads.length >= 2, 'progress uploads outside the poll');
    assert.ok(uploads.some((u) => u.goalState?.inSvdSeqNo === '1'));
    assert.deepEqual(s.supportedFeatures, ['MultipleExtensionsPerHandler']);
    h.stop();
  } finally { bed.cleanup(); }
});

test('handler start-up: HandlerEnvironment.json rewritten for every handler directory, ETP folders removed, cloud-init waited for once (§5.10, §10.3, §3.2)', async () => {
  const bed = makeFakeBed();
  try {
    bed.fs.mkdir(`${L}/Test.Fake-1.0.0`, 0o755);
    bed.fs.write(`${L}/Test.Fake-1.0.0/HandlerManifest.json`, '[]', { mode: 0o644 });
    bed.fs.mkdir(`${L}/custom-script`, 0o755);
    bed.fs.mkdir('/var/log/azure/Test.Fake/events', 0o700);
    bed.fs.write('/var/log/azure/Test.Fake/events/1.json', '{}', { mode: 0o600 });
    bed.fs.write('/var/log/azure/Test.Fake/CommandExecution.log', 'x', { mode: 0o644 });
    const runs: string[][] = [];
    const ctx = { conf: new Config('(test)', { 'Extensions.WaitForCloudInit': 'y', 'Extensions.WaitForCloudInitTimeout': '7' }),
      os: { fs: bed.fs, run: async (argv: string[], o: { timeoutMs?: number }) => { runs.push([...argv, String(o.timeoutMs)]); return { code: 0 }; } }, log, libDir: L } as unknown as AgentContext;
    const rewritten: string[] = [];
    const link = { wire: undefined, uploadStatus: async () => 'direct' } as unknown as FabricLinkHandle;
    const h = new ExtensionsHandler(ctx, link, { deps: () => ({ ...bed.deps, readExtensionStatus: async () => ({ status: 'success', code: 0 }) }), rewriteEnvironment: (d, n) => rewritten.push(`${d} ${n}`) });
    await h.onPoll(gs('1', 0));
    await h.idle();
    await h.onPoll(gs('2', 1));
    await h.idle();
    assert.deepEqual(rewritten, [`${L}/Test.Fake-1.0.0 Test.Fake`]);
    assert.equal(bed.exists('/var/log/azure/Test.Fake/events'), false);
    assert.equal(bed.exists('/var/log/azure/Test.Fake/CommandExecution.log'), true);
    assert.deepEqual(runs, [['cloud-init', 'status', '--wait', '7000']]);
    h.stop();
  } finally { bed.cleanup(); }
});

test('on hold: nothing runs, nothing is cleaned, the aggregate stays as it was (§3.2 gate 2)', async () => {
  const bed = makeFakeBed();
  try {
    const ctx = { conf: new Config('(test)', {}), os: { fs: bed.fs, run: async () => ({ code: 0 }) }, log, libDir: L } as unknown as AgentContext;
    const link = { wire: undefined, uploadStatus: async () => 'direct' } as unknown as FabricLinkHandle;
    let hold = false;
    const h = new ExtensionsHandler(ctx, link, { deps: () => ({ ...bed.deps, readExtensionStatus: async () => ({ status: 'success', code: 0 }) }), onHold: async () => hold });
    const g1 = gs('1', 0); g1.extensionsConfig!.artifactsProfileBlob = 'http://x/profile';
    await h.onPoll(g1); await h.idle();
    assert.equal(bed.calls.length, 2);
    new HandlerDir(bed.fs, L, 'Gone', '1.0').setState('Enabled');
    hold = true;
    const g2 = gs('2', 1); g2.extensionsConfig!.artifactsProfileBlob = 'http://x/profile';
    await h.onPoll(g2); await h.idle();
    assert.equal(bed.calls.length, 2, 'no command while on hold');
    assert.equal(bed.exists(`${L}/Gone-1.0`), true, 'no clean-up while on hold');
    assert.equal((await h.statusInput()).goalState?.inSvdSeqNo, '1');
    h.stop();
  } finally { bed.cleanup(); }
});

test('a thumbprint referenced by the settings without its .crt on disk → certificates fetched again first (§7.2)', async () => {
  const bed = makeFakeBed();
  try {
    const ctx = { conf: new Config('(test)', {}), os: { fs: bed.fs, run: async () => ({ code: 0 }) }, log, libDir: L } as unknown as AgentContext;
    const fetched: string[] = [];
    const order: string[] = [];
    const wire = { endpoint: { host: '127.0.0.1' }, fetchCertificates: async (u: string) => { fetched.push(u); order.push('certificates'); return { certs: [], ok: true }; } };
    const link = { wire, uploadStatus: async () => 'direct' } as unknown as FabricLinkHandle;
    const deps = { ...bed.deps, readExtensionStatus: async () => ({ status: 'success', code: 0 }),
      runCommand: async (a: Parameters<typeof bed.deps.runCommand>[0]) => { order.push(a.operation); return bed.deps.runCommand(a); } };
    const h = new ExtensionsHandler(ctx, link, { deps: () => deps });
    const TP = 'F6ABAA61098A301EBB8A571C3C7CF77F355F7FA9';
    const withTp = (inc: string, seq: number): GoalState => {
      const g = gs(inc, seq);
      g.doc = { certificatesUri: 'http://wire/certs' } as GoalState['doc'];
      g.extensionsConfig!.pluginSettings[0].runtimeSettings[0].json = JSON.stringify({ runtimeSettings: [{ handlerSettings: { protectedSettings: 'MIIB', protectedSettingsCertThumbprint: TP.toLowerCase() } }] });
      return g;
    };
    await h.onPoll(withTp('1', 0)); await h.idle();
    assert.deepEqual(fetched, ['http://wire/certs']);
    assert.deepEqual(order, ['certificates', 'install', 'enable']);
    bed.fs.write(`${L}/${TP}.crt`, 'cert', { mode: 0o600 });
    await h.onPoll(withTp('2', 1)); await h.idle();
    assert.equal(fetched.length, 1, 'not fetched when the file is there');
    h.stop();
  } finally { bed.cleanup(); }
});
