// Secrets audit of a full first boot with the built daemon in a throwaway VM (issue 10 "Secrets audit" and "Local
// users"; provisioning-and-os.md §3.9, §3.13, §10.10; extensions.md §7.2). The scenario carries known secrets — the
// user's password, the tenant certificate's private key, protected extension settings, a marker in CustomData —
// and the daemon runs under `strace -f -e execve` so that the argv and environment of every program it starts are
// recorded exactly (a sampler of /proc could miss a 20 ms chpasswd), while a sampler running as nobody sweeps every
// process's cmdline and environ the way a local user could (a root canary with the password in its argv proves it
// sees what is there). Then: no secret (nor the password hash, nor a
// host private key) in any log, in the agent's console output, in any world-readable file of the VM's changed files,
// /var/log, /var/lib/waagent, /tmp or /var/tmp, or in any argv or environment; the protected settings are nowhere in
// clear at all; certificates, keys, ovf-env.xml, CustomData and the settings documents are 0600 root in a 0700
// Lib.Dir. (Local users vs the wire server with the firewall on: test/vm/network.test.ts, as root vs nobody.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import { agentCommand, createVm, defaultWaagentConf, hiddenHostPaths, vmUnavailableReason, type Vm } from './vm';
import { defaultScenario } from '../fabric/scenario';

let skip = vmUnavailableReason();
if (!skip) {
  try { execFileSync('test', ['-e', agentCommand().split(/\s+/)[0]]); } catch { skip = `agent executable ${agentCommand()} not built (node build.mjs)`; }
}
if (!skip) {
  try { execFileSync('sh', ['-c', 'command -v strace'], { stdio: 'ignore' }); } catch { skip = 'strace is not installed (see .ci/apt-packages.txt)'; }
}
if (skip) console.log(`# skipping VM secrets audit: ${skip}`);

const LIB = '/var/lib/waagent';
const count = (text: string, re: RegExp): number => text.split('\n').filter((l) => re.test(l)).length;
/** Run as nobody during the boot: sweeps /proc until /dev/shm/sampler.stop exists (at most 120 s), writing each
 *  process's cmdline (CMD) and, when readable, its environment (ENV<uid>) to /dev/shm/sampler.out. */
const SAMPLER = `
out=/dev/shm/sampler.out; : > $out; end=$(( $(date +%s) + 120 ))
while [ ! -e /dev/shm/sampler.stop ] && [ $(date +%s) -lt $end ]; do
  echo SWEEP >> $out
  for p in /proc/[0-9]*; do
    c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null) && [ -n "$c" ] && echo "CMD $c" >> $out
    e=$(tr '\\0' ' ' < $p/environ 2>/dev/null) && [ -n "$e" ] && echo "ENV$(stat -c %u $p) $e" >> $out
  done
done
exit 0`;
const TRACE = '/run/secrets-audit.exec';

/** Every regular file under `dirs` in the VM (walked through its merged root), with mode and owner. */
function walk(vm: Vm, dirs: string[]): Map<string, { mode: number; uid: number }> {
  const out = new Map<string, { mode: number; uid: number }>();
  // The test bed's own folders bound into the VM (the project and the test's Node, when CI clones under /tmp) hold the
  // tests' sources and are not the machine's files.
  const bedBinds = hiddenHostPaths();
  const visit = (p: string, depth: number): void => {
    if (bedBinds.some((b) => p === b || p.startsWith(`${b}/`))) return;
    const st = vm.stat(p);
    if (!st || st.isSymlink || depth > 12) return;
    if (st.isFile) { out.set(p, { mode: st.mode, uid: st.uid }); return; }
    if (!st.isDir) return;
    let entries: string[] = [];
    try { entries = readdirSync(join(vm.rootPath, p)); } catch { return; }
    for (const e of entries) visit(posix.join(p, e), depth + 1);
  };
  for (const d of dirs) visit(d, 0);
  return out;
}

