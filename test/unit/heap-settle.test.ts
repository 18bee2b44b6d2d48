// The idle daemon's memory settle (src/core/heap-settle.ts): when it runs, and that it gives V8 heap back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapStatistics } from 'node:v8';
import { QuietTracker, settleHeap } from '../../src/core/heap-settle';

test('quiet tracker: one settle per busy period, on the first quiet poll after it (start-up counts as busy)', () => {
  const q = new QuietTracker();
  // start-up: the first quiet poll settles, the following ones do not
  assert.deepEqual([false, false, false].map((busy) => q.afterPoll(busy)), [true, false, false]);
  // a new goal state / a running extension: nothing while busy, once when quiet again
  assert.deepEqual([true, true, false, false, true, false].map((busy) => q.afterPoll(busy)), [false, false, true, false, false, true]);
});

test('settleHeap gives back the heap garbage left by a busy period', () => {
  let junk: unknown[] | null = [];
  for (let i = 0; i < 300_000; i++) junk.push({ i, s: `item ${i}` });
  const grown = getHeapStatistics().total_heap_size;
  junk = null;
  const r = settleHeap();
  assert.ok(r, 'the engine gc is available without --expose-gc');
  assert.ok(r.before >= grown * 0.9, `before ${r.before} reflects the grown heap ${grown}`);
  assert.ok(r.after < r.before - 8 * 1048576, `committed heap ${r.before} → ${r.after}: more than 8 MiB given back`);
  // a second settle right after finds nothing left to give back, and does not fail
  const again = settleHeap();
  assert.ok(again && again.after <= again.before + 1048576);
});
