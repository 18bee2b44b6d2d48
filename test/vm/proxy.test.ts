// Authenticated proxies on a machine (DECISIONS.md D30; fabric-protocol.md §5.4): a real proxy from Debian
// (tinyproxy with `BasicAuth`) in the VM's network namespace. With the host plugin's status upload failing, the status
// blob goes directly to storage — through the proxy (its own log shows the request with the credentials accepted, the
// simulator sees tinyproxy's Via header); the wire server and the host plugin never do. A wrong password gives a clear
// error and retries, not a hang, and Ready still reaches the wire server. The credentials are never in the agent's
// log, never on a command line (/proc/*/cmdline) and in no file the run changed but /etc/waagent.conf.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createVm, defaultWaagentConf, vmUnavailableReason, type Vm } from './vm';
import { defaultScenario, type Scenario } from '../fabric/scenario';

let skip = vmUnavailableReason();
if (!skip) { try { execFileSync('sh', ['-c', 'command -v tinyproxy'], { stdio: 'ignore' }); } catch { skip = 'tinyproxy is not installed (apt-get install tinyproxy; see .ci/apt-packages.txt)'; } }
if (skip) console.log(`# skipping proxy VM tests: ${skip}`);

const USER = 'agentproxy';
const PASSWORD = 'Pr0xy-s3cret-9f2c';
const PORT = 8888;
const LOG = '/var/log/tinyproxy-test.log';

/** Starts tinyproxy inside the VM (it daemonizes; the VM's PID namespace ends it with the VM). */
async function startProxy(vm: Vm): Promise<void> {
  const conf = [
    'User nobody', 'Group nogroup', `Port ${PORT}`, 'Listen 127.0.0.1', 'Timeout 60', `LogFile "${LOG}"`, 'LogLevel Info',
    'PidFile "/run/tinyproxy-test.pid"', 'MaxClients 20', 'Allow 127.0.0.1', `BasicAuth ${USER} ${PASSWORD}`, 'ConnectPort 443', 'ConnectPort 80',
    'ViaProxyName "tinyproxy-bed"', '',
  ].join('\n');
  // The proxy's own configuration necessarily holds the password: it lives outside the agent's files, in /run.
  await vm.exec(['sh', '-c', `umask 077; cat > /run/tinyproxy-test.conf; : > ${LOG}; chown nobody ${LOG}`], conf);
  const r = await vm.exec(['tinyproxy', '-c', '/run/tinyproxy-test.conf']);
  assert.equal(r.code, 0, `tinyproxy: ${r.stdout}${r.stderr}`);
  for (let i = 0; i < 50; i++) {
    if (/listening on|Listening/i.test(await proxyLog(vm))) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`tinyproxy did not start:\n${await proxyLog(vm)}`);
}

async function proxyLog(vm: Vm): Promise<string> { return (await vm.exec(['cat', LOG])).stdout; }

/** The proxy's log once it matches `re` (tinyproxy writes it a little after answering), or as it is after 5 s. */
async function proxyLogWhen(vm: Vm, re: RegExp): Promise<string> {
  for (let i = 0; i < 50 && !re.test(await proxyLog(vm)); i++) await new Promise((r) => setTimeout(r, 100));
  return proxyLog(vm);
}

/** The scenario: the host plugin refuses the status upload, so the agent goes directly to storage (§5.3). */
function scenario(): Scenario {
  const sc = defaultScenario();
  sc.faults = [...sc.faults, { kind: 'hgStatus', status: 500 }];
  return sc;
}

/** While `during` runs, reads every process's command line in the VM every 200 ms; returns what it saw. */
async function scanCmdlines<T>(vm: Vm, during: Promise<T>): Promise<{ result: T; seen: string }> {
  let done = false;
  let seen = '';
  const scanning = (async () => {
    while (!done) {
      const r = await vm.exec(['sh', '-c', 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f" 2>/dev/null; echo; done']).catch(() => undefined);
      if (r) seen += r.stdout;
      await new Promise((res) => setTimeout(res, 200));
    }
  })();
  try { return { result: await during, seen }; } finally { done = true; await scanning; }
}

/** The command lines seen hold no secret (and did see the agent); no file the run created or changed holds it but
 *  waagent.conf; the agent's log does not either. */
async function assertSecretNowhere(vm: Vm, secret: string, cmdlines: string): Promise<void> {
  assert.ok(!cmdlines.includes(secret), 'the proxy password is on a command line');
  assert.match(cmdlines, /waagent -daemon/, 'the scan did not see the agent');
  const agentLog = vm.readFile('/var/log/waagent.log')?.toString() ?? '';
  assert.ok(agentLog.length > 0, 'no agent log');
  assert.ok(!agentLog.includes(secret), 'the proxy password is in the agent log');
  for (const c of vm.changedPaths()) {
    if (c.type !== 'file' || c.path === '/etc/waagent.conf' || c.path === LOG || c.path.startsWith('/run/tinyproxy-test')) continue;
    const data = vm.readFile(c.path);
    assert.ok(!data?.includes(secret), `the proxy password is in ${c.path}`);
    assert.ok(!data?.includes(Buffer.from(`${USER}:${PASSWORD}`).toString('base64')), `the proxy credentials (base64) are in ${c.path}`);
  }
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
