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
