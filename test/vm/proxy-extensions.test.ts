// Extension downloads through an authenticated proxy (issue 12; DECISIONS.md D30; fabric-protocol.md §5.4: direct
// manifest and package downloads are storage traffic and use the proxy, the host plugin never does; extensions.md
// §4.1, §4.4 and its configuration table: HttpProxy.* are not exported to commands). A real tinyproxy with
// `BasicAuth` in the VM's network namespace, `HttpProxy.Host` = `user:password@127.0.0.1`; the host plugin's
// /extensionArtifact and /status fail, so the only way to install the fake extension and report it is the direct
// channel. The proxy's own log shows the manifest GET, the package GET and the status PUT; the simulator sees them
// with tinyproxy's Via header and no Proxy-Authorization; the wire server and the host plugin are reached directly.
// The extension installs and enables and its status (success) is uploaded. The password is never in the agent's
// log, on a command line (/proc/*/cmdline sampled), in the extension's environment, HandlerEnvironment.json or
// settings file, or in any file the run changed but /etc/waagent.conf. A wrong password: tinyproxy answers the direct
// manifest GET with its own 401, the agent names the proxy's refusal and retries, then the host plugin (never
// proxied) installs the extension.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { agentCommand, createVm, defaultWaagentConf, type Vm } from './vm';
import { defaultScenario } from '../fabric/scenario';
import { fakeExtensionPackage, FAKE_LOG } from '../fabric/fake-extension';
import { N, L, ext, entry, calls, callRecords, waitFor, startDaemon, agentLog } from './ext-helpers';
import { USER, PASSWORD, PORT, proxySkipReason, startProxy, proxyLogWhen, scanCmdlines, assertSecretNowhere } from './proxy-helpers';

let skip = proxySkipReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (skip) console.log(`# skipping proxy extension VM tests: ${skip}`);

/** Storage traffic in the simulator (§5.4: the only requests allowed through the proxy). */
const STORAGE = new Set(['blob', 'extManifest', 'extPackage', 'artifactsProfile']);

/** A throwaway VM whose waagent.conf points HttpProxy.* at the tinyproxy of the bed, with `password`. */
function proxyVm(sc: ReturnType<typeof defaultScenario>, password: string): Promise<Vm> {
  return createVm({
    scenario: sc,
    waagentConf: defaultWaagentConf({
      'HttpProxy.Host': `${USER}:${password}@127.0.0.1`, 'HttpProxy.Port': String(PORT), 'Extensions.GoalStatePeriod': '1',
    }),
  });
}

/** Starts the proxy and the daemon, waits until the enable's success is uploaded, stops the daemon; returns the command
 *  lines seen meanwhile (for the secret audit). */
async function runUntilEnableSuccess(vm: Vm, waitMs: number): Promise<string> {
  await startProxy(vm);
  const daemon = startDaemon(vm, 240_000);
  const { seen } = await scanCmdlines(vm, (async () => {
    try {
      await waitFor(vm, 'enable success uploaded', () => {
        const e = entry(vm);
        return e?.status === 'Ready' && e.runtimeSettingsStatus?.settingsStatus.status.status === 'success';
      }, waitMs);
    } finally { await daemon.stop(); }
  })());
  return seen;
}

