/** Helpers of the proxy VM tests (DECISIONS.md D30; fabric-protocol.md §5.4): a real tinyproxy with `BasicAuth` in
 *  the VM's network namespace, its own log, a sampler of every command line in the VM, and the check that a proxy
 *  secret is nowhere but in the operator's /etc/waagent.conf (and the proxy's own files). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { vmUnavailableReason, type Vm } from './vm';

export const USER = 'agentproxy';
export const PASSWORD = 'Pr0xy-s3cret-9f2c';
export const PORT = 8888;
export const LOG = '/var/log/tinyproxy-test.log';

/** Why the proxy VM tests cannot run here (no VM support, no tinyproxy), or undefined. */
export function proxySkipReason(): string | undefined {
  const skip = vmUnavailableReason();
  if (skip) return skip;
  try { execFileSync('sh', ['-c', 'command -v tinyproxy'], { stdio: 'ignore' }); } catch { return 'tinyproxy is not installed (apt-get install tinyproxy; see .ci/apt-packages.txt)'; }
  return undefined;
}

/** Starts tinyproxy inside the VM (it daemonizes; the VM's PID namespace ends it with the VM). */
export async function startProxy(vm: Vm): Promise<void> {
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

export async function proxyLog(vm: Vm): Promise<string> { return (await vm.exec(['cat', LOG])).stdout; }

/** The proxy's log once it matches `re` (tinyproxy writes it a little after answering), or as it is after 5 s. */
export async function proxyLogWhen(vm: Vm, re: RegExp): Promise<string> {
  for (let i = 0; i < 50 && !re.test(await proxyLog(vm)); i++) await new Promise((r) => setTimeout(r, 100));
  return proxyLog(vm);
}

/** While `during` runs, reads every process's command line in the VM every 200 ms; returns what it saw. */
export async function scanCmdlines<T>(vm: Vm, during: Promise<T>): Promise<{ result: T; seen: string }> {
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

/** The command lines seen hold no secret (and did see the agent); no file the run created or changed holds it (nor
 *  `user:secret` in base64) but waagent.conf and the proxy's own files; the agent's log does not either. Returns the
 *  paths of the changed files it checked. */
export async function assertSecretNowhere(vm: Vm, secret: string, cmdlines: string, user = USER): Promise<string[]> {
  assert.ok(!cmdlines.includes(secret), 'the proxy password is on a command line');
  assert.match(cmdlines, /waagent -daemon/, 'the scan did not see the agent');
  const agentLog = vm.readFile('/var/log/waagent.log')?.toString() ?? '';
  assert.ok(agentLog.length > 0, 'no agent log');
  assert.ok(!agentLog.includes(secret), 'the proxy password is in the agent log');
  const b64 = Buffer.from(`${user}:${secret}`).toString('base64');
  const checked: string[] = [];
  for (const c of vm.changedPaths()) {
    if (c.type !== 'file' || c.path === '/etc/waagent.conf' || c.path === LOG || c.path.startsWith('/run/tinyproxy-test')) continue;
    const data = vm.readFile(c.path);
    assert.ok(!data?.includes(secret), `the proxy password is in ${c.path}`);
    assert.ok(!data?.includes(b64), `the proxy credentials (base64) are in ${c.path}`);
    checked.push(c.path);
  }
  return checked;
}
