// Authenticated proxies on a machine (DECISIONS.md D30; fabric-protocol.md §5.4): a real proxy from Debian
// (tinyproxy with `BasicAuth`) in the VM's network namespace. With the host plugin's status upload failing, the status
// blob goes directly to storage — through the proxy (its own log shows the request with the credentials accepted, the
// simulator sees tinyproxy's Via header); the wire server and the host plugin never do. A wrong password gives a clear
// error and retries, not a hang, and Ready still reaches the wire server. The credentials are never in the agent's
// log, never on a command line (/proc/*/cmdline) and in no file the run changed but /etc/waagent.conf.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createVm, defaultWaagentConf } from './vm';
import { defaultScenario, type Scenario } from '../fabric/scenario';
import { USER, PASSWORD, PORT, proxySkipReason, startProxy, proxyLogWhen, scanCmdlines, assertSecretNowhere } from './proxy-helpers';

const skip = proxySkipReason();
if (skip) console.log(`# skipping proxy VM tests: ${skip}`);

/** The scenario: the host plugin refuses the status upload, so the agent goes directly to storage (§5.3). */
function scenario(): Scenario {
  const sc = defaultScenario();
  sc.faults = [...sc.faults, { kind: 'hgStatus', status: 500 }];
  return sc;
}

test('proxy: HttpProxy.Host with user:password — the status blob goes through tinyproxy with Basic auth; the wire server never does; no secret leaks',
  { skip, timeout: 300_000 }, async () => {
    const vm = await createVm({
      scenario: scenario(),
      waagentConf: defaultWaagentConf({ 'HttpProxy.Host': `${USER}:${PASSWORD}@127.0.0.1`, 'HttpProxy.Port': String(PORT) }),
    });
    try {
      await startProxy(vm);
      const { result: run, seen } = await scanCmdlines(vm, vm.run(['-daemon'], { until: 'ready', timeoutMs: 120_000, graceMs: 6000 }));
      assert.ok((vm.simulator.summary()?.readyCount ?? 0) > 0, `not Ready: ${run.reason}\n${vm.readFile('/var/log/waagent.log')?.toString().slice(-3000)}`);
      // The status blob arrived, and through the proxy.
      await new Promise((r) => setTimeout(r, 500));
      const reqs = vm.simulator.requests();
      const blobPuts = reqs.filter((q) => q.kind === 'blob' && q.method === 'PUT');
      assert.ok(blobPuts.length > 0, `no direct status upload: ${reqs.map((q) => `${q.method} ${q.path} ${q.status}`).join('\n')}\n${vm.readFile('/var/log/waagent.log')?.toString().slice(-3000)}`);
      for (const q of blobPuts) assert.match(String(q.headers.via ?? ''), /tinyproxy/, `a status PUT bypassed the proxy: ${q.path}`);
      assert.ok(blobPuts.some((q) => q.status === 201));
      // Nothing else came through the proxy: the wire server and the host plugin are always reached directly.
      for (const q of reqs.filter((x) => x.kind !== 'blob')) assert.equal(q.headers.via, undefined, `${q.kind} ${q.path} went through the proxy`);
      const log = await proxyLogWhen(vm, /blobs\/status/);
      assert.match(log, /Request \(file descriptor \d+\): PUT http:\/\/127\.0\.0\.1(:80)?\/blobs\/status\//, `tinyproxy did not see the status PUT:\n${log}`);
      assert.doesNotMatch(log, /\/machine|:32526|comp=goalstate|comp=health/, 'the wire server or host plugin went through the proxy');
      assert.doesNotMatch(log, /407|Proxy Authentication Required|authentication/i, `the proxy refused the credentials:\n${log}`);
      // The proxy never saw a request without credentials it had to refuse, and no Proxy-Authorization reached storage.
      for (const q of reqs) assert.equal(q.headers['proxy-authorization'], undefined, `${q.path} carried Proxy-Authorization past the proxy`);
      await assertSecretNowhere(vm, PASSWORD, seen);
    } finally { await vm.destroy({ removeFiles: true }); }
  });

test('proxy: a wrong password in http_proxy gives a clear error naming the proxy and retries (not a hang); Ready still goes to the wire server; no secret leaks',
  { skip, timeout: 300_000 }, async () => {
    const wrong = 'Wr0ng-pass-77aa';
    const vm = await createVm({ scenario: scenario(), waagentConf: defaultWaagentConf() });
    try {
      await startProxy(vm);
      // Two status rounds at least (the goal-state period is 2 s in the bed), then stop.
      const t0 = Date.now();
      const { result: run, seen } = await scanCmdlines(vm, vm.run(['-daemon'], {
        until: 'ready', timeoutMs: 120_000, graceMs: 25_000,
        env: { http_proxy: `http://${USER}:${wrong}@127.0.0.1:${PORT}`, https_proxy: `http://${USER}:${wrong}@127.0.0.1:${PORT}` },
      }));
      assert.ok((vm.simulator.summary()?.readyCount ?? 0) > 0, `Ready did not reach the wire server: ${run.reason}`);
      assert.ok(Date.now() - t0 < 120_000);
      const log = await proxyLogWhen(vm, /blobs\/status[\s\S]*blobs\/status/);
      const refused = log.match(/PUT http:\/\/127\.0\.0\.1(:80)?\/blobs\/status\//g) ?? [];
      assert.ok(refused.length >= 2, `the upload was not retried through the proxy (${refused.length} attempts):\n${log}`);
      assert.equal(vm.simulator.requests().filter((q) => q.kind === 'blob').length, 0, 'a blob request got past a proxy that refused it');
      const agentLog = vm.readFile('/var/log/waagent.log')?.toString() ?? '';
      // tinyproxy 1.11 answers a refused plain request with 401 and closes before reading the body, so the agent sees
      // a reset: the error names the proxy and its credentials (a 407 gets "requires authentication (HTTP 407)").
      assert.match(agentLog, /status upload failed: .*direct: PUT 127\.0\.0\.1 through proxy 127\.0\.0\.1:8888: .*check the proxy and its credentials|proxy 127\.0\.0\.1:8888 requires authentication \(HTTP 407\): the credentials were refused/,
        `no clear proxy error:\n${agentLog.slice(-3000)}`);
      assert.ok(!agentLog.includes(wrong), 'the wrong password is in the agent log');
      await assertSecretNowhere(vm, wrong, seen);
    } finally { await vm.destroy({ removeFiles: true }); }
  });
