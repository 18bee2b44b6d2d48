// The distro packages (DECISIONS.md D31; packaging/package.mjs) on machines: under systemd as PID 1
// (test/vm/systemd-vm.ts), `dpkg -i` our .deb on a Debian image with Debian's waagent 2.7.3 installed by dpkg → ours
// runs as walinuxagent.service, theirs is gone, the operator's /etc/waagent.conf and /var/lib/waagent are kept; a newer
// build installed over it restarts the daemon on the new executable without provisioning again; `dpkg -r` stops and
// removes the service and keeps the state; `dpkg --purge` removes the configuration. In the plain VM bed (no init
// running, as in an image build) the maintainer scripts start nothing and fail nothing. The .rpm (no RPM distro here)
// and the .deb are checked for content, metadata and scripts, and the build for reproducibility.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSystemdVm, systemdVmUnavailableReason, type SystemdVm } from './systemd-vm';
import { TOP, agentCommand, createVm, defaultWaagentConf, vmUnavailableReason } from './vm';
import { PEER_DIR, peerDeb } from './peer';
import { defaultScenario } from '../fabric/scenario';

const NODE = process.execPath;
const PKG_DIR = join(TOP, 'dist', 'packages');
const VERSION = JSON.parse(readFileSync(join(TOP, 'package.json'), 'utf8')).agentVersion as string;
const DEB = join(PKG_DIR, `waagent-ts_${VERSION}_amd64.deb`);
const DEB_ARM = join(PKG_DIR, `waagent-ts_${VERSION}_arm64.deb`);
const RPM = join(PKG_DIR, `waagent-ts-${VERSION}-1.x86_64.rpm`);
const RPM_ARM = join(PKG_DIR, `waagent-ts-${VERSION}-1.aarch64.rpm`);
const UDEV_RULES = ['66-azure-storage.rules', '99-azure-product-uuid.rules'];
const NEWER = VERSION.replace(/\d+$/, (n) => String(Number(n) + 1));

const has = (tool: string): boolean => { try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }); return true; } catch { return false; } };
const built = existsSync(DEB) && existsSync(RPM) && existsSync(DEB_ARM) && existsSync(RPM_ARM)
  ? undefined : `packages not built in dist/packages (npm run package)`;
const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

// ---- content and metadata (no root needed) -------------------------------------------------------------------------

