// The arm64 executable runs (TOOLCHAIN.md "More of the test bed"): under qemu-aarch64-static with the arm64 C/C++
// runtime of the host's multiarch (installed by .ci/setup): -version, -help, -show-configuration, and a one-shot
// -provision:<file> with the wire server simulated, in a throwaway VM (root only). Skips with the reason when qemu or
// the arm64 libraries are absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOP, createVm, defaultWaagentConf, vmUnavailableReason } from './vm';
import { buildOvfEnv, defaultScenario } from '../fabric/scenario';

const ARM64 = join(TOP, 'dist', 'waagent-linux-arm64');
const QEMU = '/usr/bin/qemu-aarch64-static';

function unavailable(): string | undefined {
  if (process.platform !== 'linux') return 'Linux only';
  if (process.arch === 'arm64') return undefined;
  if (!existsSync(QEMU)) return `${QEMU} is absent (apt-get install qemu-user-static; .ci/setup does it)`;
  if (!existsSync('/lib/ld-linux-aarch64.so.1') && !existsSync('/usr/lib/aarch64-linux-gnu/libstdc++.so.6')) {
    return 'the arm64 C/C++ runtime is absent (dpkg --add-architecture arm64; apt-get install libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64)';
  }
  if (!existsSync(ARM64)) return `${ARM64} not built (node build.mjs)`;
  return undefined;
}

const skip = unavailable();
if (skip) console.log(`# skipping arm64 tests: ${skip}`);

/** argv running the arm64 executable natively on arm64, under qemu elsewhere. */
const arm = (args: string[]): [string, string[]] => (process.arch === 'arm64' ? [ARM64, args] : [QEMU, ['-L', '/', ARM64, ...args]]);

test('arm64 executable: is an aarch64 ELF and prints -version', { skip }, () => {
  const magic = execFileSync('od', ['-An', '-tx1', '-j18', '-N2', ARM64]).toString().trim();
  assert.equal(magic, 'b7 00', 'e_machine is not EM_AARCH64 (0xb7)');
  const [cmd, args] = arm(['-version']);
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: {}, cwd: '/', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines[0], /^WALinuxAgent-\d+\.\d+\.\d+\.\d+ running on \S+/);
  assert.equal(lines[1], 'Node: 24.21.0');
  assert.equal(lines[3], 'waagent-ts');
  assert.equal(r.stderr, '');
});

test('arm64 executable: -help prints the usage', { skip }, () => {
  const [cmd, args] = arm(['-help']);
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: {}, cwd: '/', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /-deprovision/);
  assert.match(r.stdout, /-show-configuration/);
});

test('arm64 executable: -show-configuration reads a configuration file', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'waagent-arm64-'));
  try {
    const conf = join(dir, 'waagent.conf');
    writeFileSync(conf, 'Provisioning.Enabled=n\nOS.SshDir=/etc/ssh-arm\nExtensions.GoalStatePeriod=17\n');
    const [cmd, args] = arm([`-configuration-path:${conf}`, `--log-file=${join(dir, 'w.log')}`, '-show-configuration']);
    const r = spawnSync(cmd, args, { encoding: 'utf8', env: {}, cwd: '/', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Provisioning\.Enabled = False$/m);
    assert.match(r.stdout, /^OS\.SshDir = \/etc\/ssh-arm$/m);
    assert.match(r.stdout, /^Extensions\.GoalStatePeriod = 17$/m);
    assert.match(r.stdout, /^Lib\.Dir = \/var\/lib\/waagent$/m);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

const vmSkip = skip ?? vmUnavailableReason();
test('arm64 executable: one-shot -provision:<file> in a throwaway VM (commands it runs are native)', { skip: vmSkip, timeout: 300_000 }, async () => {
  const sc = defaultScenario();
  sc.certificates = [];
  sc.publicKeys = sc.publicKeys.filter((k) => k.value);
  const agentBin = process.arch === 'arm64' ? ARM64 : `${QEMU} -L / ${ARM64}`;
  const vm = await createVm({ scenario: sc, waagentConf: defaultWaagentConf(), withDvd: false, agentBin });
  try {
    vm.writeFile('/var/tmp/ovf-env.xml', buildOvfEnv(sc), 0o600);
    const r = await vm.run(['-provision:/var/tmp/ovf-env.xml'], { timeoutMs: 240_000 });
    const log = vm.readFile('/var/log/waagent.log')?.toString() ?? '';
    assert.equal(r.exitCode, 0, `exit ${r.exitCode}: ${r.stderr.slice(-1500)}\n${log.slice(-2000)}`);
    assert.ok(vm.readFile('/var/lib/waagent/provisioned'), 'not provisioned');
    assert.ok(vm.readFile('/etc/passwd')!.toString().split('\n').some((l) => l.startsWith(`${sc.userName}:`)), 'user missing');
    assert.equal(vm.readFile('/etc/hostname')?.toString().trim(), sc.hostName);
    assert.match(vm.readFile(`/home/${sc.userName}/.ssh/authorized_keys`)?.toString() ?? '', /^ssh-ed25519 /m);
  } finally {
    await vm.destroy({ removeFiles: true });
  }
});