test('proxy: the extension manifest and package download through tinyproxy with Basic auth (direct channel); install, enable, status uploaded; the wire server and host plugin never proxied; no secret leaks',
  { skip, timeout: 300_000 }, async () => {
    const sc = defaultScenario();
    sc.extensionPackages = [fakeExtensionPackage(N, '1.0.0')];
    sc.extensions = [ext({ fake: 'status=success', protectedSettingsPlain: { token: 'ext-protected-1' } })];
    // The host plugin refuses both the artifact download and the status upload: only the direct channel works.
    sc.faults = [...sc.faults, { kind: 'hgArtifact', status: 500 }, { kind: 'hgStatus', status: 500 }];
    const vm = await proxyVm(sc, PASSWORD);
    try {
      const seen = await runUntilEnableSuccess(vm, 120_000);

      // The extension installed and enabled, once each; its status (success) reached storage.
      assert.deepEqual(calls(vm), ['install@1.0.0', 'enable@1.0.0']);
      assert.equal(entry(vm)!.handlerVersion, '1.0.0');
      const log = agentLog(vm);
      assert.match(log, new RegExp(`${N.replace('.', '\\.')}-1\\.0\\.0: downloaded \\d+ bytes via direct from http://127\\.0\\.0\\.1(:80)?/storage/packages/`),
        `the package was not downloaded via the direct channel:\n${log.slice(-3000)}`);

      // The simulator: manifest, package and status blob came through tinyproxy (Via), nothing else did; the host
      // plugin was never asked for the artifact (direct is the default channel, and it worked).
      const reqs = vm.simulator.requests();
      const manifests = reqs.filter((q) => q.kind === 'extManifest');
      const packages = reqs.filter((q) => q.kind === 'extPackage');
      const statusPuts = reqs.filter((q) => q.kind === 'blob' && q.method === 'PUT');
      assert.ok(manifests.some((q) => q.status === 200), 'no manifest download');
      assert.ok(packages.some((q) => q.status === 200), 'no package download');
      assert.ok(statusPuts.some((q) => q.status === 201), 'no direct status upload');
      for (const q of [...manifests, ...packages, ...statusPuts]) assert.match(String(q.headers.via ?? ''), /tinyproxy/, `${q.kind} ${q.path} bypassed the proxy`);
      assert.equal(reqs.filter((q) => q.kind === 'hgArtifact').length, 0, 'an artifact went through the host plugin');
      for (const q of reqs.filter((x) => !STORAGE.has(x.kind))) assert.equal(q.headers.via, undefined, `${q.kind} ${q.path} went through the proxy`);
      for (const q of reqs) assert.equal(q.headers['proxy-authorization'], undefined, `${q.path} carried Proxy-Authorization past the proxy`);
      assert.deepEqual(vm.simulator.summary()!.failures, []);

      // The proxy's own log: the manifest and package GETs and the status PUT, credentials accepted, no fabric request.
      const plog = await proxyLogWhen(vm, /storage\/manifests[\s\S]*storage\/packages|storage\/packages[\s\S]*storage\/manifests/);
      const url = 'http:\\/\\/127\\.0\\.0\\.1(:80)?';
      assert.match(plog, new RegExp(`Request \\(file descriptor \\d+\\): GET ${url}\\/storage\\/manifests\\/m\\d+\\/${N.replace('.', '\\.')}\\.xml`, 'i'), `tinyproxy did not see the manifest GET:\n${plog}`);
      assert.match(plog, new RegExp(`Request \\(file descriptor \\d+\\): GET ${url}\\/storage\\/packages\\/m\\d+\\/[^ ]+\\.zip`), `tinyproxy did not see the package GET:\n${plog}`);
      assert.match(plog, new RegExp(`Request \\(file descriptor \\d+\\): PUT ${url}\\/blobs\\/status\\/`), `tinyproxy did not see the status PUT:\n${plog}`);
      assert.doesNotMatch(plog, /\/machine|:32526|extensionArtifact|comp=goalstate|comp=health|\/vmSettings/, 'the wire server or host plugin went through the proxy');
      assert.doesNotMatch(plog, /407|Proxy Authentication Required|authentication/i, `the proxy refused the credentials:\n${plog}`);

      // The extension's view: HttpProxy.* are not exported to its commands (extensions.md configuration table).
      const records = callRecords(vm);
      for (const r of records) {
        for (const [k, v] of Object.entries(r.env ?? {})) {
          assert.ok(!v.includes(PASSWORD) && !v.includes(`127.0.0.1:${PORT}`), `the proxy is in the ${r.op} command's environment (${k})`);
        }
      }
      // No secret anywhere, and the extension's own files were among the files checked.
      const checked = await assertSecretNowhere(vm, PASSWORD, seen);
      const H = `${L}/${N}-1.0.0`;
      for (const f of [`${L}/${FAKE_LOG}`, `${H}/HandlerEnvironment.json`, `${H}/config/0.settings`, `${H}/HandlerManifest.json`, '/var/log/waagent.log']) {
        assert.ok(checked.includes(f), `${f} was not among the changed files checked for the secret (${checked.join(', ')})`);
      }
      assert.ok(checked.some((f) => f.startsWith(`/var/log/azure/${N}/`)), 'the extension\'s log directory was not checked');
    } finally { await vm.destroy({ removeFiles: true }); }
  });

test('proxy: a wrong password refuses the direct manifest download with a clear error naming the proxy, retried (not a hang); the host plugin (never proxied) then installs the extension; no secret leaks',
  { skip, timeout: 300_000 }, async () => {
    const wrong = 'Wr0ng-ext-pass-31bd';
    const sc = defaultScenario();
    sc.extensionPackages = [fakeExtensionPackage(N, '1.0.0')];
    sc.extensions = [ext({ fake: 'status=success' })];
    const vm = await proxyVm(sc, wrong);
    try {
      const seen = await runUntilEnableSuccess(vm, 150_000);
      assert.deepEqual(calls(vm), ['install@1.0.0', 'enable@1.0.0']);
      const log = agentLog(vm);
      // The refusal is named for what it is (tinyproxy answers a wrong password with its own 401), and retried.
      assert.match(log, new RegExp(`extension manifest: download of http://127\\.0\\.0\\.1(:80)?/storage/manifests/\\S+ via direct failed: .*proxy 127\\.0\\.0\\.1:${PORT} requires authentication \\(HTTP 401\\): the credentials were refused`),
        `no clear proxy error:\n${log.slice(-4000)}`);
      assert.match(log, new RegExp(`${N.replace('.', '\\.')}-1\\.0\\.0: downloaded \\d+ bytes via hostplugin`), 'the package did not come through the host plugin');
      const plog = await proxyLogWhen(vm, /storage\/manifests[\s\S]*storage\/manifests/);
      const tries = plog.match(/GET http:\/\/127\.0\.0\.1(:80)?\/storage\/manifests\//g) ?? [];
      assert.ok(tries.length >= 2, `the direct download was not retried through the proxy (${tries.length} attempts):\n${plog}`);
      assert.doesNotMatch(plog, /\/machine|:32526|extensionArtifact|comp=goalstate|comp=health|\/vmSettings/, 'the wire server or host plugin went through the proxy');
      const reqs = vm.simulator.requests();
      // The proxy let nothing through (no request carries its Via); the host plugin answered directly.
      for (const q of reqs) assert.equal(q.headers.via, undefined, `${q.kind} ${q.path} went through a proxy that refused the credentials`);
      assert.ok(reqs.some((q) => q.kind === 'hgArtifact' && q.status === 200), 'the host plugin did not serve the artifact');
      assert.ok(!log.includes(wrong));
      await assertSecretNowhere(vm, wrong, seen);
    } finally { await vm.destroy({ removeFiles: true }); }
  });