test('packages: .deb content, control fields and conffiles per architecture', { skip: built ?? (has('dpkg-deb') ? undefined : 'no dpkg-deb') }, () => {
  for (const [deb, arch, elf] of [[DEB, 'amd64', 'x86-64'], [DEB_ARM, 'arm64', 'aarch64']] as const) {
    const files = run('dpkg-deb', ['-c', deb]).split('\n').filter(Boolean).map((l) => l.split(/\s+/));
    const paths = files.map((f) => f[5]).filter((p) => !p.endsWith('/')).sort();
    assert.deepEqual(paths, ['./etc/logrotate.d/waagent.logrotate', './etc/waagent.conf', './lib/systemd/system/azure.slice',
      './lib/systemd/system/walinuxagent.service', './lib/udev/rules.d/66-azure-storage.rules', './lib/udev/rules.d/99-azure-product-uuid.rules',
      './usr/sbin/waagent']);
    for (const f of files) assert.equal(f[1], 'root/root', `owner of ${f[5]}`);
    assert.equal(files.find((f) => f[5] === './usr/sbin/waagent')![0], '-rwxr-xr-x');
    assert.equal(files.find((f) => f[5] === './etc/waagent.conf')![0], '-rw-r--r--');
    const field = (name: string): string => run('dpkg-deb', ['-f', deb, name]).trim();
    assert.equal(field('Package'), 'waagent-ts');
    assert.equal(field('Version'), VERSION);
    assert.equal(field('Architecture'), arch);
    for (const f of ['Conflicts', 'Replaces']) assert.equal(field(f), 'waagent, walinuxagent', f);
    assert.equal(field('Provides'), 'waagent');
    const ctl = mkdtempSync(join(tmpdir(), 'waagent-debctl-'));
    const root = mkdtempSync(join(tmpdir(), 'waagent-debroot-'));
    try {
      execFileSync('dpkg-deb', ['-e', deb, ctl]);
      assert.equal(readFileSync(join(ctl, 'conffiles'), 'utf8'), '/etc/waagent.conf\n/etc/logrotate.d/waagent.logrotate\n');
      for (const s of ['preinst', 'postinst', 'prerm', 'postrm']) {
        assert.equal(readFileSync(join(ctl, s), 'utf8'), readFileSync(join(TOP, 'packaging/deb', s), 'utf8'), s);
        execFileSync('sh', ['-n', join(ctl, s)]);
      }
      // Every service action is guarded by "systemd runs" (start/restart/stop/daemon-reload).
      for (const s of ['postinst', 'prerm', 'postrm']) {
        const text = readFileSync(join(ctl, s), 'utf8');
        for (const m of text.matchAll(/^(.*)\b(restart|stop|daemon-reload)\b/gm)) {
          const before = text.slice(0, m.index);
          assert.ok(before.lastIndexOf('[ -d /run/systemd/system ]') > before.lastIndexOf('\nfi'), `${s}: '${m[0].trim()}' is not guarded by /run/systemd/system`);
        }
      }
      execFileSync('dpkg-deb', ['-x', deb, root]);
      assert.equal(readFileSync(join(root, 'etc/waagent.conf'), 'utf8'), readFileSync(join(TOP, 'init/waagent.conf'), 'utf8'));
      assert.equal(readFileSync(join(root, 'lib/systemd/system/walinuxagent.service'), 'utf8'), readFileSync(join(TOP, 'init/waagent.service'), 'utf8'));
      for (const r of UDEV_RULES) {
        assert.equal(readFileSync(join(root, 'lib/udev/rules.d', r), 'utf8'), readFileSync(join(TOP, 'init/udev', r), 'utf8'), r);
        assert.equal(files.find((f) => f[5] === `./lib/udev/rules.d/${r}`)![0], '-rw-r--r--', r);
      }
      assert.equal(sha(join(root, 'usr/sbin/waagent')), sha(join(TOP, 'dist', `waagent-linux-${arch === 'amd64' ? 'x64' : 'arm64'}`)));
      if (has('file')) assert.match(run('file', ['-b', join(root, 'usr/sbin/waagent')]), new RegExp(`ELF 64-bit .*${elf}`));
    } finally { rmSync(ctl, { recursive: true, force: true }); rmSync(root, { recursive: true, force: true }); }
  }
});

