// init/waagent (SysV, provisioning-and-os.md §10.3, §10.9) run for real in a throwaway VM (test/vm/vm.ts, no systemd):
// status/start/start again/restart/stop with start-stop-daemon, and again with its fallback (start-stop-daemon off
// PATH); the PID file is honoured: a dead PID is "dead but PID file exists", a PID reused by another process is never
// signalled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TOP, agentCommand, createVm, defaultWaagentConf, imageWrite, resolveHostParent, vmUnavailableReason, type Vm } from './vm';
import { defaultScenario } from '../fabric/scenario';

let skip = vmUnavailableReason();
if (!skip && !existsSync(agentCommand())) skip = `agent executable ${agentCommand()} not built (node build.mjs)`;
if (skip) console.log(`# skipping SysV VM tests: ${skip}`);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** PIDs (in the VM) of processes whose command line is `/usr/sbin/waagent -daemon`. */
async function daemons(vm: Vm): Promise<number[]> {
  const r = await vm.exec(['sh', '-c', 'for p in /proc/[0-9]*; do c=$(tr "\\000" " " < $p/cmdline 2>/dev/null); case "$c" in "/usr/sbin/waagent -daemon"*) echo ${p#/proc/};; esac; done']);
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

for (const variant of ['start-stop-daemon', 'fallback'] as const) {
  test(`SysV init/waagent (${variant}): status, start, start again, restart, stop; PID file honoured`, { skip, timeout: 300_000 }, async () => {
    const vm = await createVm({
      scenario: defaultScenario(),
      waagentConf: defaultWaagentConf(),
      extraSetup(image) {
        imageWrite(image, '/etc/init.d/waagent', readFileSync(join(TOP, 'init', 'waagent')), 0o755);
        // The fallback: a whiteout in the image layer hides start-stop-daemon (RHEL and busybox have none).
        if (variant === 'fallback') {
          for (const p of ['/usr/sbin/start-stop-daemon', '/sbin/start-stop-daemon']) {
            const t = join(image, resolveHostParent(p));
            if (existsSync(p) && !existsSync(t)) { mkdirSync(dirname(t), { recursive: true }); execFileSync('mknod', [t, 'c', '0', '0']); }
          }
        }
      },
    });
    // Called with a minimal PATH, as init and service(8) do; the script sets its own.
    const svc = (verb: string) => vm.exec(['env', '-i', 'PATH=/usr/bin:/bin', '/etc/init.d/waagent', verb]);
    const log = (): string => `\n--- waagent.log ---\n${vm.readFile('/var/log/waagent.log')?.toString().slice(-2000) ?? '(none)'}`;
    try {
      const ssd = (await vm.exec(['sh', '-c', 'command -v start-stop-daemon'])).code === 0;
      assert.equal(ssd, variant !== 'fallback', `start-stop-daemon ${ssd ? 'present' : 'missing'} in the VM`);

      let r = await svc('status');
      assert.equal(r.code, 3, `status before start: ${r.stdout}`);
      assert.match(r.stdout, /is not running/);

      r = await svc('start');
      assert.equal(r.code, 0, `start: ${r.stdout}${r.stderr}`);
      await waitFor('Ready', () => (vm.simulator.summary()?.readyCount ?? 0) > 0 || undefined).catch((e: Error) => { throw new Error(e.message + log()); });
      const pid1 = await waitFor('the PID file', () => Number(vm.readFile('/run/waagent.pid')?.toString().trim()) || undefined);
      assert.deepEqual(await daemons(vm), [pid1], 'the PID file names the one daemon');
      r = await svc('status');
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`\\(pid ${pid1}\\) is running`));

      r = await svc('start');
      assert.equal(r.code, 0);
      assert.match(r.stdout, /already running/);
      assert.deepEqual(await daemons(vm), [pid1], 'a second start must not start a second daemon');

      const readyBefore = vm.simulator.summary()!.readyCount;
      r = await svc('restart');
      assert.equal(r.code, 0, `restart: ${r.stdout}${r.stderr}`);
      const pid2 = await waitFor('the new PID file', () => { const p = Number(vm.readFile('/run/waagent.pid')?.toString().trim()); return p && p !== pid1 ? p : undefined; });
      await waitFor('Ready after restart', () => vm.simulator.summary()!.readyCount > readyBefore || undefined);
      assert.deepEqual(await daemons(vm), [pid2]);

      r = await svc('stop');
      assert.equal(r.code, 0, `stop: ${r.stdout}${r.stderr}`);
      assert.deepEqual(await daemons(vm), [], 'the daemon survived stop');
      assert.equal(vm.readFile('/run/waagent.pid'), undefined, 'PID file left behind');
      r = await svc('status');
      assert.equal(r.code, 3);
      r = await svc('stop');
      assert.equal(r.code, 0, 'stop when not running is 0');

      // A dead PID in the PID file: "dead but PID file exists" (LSB 1); start replaces it.
      vm.writeFile('/run/waagent.pid', '999999');
      r = await svc('status');
      assert.equal(r.code, 1, `status with a stale PID file: ${r.stdout}`);
      assert.match(r.stdout, /dead but \/var\/run\/waagent\.pid exists/);

      // A PID reused by another process: not ours, never signalled by stop.
      const other = Number((await vm.exec(['sh', '-c', 'sleep 600 >/dev/null 2>&1 & echo $!'])).stdout.trim());
      assert.ok(other > 0);
      vm.writeFile('/run/waagent.pid', String(other));
      r = await svc('status');
      assert.equal(r.code, 1, `a foreign PID must not count as running: ${r.stdout}`);
      r = await svc('stop');
      assert.equal(r.code, 0);
      assert.equal((await vm.exec(['kill', '-0', String(other)])).code, 0, 'stop killed a process that is not the agent');
      r = await svc('start');
      assert.equal(r.code, 0);
      const pid3 = await waitFor('the daemon after a start over a foreign PID', async () => (await daemons(vm))[0]);
      await waitFor('the PID file of the new daemon', () => Number(vm.readFile('/run/waagent.pid')?.toString().trim()) === pid3 || undefined);
      await svc('stop');
      assert.deepEqual(await daemons(vm), []);
    } finally {
      await vm.destroy({ removeFiles: true });
    }
  });
}