test('secrets audit of a first boot: no secret in logs, world-readable files, argv or environment; secret files 0600 root', { skip, timeout: 240_000 }, async () => {
  const scenario = defaultScenario();
  const protectedSecret = `protected-${randomBytes(12).toString('hex')}`;
  const customSecret = `customdata-${randomBytes(12).toString('hex')}`;
  scenario.customData = `#!/bin/sh\n# ${customSecret}\necho "custom data ran"\n`;
  scenario.extensions = [{
    name: 'Microsoft.Azure.Test.Audit', version: '1.0.0', state: 'enabled', seqNo: 0,
    publicSettings: { visible: 'public' }, protectedSettingsPlain: { secret: protectedSecret },
  }];
  const password = scenario.userPassword!;
  const vm = await createVm({
    scenario,
    waagentConf: defaultWaagentConf({ 'Provisioning.ExecuteCustomData': 'y', 'Logs.Console': 'y', 'Logs.Verbose': 'y', 'OS.EnableFirewall': 'y' }),
  });
  try {
    // A local user's view while the agent works: as nobody, read every process's cmdline and environ over and over
    // (environ of root's processes must be refused; what is readable is checked for secrets below).
    // Its detector is proven by a root process carrying the password in its argv (a canary), and by the sampler
    // reading its own environment.
    await vm.exec(['sh', '-c', 'sh -c "sleep 20" "$1" </dev/null >/dev/null 2>&1 &', 'sh', `cmdline-canary ${password}`]);
    const sampler = vm.exec(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', SAMPLER]);
    const r = await vm.run(['/usr/bin/strace', '-f', '-qq', '-s', '65535', '-v', '-e', 'trace=execve', '-o', TRACE, '/usr/sbin/waagent', '-daemon'],
      { timeoutMs: 120_000, until: 'ready', graceMs: 4000 });
    assert.equal(r.reason, 'ready', `no Ready: ${r.stderr.slice(-2000)}`);

    const shadowLine = (vm.readFile('/etc/shadow')?.toString() ?? '').split('\n').find((l) => l.startsWith(`${scenario.userName}:`)) ?? '';
    const hash = shadowLine.split(':')[1] ?? '';
    assert.match(hash, /^\$6\$/, 'the password was not set');
    const pemLines = (pem: string): string[] => pem.split('\n').filter((l) => l.length >= 60 && !l.startsWith('-----')).slice(1, 3);
    const hostKey = vm.readFile('/etc/ssh/ssh_host_rsa_key')?.toString() ?? '';
    assert.match(hostKey, /BEGIN OPENSSH PRIVATE KEY/);
    const secrets: Record<string, string> = {
      password, 'password (XML)': password.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'),
      'password (base64)': Buffer.from(password).toString('base64'), 'password hash': hash,
      'protected settings': protectedSecret, 'CustomData marker': customSecret,
    };
    pemLines(scenario.certificates[0].keyPem ?? '').forEach((l, i) => { secrets[`tenant private key line ${i}`] = l; });
    pemLines(hostKey).forEach((l, i) => { secrets[`host private key line ${i}`] = l; });
    const found = (text: string): string[] => Object.entries(secrets).filter(([, v]) => v && text.includes(v)).map(([k]) => k);
    const leaks: string[] = [];

    // The detector itself: a planted world-readable file holding the password must be reported (and only that).
    const CANARY = '/var/tmp/secrets-audit-canary';
    vm.writeFile(CANARY, `planted ${password}\n`, 0o644);

    // 1. Logs and console output.
    for (const [p] of walk(vm, ['/var/log'])) {
      const f = found(vm.readFile(p)?.toString('latin1') ?? '');
      if (f.length) leaks.push(`${p} (a log) holds: ${f.join(', ')}`);
    }
    const f1 = found(r.stdout + r.stderr);
    if (f1.length) leaks.push(`the agent's console output holds: ${f1.join(', ')}`);

    // 2. World-readable files: everything the VM changed, and the agent's directories and temp dirs in full.
    const files = walk(vm, ['/var/log', LIB, '/tmp', '/var/tmp']);
    const changed = new Set<string>();
    for (const c of vm.changedPaths()) if (c.type === 'file' && c.kind !== 'deleted') { const st = vm.stat(c.path); if (st) { files.set(c.path, { mode: st.mode, uid: st.uid }); changed.add(c.path); } }
    let worldReadable = 0;
    for (const [p, st] of files) {
      if (p === TRACE) continue;
      const text = vm.readFile(p)?.toString('latin1') ?? '';
      if (text.includes(protectedSecret)) leaks.push(`${p} holds the protected settings in clear (mode ${st.mode.toString(8)})`);
      if (!(st.mode & 0o004)) continue;
      worldReadable++;
      const f = found(text);
      if (changed.has(p) && /PRIVATE KEY-----/.test(text)) f.push('a PEM/OpenSSH private key'); // (host files: not ours)
      if (f.length) leaks.push(`${p} is world-readable (${st.mode.toString(8)}) and holds: ${f.join(', ')}`);
    }

    // 3. Every program the agent started: argv (readable by every user in /proc/<pid>/cmdline) and environment.
    const trace = vm.readFile(TRACE)?.toString() ?? '';
    const execs = trace.split('\n').filter((l) => /\bexecve\(/.test(l));
    assert.ok(execs.length >= 5, `only ${execs.length} execve traced`);
    for (const l of execs) {
      const f = found(l);
      if (f.length) leaks.push(`a command line or environment holds ${f.join(', ')}: ${l.slice(0, 200)}`);
    }

    // 3b. What the sampler (as nobody) could read.
    await vm.exec(['touch', '/dev/shm/sampler.stop']);
    await sampler;
    const all = vm.readFile('/dev/shm/sampler.out')?.toString('latin1') ?? '';
    assert.ok(all.split('\n').some((l) => l.startsWith('CMD ') && l.includes(`cmdline-canary ${password}`)), 'the sampler did not see the canary\'s argv');
    assert.ok(/^ENV65534 /m.test(all), 'the sampler could not read even its own environment');
    const seen = all.split('\n').filter((l) => !l.includes('cmdline-canary')).join('\n');
    const sweeps = count(seen, /^SWEEP$/);
    const rootEnv = seen.split('\n').filter((l) => l.startsWith('ENV0 ')).length;
    assert.ok(sweeps >= 10, `the sampler ran only ${sweeps} sweeps`);
    assert.ok(/waagent/.test(seen), 'the sampler never saw the agent');
    if (rootEnv) leaks.push(`nobody read the environment of ${rootEnv} root processes`);
    const f2 = found(seen);
    if (f2.length) leaks.push(`a local user (nobody) read ${f2.join(', ')} from /proc`);

    // 4. Modes and owners of what must stay private.
    const lib = vm.stat(LIB)!;
    if (lib.mode !== 0o700 || lib.uid !== 0) leaks.push(`${LIB} is ${lib.mode.toString(8)} uid ${lib.uid}, want 700 root`);
    const privateFiles = [...files.keys()].filter((p) => p.startsWith(`${LIB}/`) && /\/([0-9A-F]{40}\.(crt|prv|pub)|Certificates\.\w+|ovf-env\.xml|CustomData|ExtensionsConfig\.\d+\.xml|GoalState\.\d+\.xml|[^/]+\.settings)$/.test(p));
    for (const p of privateFiles) {
      const st = files.get(p)!;
      // CustomData is executed (0700 then); everything else is 0600. No group or other bits either way.
      const want = p === `${LIB}/CustomData` && st.mode === 0o700 ? 0o700 : 0o600;
      if (st.mode !== want || st.uid !== 0) leaks.push(`${p} is ${st.mode.toString(8)} uid ${st.uid}, want ${want.toString(8)} root`);
    }
    for (const want of [`${LIB}/ovf-env.xml`, `${LIB}/CustomData`, `${LIB}/${scenario.certificates[0].thumbprint}.prv`, `${LIB}/${scenario.certificates[0].thumbprint}.crt`, `${LIB}/ExtensionsConfig.1.xml`]) {
      assert.ok(privateFiles.includes(want), `${want} was not written: the audit would not see it`);
    }
    for (const k of ['/etc/ssh/ssh_host_rsa_key', `/home/${scenario.userName}/.ssh/authorized_keys`]) {
      const st = vm.stat(k)!;
      if (st.mode & 0o077) leaks.push(`${k} is ${st.mode.toString(8)}`);
    }

    const canary = leaks.filter((l) => l.startsWith(`${CANARY} `));
    assert.equal(canary.length, 1, `the audit did not see the planted leak in ${CANARY}`);
    leaks.splice(leaks.indexOf(canary[0]), 1);
    if (process.env.WAAGENT_AUDIT_LIST) console.log([...files].filter(([, st]) => st.mode & 0o004).map(([p, st]) => `# ${st.mode.toString(8)} ${p}`).join('\n'));
    const auditFigure = `${execs.length} programs started, ${sweeps} /proc sweeps as nobody, ${files.size} files read (${worldReadable} world-readable), ${privateFiles.length} private files checked`;
    console.log(`# secrets audit: ${auditFigure}`);
    assert.deepEqual(leaks, [], auditFigure);
  } finally {
    await vm.destroy({ removeFiles: !process.env.WAAGENT_KEEP_VM });
  }
});
