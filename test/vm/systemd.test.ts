// The agent under a real systemd as PID 1 (test/vm/systemd-vm.ts; provisioning-and-os.md §10.2, §10.8, §10.10, §10.11;
// README "Install on an image"): installed the way README says, `systemctl enable --now`; first boot provisions under
// systemd; sshd reloaded through systemctl; `systemctl stop` ends the daemon cleanly; Restart= brings it back after
// kill -9; `-register-service`; journal priorities; `-deprovision` stops the right unit and the next boot of the
// captured image starts it again. Then the same on a Debian image that already carries the Python agent's package
// (walinuxagent.service), installed the way README says for that case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createSystemdVm, readmeInstall, systemdVmUnavailableReason, type SystemdVm } from './systemd-vm';
import { agentCommand, defaultWaagentConf, imageWrite, resolveHostParent } from './vm';
import { peerUnavailable, unpackPeer } from './peer';
import { mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { defaultScenario } from '../fabric/scenario';

let skip = systemdVmUnavailableReason();
if (!skip && !existsSync(agentCommand())) skip = `agent executable ${agentCommand()} not built (node build.mjs)`;
if (skip) console.log(`# skipping systemd VM tests: ${skip}`);

const diag = async (vm: SystemdVm, unit: string): Promise<string> => {
  const j = await vm.exec(['journalctl', '--no-pager', '-n', '60', '-u', unit]).catch((e: Error) => ({ stdout: e.message }));
  return `\n--- journal of ${unit} ---\n${j.stdout}\n--- waagent.log ---\n${vm.readFile('/var/log/waagent.log')?.toString().slice(-2500) ?? '(none)'}`;
};

async function install(vm: SystemdVm, unit: 'waagent' | 'walinuxagent'): Promise<void> {
  for (const argv of readmeInstall(vm.ctl, unit)) await vm.sh(argv);
}

async function readyCount(vm: SystemdVm): Promise<number> { return vm.simulator.summary()?.readyCount ?? 0; }

async function waitReady(vm: SystemdVm, before: number, unit: string, timeoutMs = 120_000): Promise<void> {
  try {
    await vm.waitFor('a new Ready report', async () => (await readyCount(vm)) > before, timeoutMs);
  } catch (e) {
    throw new Error(`${(e as Error).message}${await diag(vm, unit)}`);
  }
}

async function mainPid(vm: SystemdVm, unit: string): Promise<number> { return Number(await vm.unitProperty(unit, 'MainPID')); }

test('systemd: README install, enable --now, first boot, stop, Restart=, register-service, journal, deprovision, next boot',
  { skip, timeout: 600_000 }, async () => {
    const scenario = defaultScenario();
    const vm = await createSystemdVm({ scenario, waagentConf: defaultWaagentConf() });
    try {
      await install(vm, 'waagent');
      const sshBefore = Number(await vm.unitProperty('ssh.service', 'ExecMainPID'));
      await vm.sh(['systemctl', 'enable', '--now', 'waagent']);
      assert.equal((await vm.exec(['systemctl', 'is-enabled', 'waagent'])).stdout.trim(), 'enabled');

      // First boot: provisioned under systemd, Ready reported.
      await waitReady(vm, 0, 'waagent');
      await vm.waitFor('the provisioned marker', () => vm.readFile('/var/lib/waagent/provisioned') !== undefined);
      assert.ok(vm.readFile('/etc/shadow')!.toString().includes(`${scenario.userName}:$6$`), 'user not provisioned');
      assert.equal((await vm.sh(['hostname'])).trim(), scenario.hostName);
      // The unit: its own slice, accounting on, the daemon is the main process.
      assert.equal(await vm.unitProperty('waagent', 'Slice'), 'azure.slice');
      assert.equal(await vm.unitProperty('waagent', 'MemoryAccounting'), 'yes');
      const pid = await mainPid(vm, 'waagent');
      assert.ok(pid > 0);
      assert.match((await vm.sh(['cat', `/proc/${pid}/cmdline`])).replace(/\0/g, ' '), /^\/usr\/sbin\/waagent -daemon/);
      // sshd reloaded or restarted through systemctl (Debian: ssh.service) after provisioning changed its files.
      const sshJournal = (await vm.journal('ssh.service')).map((e) => e.message).join('\n');
      const sshAfter = Number(await vm.unitProperty('ssh.service', 'ExecMainPID'));
      assert.ok(/Reload|Reloading|Stopping|Started/.test(sshJournal) && (sshAfter !== sshBefore || /Reload/.test(sshJournal)),
        `ssh.service was not reloaded/restarted through systemd:\n${sshJournal}`);

      // Journal: INFO lines at priority 6, VERBOSE at 7 (Logs.Verbose on the file only; stdout is INFO), and the
      // messages are the agent's own lines.
      const j = await vm.journal('waagent.service');
      const agentLines = j.filter((e) => / (INFO|WARNING|ERROR|VERBOSE) Daemon /.test(e.message));
      assert.ok(agentLines.length > 5, `few agent lines in the journal:\n${j.map((e) => e.message).join('\n')}`);
      for (const e of agentLines) {
        const level = / (INFO|WARNING|ERROR|VERBOSE) /.exec(e.message)![1];
        assert.equal(e.priority, { VERBOSE: 7, INFO: 6, WARNING: 4, ERROR: 3 }[level], `priority of ${e.message}`);
        assert.ok(!e.message.startsWith('<'), `priority prefix left in the message: ${e.message}`);
      }

      // systemctl stop: SIGTERM ends the daemon cleanly (exit 0, no SIGKILL needed), the PID file goes away or is stale.
      await vm.sh(['systemctl', 'stop', 'waagent']);
      assert.equal(await vm.unitProperty('waagent', 'ActiveState'), 'inactive');
      assert.equal(await vm.unitProperty('waagent', 'Result'), 'success');
      assert.equal(await vm.unitProperty('waagent', 'ExecMainStatus'), '0');
      assert.equal(vm.pidsMatching('waagent -daemon').length, 0, 'a daemon process survived systemctl stop');

      // Restart=always: kill -9 brings it back (after RestartSec=5), and it reports Ready again without provisioning.
      const shadow = vm.readFile('/etc/shadow')!.toString();
      await vm.sh(['systemctl', 'start', 'waagent']);
      const first = await vm.waitFor('the daemon', async () => (await mainPid(vm, 'waagent')) || undefined);
      const rcBefore = await readyCount(vm);
      await vm.sh(['kill', '-9', String(first)]);
      const second = await vm.waitFor('a restarted daemon', async () => { const p = await mainPid(vm, 'waagent'); return p && p !== first ? p : undefined; }, 20_000);
      assert.ok(second !== first);
      assert.equal(await vm.unitProperty('waagent', 'NRestarts'), '1');
      await waitReady(vm, rcBefore, 'waagent');
      assert.equal(vm.readFile('/etc/shadow')!.toString(), shadow, 'provisioning ran again after the restart');

      // -register-service: enable, stop, start through systemctl; a new daemon afterwards.
      const reg = await vm.exec(['/usr/sbin/waagent', '-register-service']);
      assert.equal(reg.code, 0, `-register-service: ${reg.stdout}${reg.stderr}${await diag(vm, 'waagent')}`);
      const third = await vm.waitFor('the daemon after -register-service', async () => { const p = await mainPid(vm, 'waagent'); return p && p !== second ? p : undefined; }, 20_000);
      assert.ok(third > 0);
      assert.equal(await vm.unitProperty('waagent', 'ActiveState'), 'active');

      // -deprovision stops the unit it runs as (waagent here: Debian's name walinuxagent is not installed).
      const dep = await vm.exec(['/usr/sbin/waagent', '-deprovision', '-force']);
      assert.equal(dep.code, 0, `-deprovision: ${dep.stdout}${dep.stderr}`);
      assert.equal(await vm.unitProperty('waagent', 'ActiveState'), 'inactive');
      assert.equal(vm.pidsMatching('waagent -daemon').length, 0, 'the daemon still runs after -deprovision');
      assert.equal(vm.readFile('/var/lib/waagent/provisioned'), undefined);

      // The next boot of the captured image: the unit is still enabled, starts on its own and provisions again.
      await vm.reboot();
      await waitReady(vm, 0, 'waagent');
      assert.equal(await vm.unitProperty('waagent', 'ActiveState'), 'active');
      assert.ok(vm.readFile('/var/lib/waagent/provisioned'), 'not provisioned on the next boot');
    } finally {
      await vm.destroy();
    }
  });

const peerSkip = skip ?? peerUnavailable();
if (!skip && peerSkip) console.log(`# skipping the distro-package install test: ${peerSkip}`);

test('systemd: on a Debian image that carries the Python agent (walinuxagent.service), README\'s distro path replaces it',
  { skip: peerSkip, timeout: 600_000 }, async () => {
    const scenario = defaultScenario();
    const vm = await createSystemdVm({
      scenario,
      extraSetup(image) {
        // The image as `apt-get install waagent` leaves it: the package's files, its unit enabled (deb-systemd-helper).
        unpackPeer(image);
        const wants = join(image, resolveHostParent('/etc/systemd/system/multi-user.target.wants/walinuxagent.service'));
        mkdirSync(dirname(wants), { recursive: true });
        symlinkSync('/lib/systemd/system/walinuxagent.service', wants);
        // The image builder chose built-in provisioning (the package's sample says cloud-init).
        imageWrite(image, '/etc/waagent.conf', defaultWaagentConf(), 0o644);
      },
    });
    try {
      // Before: the Python agent is what /usr/sbin/waagent is, and its unit is the one systemd knows.
      assert.match((await vm.sh(['head', '-c', '64', '/usr/sbin/waagent'])), /^#!\/usr\/bin\/python3/);
      assert.match(await vm.unitProperty('walinuxagent', 'FragmentPath'), /^\/(usr\/)?lib\/systemd\/system\/walinuxagent\.service$/);

      // README, "On Debian and Ubuntu images that carry the distro's agent": divert the package's executable, install
      // ours and our unit under the distro's name in /etc (it overrides the package's), enable --now.
      await vm.sh(['dpkg-divert', '--local', '--rename', '--divert', '/usr/sbin/waagent.distrib', '--add', '/usr/sbin/waagent']);
      for (const argv of readmeInstall(vm.ctl, 'walinuxagent')) await vm.sh(argv);
      await vm.sh(['systemctl', 'enable', '--now', 'walinuxagent']);
      assert.equal(await vm.unitProperty('walinuxagent', 'FragmentPath'), '/etc/systemd/system/walinuxagent.service');
      assert.match(await vm.sh(['head', '-c', '64', '/usr/sbin/waagent.distrib']), /^#!\/usr\/bin\/python3/, 'the Python agent was not kept aside');
      assert.match(await vm.sh(['dpkg-divert', '--list', '/usr/sbin/waagent']), /local diversion of \/usr\/sbin\/waagent to \/usr\/sbin\/waagent\.distrib/);

      await waitReady(vm, 0, 'walinuxagent');
      const pid = await mainPid(vm, 'walinuxagent');
      assert.ok(pid > 0);
      // The main process is our executable (not python3 running a script).
      assert.equal((await vm.sh(['readlink', `/proc/${pid}/exe`])).trim(), '/usr/sbin/waagent');
      assert.equal(await vm.unitProperty('waagent', 'LoadState'), 'not-found', 'no second unit may exist beside walinuxagent');

      // -register-service and -deprovision act on walinuxagent (the name the daemon runs as).
      const reg = await vm.exec(['/usr/sbin/waagent', '-register-service']);
      assert.equal(reg.code, 0, `-register-service: ${reg.stdout}${reg.stderr}${await diag(vm, 'walinuxagent')}`);
      await vm.waitFor('walinuxagent restarted', async () => { const p = await mainPid(vm, 'walinuxagent'); return p && p !== pid ? p : undefined; }, 20_000);
      const dep = await vm.exec(['/usr/sbin/waagent', '-deprovision', '-force']);
      assert.equal(dep.code, 0, `-deprovision: ${dep.stdout}${dep.stderr}`);
      assert.equal(await vm.unitProperty('walinuxagent', 'ActiveState'), 'inactive');
      assert.equal(vm.pidsMatching('waagent -daemon').length, 0, 'the daemon still runs after -deprovision');
      assert.equal(await vm.unitProperty('walinuxagent', 'NRestarts'), '0', 'the unit crash-looped');
    } finally {
      await vm.destroy();
    }
  });
