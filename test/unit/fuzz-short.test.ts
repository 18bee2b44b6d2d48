// A short run of the fuzz campaign (test/fuzz/fuzz.ts) over every target, so CI keeps the parsers crash-free:
// a few hundred inputs each, a fixed seed (replayable), no crash, no input over the linear time bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TARGETS } from '../fuzz/targets';
import { fuzzTarget } from '../fuzz/fuzz';

const PER_TARGET: Record<string, number> = { 'http-response': 60, pkcs7: 150, certificates: 150, pkcs12: 150, iso9660: 150, udf: 300 };

for (const t of TARGETS) {
  test(`fuzz ${t.name}: no crash, no slow input`, async () => {
    const res = await fuzzTarget(t, PER_TARGET[t.name] ?? 400, 20261201);
    await t.close?.();
    assert.deepEqual(res.crashes.slice(0, 1), [], `crash in ${t.name}`);
    assert.deepEqual(res.slow, [], `slow inputs in ${t.name}`);
    assert.equal(res.inputs, PER_TARGET[t.name] ?? 400);
    assert.ok(res.clean + res.ok === res.inputs);
  });
}