test('packages: .rpm content, %config(noreplace), relations and scriptlets (rpm -qlp, rpm -qp --scripts)', { skip: built ?? (has('rpm') ? undefined : 'no rpm') }, () => {
  for (const [rpm, arch] of [[RPM, 'x86_64'], [RPM_ARM, 'aarch64']] as const) {
    assert.deepEqual(run('rpm', ['-qlp', rpm]).trim().split('\n').sort(), ['/etc/logrotate.d/waagent',
      '/etc/udev/rules.d/66-azure-storage.rules', '/etc/udev/rules.d/99-azure-product-uuid.rules', '/etc/waagent.conf',
      '/usr/lib/systemd/system/azure.slice', '/usr/lib/systemd/system/waagent.service', '/usr/sbin/waagent']);
    assert.equal(run('rpm', ['-qp', '--qf', '%{NAME} %{VERSION} %{ARCH}', rpm]), `waagent-ts ${VERSION} ${arch}`);
    const flags = run('rpm', ['-qp', '--qf', '[%{FILENAMES} %{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILEUSERNAME}\n]', rpm]);
    assert.match(flags, /^\/etc\/waagent\.conf cn -rw-r--r-- root$/m, 'waagent.conf must be %config(noreplace)');
    assert.match(flags, /^\/usr\/sbin\/waagent  -rwxr-xr-x root$/m);
    for (const r of UDEV_RULES) assert.match(flags, new RegExp(`^/etc/udev/rules\\.d/${r.replace('.', '\\.')} cn -rw-r--r-- root$`, 'm'), r);
    assert.match(run('rpm', ['-qp', '--provides', rpm]), /^WALinuxAgent = /m);
    assert.match(run('rpm', ['-qp', '--obsoletes', rpm]), /^WALinuxAgent < 3$/m);
    assert.doesNotMatch(run('rpm', ['-qp', '--requires', rpm]), /node|libnode|python/i, 'the executable needs no runtime package');
    const scripts = run('rpm', ['-qp', '--scripts', rpm]);
    assert.match(scripts, /postinstall scriptlet[\s\S]*systemctl enable waagent\.service[\s\S]*\[ -d \/run\/systemd\/system \][\s\S]*systemctl restart waagent\.service/);
    assert.match(scripts, /postinstall scriptlet[\s\S]*\[ -S \/run\/udev\/control \][\s\S]*udevadm control --reload-rules[\s\S]*udevadm trigger --subsystem-match=block --action=change/);
    assert.match(scripts, /preuninstall scriptlet[\s\S]*"\$1" -eq 0[\s\S]*\[ -d \/run\/systemd\/system \]; then systemctl stop waagent\.service/);
    for (const line of scripts.split('\n').filter((l) => /systemctl (restart|stop|daemon-reload)/.test(l))) {
      assert.match(line, /\[ -d \/run\/systemd\/system \]|^\s+systemctl/, `unguarded: ${line}`);
    }
    const tmp = mkdtempSync(join(tmpdir(), 'waagent-rpmx-'));
    try {
      execFileSync('sh', ['-c', 'rpm2archive - < "$1" | tar -xz -C "$2"', 'sh', rpm, tmp]);
      assert.equal(sha(join(tmp, 'usr/sbin/waagent')), sha(join(TOP, 'dist', `waagent-linux-${arch === 'x86_64' ? 'x64' : 'arm64'}`)));
      assert.equal(readFileSync(join(tmp, 'usr/lib/systemd/system/waagent.service'), 'utf8'), readFileSync(join(TOP, 'init/waagent.service'), 'utf8'));
      for (const r of UDEV_RULES) assert.equal(readFileSync(join(tmp, 'etc/udev/rules.d', r), 'utf8'), readFileSync(join(TOP, 'init/udev', r), 'utf8'), r);
    } finally { rmSync(tmp, { recursive: true, force: true }); }
  }
});

