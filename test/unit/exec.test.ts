// The command runner: argv only, timeouts that kill the process group, and resolveOnExit for scripts that leave a
// background process holding their output (CustomData).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRunner } from '../../src/core/exec';

const run = createRunner({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin' });

test('argv is passed as is: no shell expands it', async () => {
  const r = await run(['echo', '$HOME', '`id`', ';', 'x']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, '$HOME `id` ; x\n');
});

test('a missing program is a spawn error, not a throw', async () => {
  const r = await run(['/nonexistent/program']);
  assert.equal(r.code, -1);
  assert.match(r.spawnError ?? '', /ENOENT/);
});

test('timeout kills the whole process group', async () => {
  const t0 = Date.now();
  const r = await run(['sh', '-c', 'sleep 9 & sleep 9'], { timeoutMs: 300 });
  assert.equal(r.timedOut, true);
  assert.ok(Date.now() - t0 < 5000, 'returned after the timeout');
});

test('timeout: returns within a bounded time even when a grandchild that left the process group holds the pipes', async () => {
  const t0 = Date.now();
  // setsid puts the grandchild in its own session: the process-group kill does not reach it, and it keeps stdout.
  const r = await run(['sh', '-c', 'setsid sleep 20 & echo $!; sleep 20'], { timeoutMs: 300 });
  const ms = Date.now() - t0;
  const escaped = parseInt(r.stdout, 10);
  try { process.kill(escaped, 'SIGKILL'); } catch { /* gone */ }
  assert.equal(r.timedOut, true);
  assert.match(r.stdout, /^\d+\n$/);
  assert.ok(ms < 8000, `returned after ${ms} ms`);
});

test('resolveOnExit: a background child holding stdout does not hold the caller', async () => {
  const t0 = Date.now();
  const r = await run(['sh', '-c', 'sleep 8 & echo started'], { resolveOnExit: true, timeoutMs: 30_000 });
  const ms = Date.now() - t0;
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'started\n');
  assert.ok(ms < 5000, `resolved after ${ms} ms`);
});
