// Modules the idle daemon never needs stay unloaded until used (memory: README "Benchmarks"): the extension
// handler's dependencies load the downloader (and with it zlib and fs/promises) only when a handler is fetched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

function builtinsLoadedBy(modulePath: string, pattern: RegExp): string[] {
  const out = execFileSync(process.execPath, ['-e', `require(${JSON.stringify(require.resolve(modulePath))});
    console.log(JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule '))))`], { encoding: 'utf8' });
  return (JSON.parse(out) as string[]).map((m) => m.slice('NativeModule '.length)).filter((m) => pattern.test(m));
}

test('the extension handler and its dependencies load neither zlib nor fs/promises', () => {
  assert.deepEqual(builtinsLoadedBy('../../src/extensions/deps', /^(zlib|fs\/promises)$/), []);
  assert.deepEqual(builtinsLoadedBy('../../src/extensions/handler', /^(zlib|fs\/promises)$/), []);
});

test('the downloader itself does load them (the check above can fail)', () => {
  assert.deepEqual(builtinsLoadedBy('../../src/extensions/fetch', /^(zlib|fs\/promises)$/).sort(), ['fs/promises', 'zlib']);
});