test('packages: two builds from the same input are byte-identical (SOURCE_DATE_EPOCH); a malformed version is refused',
  { skip: has('dpkg-deb') && has('rpmbuild') ? undefined : 'no dpkg-deb/rpmbuild' }, () => {
    const tmp = mkdtempSync(join(tmpdir(), 'waagent-repro-'));
    try {
      // A small stand-in executable keeps this fast; the packaging steps are the same.
      const bin = join(tmp, 'waagent');
      writeFileSync(bin, '#!/bin/sh\necho stand-in\n');
      chmodSync(bin, 0o755);
      const outs = [join(tmp, 'a'), join(tmp, 'b')];
      for (const out of outs) {
        execFileSync(NODE, [join(TOP, 'packaging/package.mjs'), '--arch', 'x64', '--bin-x64', bin, '--out', out],
          { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' }, stdio: 'pipe' });
      }
      const names = readdirSync(outs[0]).filter((f) => /\.(deb|rpm)$/.test(f)).sort();
      assert.deepEqual(names, [`waagent-ts-${VERSION}-1.x86_64.rpm`, `waagent-ts_${VERSION}_amd64.deb`]);
      for (const n of names) assert.equal(sha(join(outs[0], n)), sha(join(outs[1], n)), `${n} differs between two builds`);
      // Every member carries the epoch as its mtime.
      for (const l of run('dpkg-deb', ['-c', join(outs[0], names[1])]).trim().split('\n')) assert.match(l, / 2023-11-14 22:13 /, l);
      assert.match(run('rpm', ['-qp', '--qf', '%{BUILDTIME} %{BUILDHOST}', join(outs[0], names[0])]), /^1700000000 reproducible$/);
      // A malformed --version is refused with a message and exit 1, and nothing is written.
      const bad = spawnSync(NODE, [join(TOP, 'packaging/package.mjs'), '--arch', 'x64', '--bin-x64', bin, '--out', join(tmp, 'c'), '--version', '1.0; rm -rf /'], { encoding: 'utf8' });
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /bad version/);
      assert.equal(existsSync(join(tmp, 'c')), false);
    } finally { rmSync(tmp, { recursive: true, force: true }); }
  });

// ---- no init running: an image build --------------------------------------------------------------------------------

const vmSkip = vmUnavailableReason() ?? built;
test('packages: dpkg -i / -r / --purge with no init running (image build): nothing started, nothing fails, unit enabled for the next boot',
  { skip: vmSkip, timeout: 300_000 }, async () => {
    const vm = await createVm({ scenario: defaultScenario(), waagentConf: defaultWaagentConf(), withSimulator: false, withDvd: false });
    try {
      assert.equal((await vm.exec(['test', '-d', '/run/systemd/system'])).code, 1, 'this bed must have no systemd running');
      await vm.exec(['rm', '-f', '/etc/waagent.conf']); // a fresh image has none
      // A udevadm stand-in that records its calls: with no udevd (no /run/udev/control) the scripts must not call it.
      vm.writeFile('/usr/local/sbin/udevadm', '#!/bin/sh\necho "$*" >> /run/udevadm.calls\n', 0o755);
      const inst = await vm.exec(['dpkg', '-i', DEB]);
      assert.equal(inst.code, 0, `dpkg -i: ${inst.stdout}${inst.stderr}`);
      assert.doesNotMatch(inst.stderr, /error|warning/i);
      assert.equal(vm.readFile('/run/udevadm.calls'), undefined, 'udevadm called with no udevd running');
      for (const r of UDEV_RULES) {
        assert.equal(vm.readFile(`/lib/udev/rules.d/${r}`)?.toString(), readFileSync(join(TOP, 'init/udev', r), 'utf8'), r);
        assert.equal(vm.stat(`/lib/udev/rules.d/${r}`)!.mode & 0o7777, 0o644, r);
      }
      // udevd running (its control socket exists): a reinstall reloads the rules and re-triggers block and dmi devices.
      await vm.exec(['mkdir', '-p', '/run/udev']);
      const sock = await vm.exec([NODE, '-e', "require('net').createServer().listen('/run/udev/control', () => process.exit(0))"]);
      assert.equal((await vm.exec(['test', '-S', '/run/udev/control'])).code, 0, `no socket: ${sock.stderr}`);
      assert.equal(sock.code, 0, sock.stderr);
      const again = await vm.exec(['dpkg', '-i', DEB]);
      assert.equal(again.code, 0, `dpkg -i again: ${again.stdout}${again.stderr}`);
      assert.equal(vm.readFile('/run/udevadm.calls')?.toString(),
        'control --reload-rules\ntrigger --subsystem-match=block --action=change\ntrigger --subsystem-match=dmi --action=change\n');
      assert.match((await vm.exec(['dpkg-query', '-W', '-f', '${Status} ${Version}', 'waagent-ts'])).stdout, new RegExp(`^install ok installed ${VERSION.replace(/\./g, '\\.')}$`));
      assert.equal(vm.agentPids().length, 0, 'the package started the agent with no init running');
      assert.match((await vm.exec(['/usr/sbin/waagent', '-version'])).stdout, new RegExp(`^WALinuxAgent-${VERSION.replace(/\./g, '\\.')} `));
      // Enabled for the image's next boot: the wants link exists.
      assert.equal((await vm.exec(['readlink', '/etc/systemd/system/multi-user.target.wants/walinuxagent.service'])).stdout.trim(),
        '/lib/systemd/system/walinuxagent.service');
      const rm = await vm.exec(['dpkg', '-r', 'waagent-ts']);
      assert.equal(rm.code, 0, `dpkg -r: ${rm.stdout}${rm.stderr}`);
      assert.equal(vm.readFile('/usr/sbin/waagent'), undefined);
      for (const r of UDEV_RULES) assert.equal(vm.readFile(`/lib/udev/rules.d/${r}`), undefined, `dpkg -r left ${r}`);
      assert.match(vm.readFile('/run/udevadm.calls')?.toString() ?? '', /dmi --action=change\ncontrol --reload-rules\n$/, 'dpkg -r did not reload the rules');
      assert.ok(vm.readFile('/etc/waagent.conf'), 'dpkg -r removed the configuration');
      const purge = await vm.exec(['dpkg', '--purge', 'waagent-ts']);
      assert.equal(purge.code, 0, `dpkg --purge: ${purge.stdout}${purge.stderr}`);
      assert.equal(vm.readFile('/etc/waagent.conf'), undefined, 'dpkg --purge left /etc/waagent.conf');
      assert.equal((await vm.exec(['test', '-e', '/etc/systemd/system/multi-user.target.wants/walinuxagent.service'])).code, 1, 'purge left the wants link');
    } finally { await vm.destroy({ removeFiles: true }); }
  });

// ---- under systemd: swap, upgrade, remove, purge -------------------------------------------------------------------

let sdSkip = systemdVmUnavailableReason() ?? built;
if (!sdSkip && !existsSync(agentCommand())) sdSkip = 'dist/waagent-linux-x64 not built';
if (!sdSkip && !peerDeb()) sdSkip = "Debian's waagent 2.7.3 .deb is not in .cache/peer and 'apt-get download waagent' failed";

async function pkgStatus(vm: SystemdVm, name: string): Promise<string> {
  return (await vm.exec(['dpkg-query', '-W', '-f', '${Status}', name])).stdout.trim();
}

async function diag(vm: SystemdVm): Promise<string> {
  const j = await vm.exec(['journalctl', '--no-pager', '-n', '60', '-u', 'walinuxagent']).catch((e: Error) => ({ stdout: e.message }));
  return `\n--- journal ---\n${j.stdout}\n--- waagent.log ---\n${vm.readFile('/var/log/waagent.log')?.toString().slice(-2500) ?? '(none)'}`;
}

async function mainPid(vm: SystemdVm): Promise<number> { return Number(await vm.unitProperty('walinuxagent', 'MainPID')); }

test('packages under systemd: dpkg -i over Debian\'s waagent 2.7.3 swaps them; upgrade restarts without provisioning; -r keeps state; --purge removes config',
  { skip: sdSkip, timeout: 900_000 }, async () => {
    const scenario = defaultScenario();
    const vm = await createSystemdVm({ scenario });
    const upgrade = mkdtempSync(join(tmpdir(), 'waagent-upgrade-'));
    try {
      // A VM, not a container build: the host's policy-rc.d (Docker's "exit 101", seen through the overlay) would make
      // deb-systemd-invoke refuse every start, as Debian policy wants in an image build.
      await vm.sh(['rm', '-f', '/usr/sbin/policy-rc.d']);
      // The image: Debian's waagent installed with dpkg (its Python dependencies from the cache when the host lacks them).
      const deps = ['python3-distro', 'python3-pkg-resources', 'lsb-release'];
      for (const d of deps) {
        if ((await pkgStatus(vm, d)) === 'install ok installed') continue;
        const f = readdirSync(PEER_DIR).find((n) => n.startsWith(`${d}_`));
        assert.ok(f, `${d} is neither installed nor in ${PEER_DIR} (apt-get download ${d})`);
        await vm.sh(['dpkg', '-i', join(PEER_DIR, f)]);
      }
      await vm.sh(['dpkg', '-i', peerDeb()!]);
      assert.equal(await pkgStatus(vm, 'waagent'), 'install ok installed');
      assert.match(await vm.sh(['head', '-c', '32', '/usr/sbin/waagent']), /^#!\/usr\/bin\/python3/);
      // The operator's edits: built-in provisioning for this bed, and a line of their own.
      const conf = `${defaultWaagentConf()}# operator: keep me across package changes\n`;
      await vm.sh(['tee', '/etc/waagent.conf'], conf);
      await vm.sh(['sh', '-c', 'echo kept > /var/lib/waagent/operator-note']);

      // Swap: ours replaces theirs in one dpkg -i (conffile kept with --force-confold: the operator edited it).
      const swap = await vm.exec(['dpkg', '-i', '--force-confold', DEB]);
      assert.equal(swap.code, 0, `dpkg -i: ${swap.stdout}${swap.stderr}`);
      assert.match(swap.stdout, /Removing waagent|remov/i);
      assert.equal(await pkgStatus(vm, 'waagent-ts'), 'install ok installed');
      assert.match(await pkgStatus(vm, 'waagent'), /^(install|deinstall|purge) ok (config-files|not-installed)$/, 'theirs is not gone');
      assert.equal((await vm.exec(['test', '-e', '/usr/lib/python3/dist-packages/azurelinuxagent'])).code, 1, 'the Python agent\'s modules are left');
      assert.equal(vm.readFile('/etc/waagent.conf')?.toString(), conf, '/etc/waagent.conf was not kept');
      assert.equal(vm.readFile('/var/lib/waagent/operator-note')?.toString(), 'kept\n', '/var/lib/waagent was lost with the replaced package');
      assert.equal((await vm.exec(['test', '-e', '/var/lib/waagent-ts.dpkg-keep'])).code, 1, 'the preinst copy was left behind');
      // Debian's package shipped the same two udev rules: they are ours now (dpkg took them over), with our text.
      for (const r of UDEV_RULES) {
        assert.match(await vm.sh(['dpkg', '-S', `/lib/udev/rules.d/${r}`]), /^waagent-ts: /, r);
        assert.equal(vm.readFile(`/lib/udev/rules.d/${r}`)?.toString(), readFileSync(join(TOP, 'init/udev', r), 'utf8'), r);
      }
      await vm.waitFor('Ready', () => (vm.simulator.summary()?.readyCount ?? 0) > 0, 120_000).catch(async (e: Error) => { throw new Error(e.message + await diag(vm)); });
      await vm.waitFor('the provisioned marker', () => vm.readFile('/var/lib/waagent/provisioned') !== undefined);
      assert.equal(await vm.unitProperty('walinuxagent', 'UnitFileState'), 'enabled');
      assert.equal(await vm.unitProperty('walinuxagent', 'ActiveState'), 'active');
      assert.match(await vm.unitProperty('walinuxagent', 'FragmentPath'), /^\/(usr\/)?lib\/systemd\/system\/walinuxagent\.service$/);
      const pid1 = await mainPid(vm);
      assert.equal((await vm.sh(['readlink', `/proc/${pid1}/exe`])).trim(), '/usr/sbin/waagent');
      assert.equal(await vm.unitProperty('walinuxagent', 'Slice'), 'azure.slice');

      // Upgrade: a newer build (its own version) over it.
      const shadow = vm.readFile('/etc/shadow')!.toString();
      const marker = vm.readFile('/var/lib/waagent/provisioned')!.toString();
      const hostKey = vm.readFile('/etc/ssh/ssh_host_rsa_key.pub')?.toString();
      const readyBefore = vm.simulator.summary()!.readyCount;
      execFileSync(NODE, [join(TOP, 'build.mjs'), '--agent-version', NEWER, '--out', upgrade], { stdio: 'pipe' });
      execFileSync(NODE, [join(TOP, 'packaging/package.mjs'), '--version', NEWER, '--arch', 'x64', '--no-rpm', '--bin-x64', join(upgrade, 'waagent-linux-x64'), '--out', upgrade], { stdio: 'pipe' });
      // No --force-conf* here: an unchanged conffile must not prompt (dpkg would fail on the closed stdin).
      const up = await vm.exec(['dpkg', '-i', join(upgrade, `waagent-ts_${NEWER}_amd64.deb`)]);
      assert.equal(up.code, 0, `upgrade: ${up.stdout}${up.stderr}`);
      assert.match(up.stdout, new RegExp(`Unpacking waagent-ts \\(${NEWER.replace(/\./g, '\\.')}\\) over \\(${VERSION.replace(/\./g, '\\.')}\\)`));
      const pid2 = await vm.waitFor('the restarted daemon', async () => { const p = await mainPid(vm); return p && p !== pid1 ? p : undefined; }, 30_000);
      assert.doesNotMatch((await vm.sh(['readlink', `/proc/${pid2}/exe`])).trim(), /deleted/, 'the daemon runs the old, deleted executable');
      await vm.waitFor('the new version in the log', () => (vm.readFile('/var/log/waagent.log')?.toString() ?? '').includes(`version ${NEWER} starting`), 30_000)
        .catch(async (e: Error) => { throw new Error(e.message + await diag(vm)); });
      assert.match((await vm.sh(['/usr/sbin/waagent', '-version'])), new RegExp(`^WALinuxAgent-${NEWER.replace(/\./g, '\\.')} `));
      await vm.waitFor('Ready from the new daemon', () => (vm.simulator.summary()?.readyCount ?? 0) > readyBefore, 120_000);
      assert.equal(vm.readFile('/etc/shadow')!.toString(), shadow, 'provisioned again after the upgrade (shadow changed)');
      assert.equal(vm.readFile('/var/lib/waagent/provisioned')!.toString(), marker);
      assert.equal(vm.readFile('/etc/ssh/ssh_host_rsa_key.pub')?.toString(), hostKey, 'host keys regenerated by the upgrade');
      assert.equal(vm.readFile('/etc/waagent.conf')?.toString(), conf);
      assert.equal(vm.readFile('/var/lib/waagent/operator-note')?.toString(), 'kept\n');
      assert.equal(await vm.unitProperty('walinuxagent', 'NRestarts'), '0', 'the unit crash-looped');

      // Remove: the service stopped and gone, state and configuration kept.
      const rm = await vm.exec(['dpkg', '-r', 'waagent-ts']);
      assert.equal(rm.code, 0, `dpkg -r: ${rm.stdout}${rm.stderr}`);
      assert.equal(vm.pidsMatching('waagent -daemon').length, 0, 'a daemon survived dpkg -r');
      assert.equal(await vm.unitProperty('walinuxagent', 'LoadState'), 'not-found');
      assert.equal(vm.readFile('/usr/sbin/waagent'), undefined);
      assert.equal(vm.readFile('/var/lib/waagent/provisioned')!.toString(), marker, 'state lost on dpkg -r');
      assert.equal(vm.readFile('/etc/waagent.conf')?.toString(), conf);

      // Purge: configuration (and state, log) gone.
      const purge = await vm.exec(['dpkg', '--purge', 'waagent-ts']);
      assert.equal(purge.code, 0, `dpkg --purge: ${purge.stdout}${purge.stderr}`);
      assert.equal(vm.readFile('/etc/waagent.conf'), undefined, '/etc/waagent.conf left after purge');
      assert.equal((await vm.exec(['test', '-e', '/var/lib/waagent'])).code, 1, '/var/lib/waagent left after purge');
      assert.match(await pkgStatus(vm, 'waagent-ts'), /^(|\w+ ok not-installed)$/, 'dpkg still knows waagent-ts after purge');
    } finally {
      await vm.destroy();
      rmSync(upgrade, { recursive: true, force: true });
    }
  });
