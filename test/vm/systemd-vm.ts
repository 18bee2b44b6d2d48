/**
 * Throwaway machines booted with systemd as PID 1 (TOOLCHAIN.md "More of the test bed"; provisioning-and-os.md §10.2):
 * the same overlay of the host's `/` as vm.ts (host root lowest, an image layer, a tmpfs upper layer), held by a
 * private mount namespace, booted with `systemd-nspawn --boot --private-network`. The fabric simulator runs inside the
 * container as a unit (`fabric-sim.service`, so in the container's network namespace, on 127.0.0.1:80 and :32526,
 * found through a dhclient lease with option 245 as in vm.ts); its log directory and a control directory are bound
 * from the host. The provisioning DVD is an ISO on a read-only loop device bound as /dev/sr0. Units the host enables
 * (databases, timers) are masked in the image layer so the boot stays small. Nothing reaches the host: the container
 * has only `lo`, its own PID, mount, UTS and IPC namespaces, and destroy() (or the exit handler) kills its PID 1 and
 * the namespace holder by id and detaches the loop device it attached.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import {
  copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { buildOvfEnv, type Scenario } from '../fabric/scenario';
import type { Recorded, Summary } from '../fabric/simulator';
import { AGENT_ENV, DROP_CAPS, SIM_JS, TOP, agentCommand, detachLoopsAfter, hiddenHostPaths, imageWrite, leaseFile, trackVm, untrackVm, type SimHandle } from './vm';

const NODE = process.execPath;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface SystemdVmOptions {
  scenario: Scenario;
  /** Contents of /etc/waagent.conf in the image layer (none when undefined: the test installs one). */
  waagentConf?: string;
  /** Attach the provisioning DVD as /dev/sr0 (default true). */
  withDvd?: boolean;
  /** Host path of the agent executable copied to `<ctl>/waagent` for the test to install (default dist/waagent-linux-x64). */
  agentBin?: string;
  /** Files for the image layer (they appear in the VM and are not "changes"). */
  extraSetup?(imageDir: string): void | Promise<void>;
  /** How long to wait for the boot to finish (ms, default 60000). */
  bootTimeoutMs?: number;
}

/** One journal entry of the container (from `journalctl -o json`). */
export interface JournalEntry { priority: number; message: string; unit?: string; identifier?: string }

/** Why systemd VM tests cannot run here, or undefined when they can. */
export function systemdVmUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'systemd VM tests need Linux';
  if (process.getuid?.() !== 0) return 'systemd VM tests need root (namespaces, overlay, loop devices)';
  for (const tool of ['systemd-nspawn', 'unshare', 'nsenter', 'losetup', 'xorriso']) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }); } catch { return `systemd VM tests need '${tool}' (apt-get install systemd-container; see .ci/apt-packages.txt)`; }
  }
  if (!existsSync('/lib/systemd/systemd') && !existsSync('/usr/lib/systemd/systemd')) return 'systemd VM tests need systemd on the host image';
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return 'systemd VM tests need overlayfs in the kernel';
  return undefined;
}

const HOLDER_SH = `set -eu
W="$VM_DIR"; F="$W/fs"; M="$W/merged"
mount -t tmpfs -o mode=0755,size=4g vmfs "$F"
mkdir -p "$F/upper" "$F/work" "$F/image"
cp -a "$W/image/." "$F/image/"
mount -t overlay overlay -o "lowerdir=$F/image:/,upperdir=$F/upper,workdir=$F/work" "$M"
touch "$W/setup-done"
exec sleep 2147483647
`;

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch { return []; }
}

function cmdline(pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '); } catch { return ''; }
}

/** Every descendant of `root` (host pids). */
function descendants(root: number): number[] {
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    for (const k of childrenOf(stack.pop()!)) { out.push(k); stack.push(k); }
  }
  return out;
}

/** Units the host enables that a test VM does not need (all of them but ssh, the journal and the basics). */
function unitsToMask(): string[] {
  const keep = new Set(['ssh.service', 'sshd.service', 'systemd-journald.service', 'dbus.service', 'dbus.socket']);
  const out = new Set<string>(['console-getty.service', 'getty@tty1.service', 'systemd-timesyncd.service', 'cron.service']);
  for (const d of ['/etc/systemd/system', '/lib/systemd/system']) {
    let wants: string[] = [];
    try { wants = readdirSync(d).filter((e) => /\.(wants|requires)$/.test(e) && /^(multi-user|timers|graphical|sysinit)\.target/.test(e)); } catch { continue; }
    for (const w of wants) {
      if (d === '/lib/systemd/system' && !w.startsWith('timers.')) continue;
      for (const u of readdirSync(join(d, w))) if (!keep.has(u) && !u.startsWith('systemd-') && /\.(service|timer)$/.test(u)) out.add(u);
    }
  }
  return [...out];
}

/** A running container booted by systemd. Create with `createSystemdVm`; always `destroy()` it. */
export class SystemdVm {
  readonly dir: string;
  readonly imageDir: string;
  /** Control directory bound into the container at the same path: the agent copy, init files, scenario, sim log. */
  readonly ctl: string;
  readonly simulator: SimHandle;
  private holder?: ChildProcess;
  private nspawn?: ChildProcess;
  private nspawnOut = '';
  private pid1 = 0;
  private loops: string[] = [];
  private destroyed = false;
  private dvdDevice?: string;
  private boots = 0;

  constructor(readonly opts: SystemdVmOptions) {
    this.dir = mkdtempSync('/tmp/waagent-sdvm-');
    this.imageDir = join(this.dir, 'image');
    this.ctl = join(this.dir, 'ctl');
    const logDir = join(this.ctl, 'sim');
    this.simulator = {
      logDir,
      summary: (): Summary | undefined => {
        try { return JSON.parse(readFileSync(join(logDir, 'summary.json'), 'utf8')) as Summary; } catch { return undefined; }
      },
      requests: (): Recorded[] => {
        try { return readFileSync(join(logDir, 'requests.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Recorded); } catch { return []; }
      },
      setScenario: (s: Scenario): void => { writeFileSync(join(this.ctl, 'scenario.json'), JSON.stringify(s)); this.signalSimulator('SIGHUP'); },
      bumpIncarnation: (): void => { this.signalSimulator('SIGUSR2'); },
    };
  }

  /** Host pid of the container's systemd (0 when not booted). */
  get pid(): number { return this.pid1; }

  /** Host path of the container's root while it runs. */
  get rootPath(): string { return `/proc/${this.pid1}/root`; }

  private signalSimulator(sig: NodeJS.Signals): void {
    const p = descendants(this.pid1).find((q) => cmdline(q).includes('run-simulator'));
    if (!p) throw new Error('the simulator does not run in this VM');
    process.kill(p, sig);
  }

  /** Builds the DVD, the image layer and the control directory, mounts the overlay, boots the container. */
  async boot(): Promise<void> {
    trackVm(this);
    const o = this.opts;
    for (const d of ['merged', 'fs', 'image', 'ctl', 'ctl/sim', 'ctl/init']) mkdirSync(join(this.dir, d), { recursive: true });
    writeFileSync(join(this.ctl, 'scenario.json'), JSON.stringify(o.scenario));
    if (!existsSync(SIM_JS)) throw new Error(`${SIM_JS} missing: compile the tests first (tsc -p .)`);
    const bin = agentCommand(o.agentBin);
    if (!existsSync(bin)) throw new Error(`agent executable ${bin} not found: run 'node build.mjs' or set WAAGENT_BIN`);
    // A private copy of the agent and of init/: a rebuild while the VM runs changes nothing under the test's feet.
    copyFileSync(realpathSync(bin), join(this.ctl, 'waagent'));
    execFileSync('cp', ['-a', `${join(TOP, 'init')}/.`, join(this.ctl, 'init')]);
    if (o.withDvd !== false) {
      const src = join(this.dir, 'dvd');
      mkdirSync(src);
      writeFileSync(join(src, 'ovf-env.xml'), buildOvfEnv(o.scenario));
      const iso = join(this.dir, 'dvd.iso');
      execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-V', 'rd_rdfe_stable', '-J', '-r', '-o', iso, src], { stdio: 'pipe' });
      const loop = execFileSync('losetup', ['-f', '--show', '-r', iso]).toString().trim();
      this.loops.push(loop);
      this.dvdDevice = loop;
    }
    // The image layer: lease with option 245, the simulator's unit (enabled), masks for what the host enables.
    imageWrite(this.imageDir, '/var/lib/dhcp/dhclient.eth0.leases', leaseFile(), 0o644);
    if (o.waagentConf !== undefined) imageWrite(this.imageDir, '/etc/waagent.conf', o.waagentConf, 0o644);
    const sim = [
      '# The fabric simulator of the test bed (test/vm/systemd-vm.ts), in the container\'s network namespace.',
      '[Unit]', 'Description=Fabric simulator (test bed)', 'DefaultDependencies=no', 'After=local-fs.target',
      'Before=network-online.target waagent.service walinuxagent.service', '',
      '[Service]', 'Type=exec',
      `ExecStart=${NODE} ${SIM_JS} --scenario ${this.ctl}/scenario.json --log-dir ${this.ctl}/sim --host 127.0.0.1 --port 80 --host-plugin-port 32526`,
      '', '[Install]', 'WantedBy=multi-user.target', '',
    ].join('\n');
    imageWrite(this.imageDir, '/etc/systemd/system/fabric-sim.service', sim, 0o644);
    const link = (p: string, target: string): void => {
      mkdirSync(dirname(join(this.imageDir, p)), { recursive: true });
      symlinkSync(target, join(this.imageDir, p));
    };
    link('/etc/systemd/system/multi-user.target.wants/fabric-sim.service', '/etc/systemd/system/fabric-sim.service');
    // The DHCP client of the bed: writes the lease (option 245) at every boot, as dhclient would after
    // deprovisioning deleted it.
    writeFileSync(join(this.ctl, 'dhclient.eth0.leases'), leaseFile());
    imageWrite(this.imageDir, '/etc/systemd/system/fake-dhclient.service', [
      '# The DHCP client of the test bed (test/vm/systemd-vm.ts): the lease with option 245 = 127.0.0.1.',
      '[Unit]', 'Description=DHCP lease (test bed)', 'DefaultDependencies=no', 'After=local-fs.target',
      'Before=network-online.target waagent.service walinuxagent.service', '',
      '[Service]', 'Type=oneshot', 'RemainAfterExit=yes',
      `ExecStart=/bin/cp ${this.ctl}/dhclient.eth0.leases /var/lib/dhcp/dhclient.eth0.leases`,
      '', '[Install]', 'WantedBy=multi-user.target', '',
    ].join('\n'), 0o644);
    link('/etc/systemd/system/multi-user.target.wants/fake-dhclient.service', '/etc/systemd/system/fake-dhclient.service');
    for (const u of unitsToMask()) link(`/etc/systemd/system/${u}`, '/dev/null');
    await o.extraSetup?.(this.imageDir);
    writeFileSync(join(this.dir, 'holder.sh'), HOLDER_SH);

    let stderr = '';
    this.holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', join(this.dir, 'holder.sh')], {
      env: { ...AGENT_ENV, VM_DIR: this.dir }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.holder.stderr!.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-8192); });
    let exited = false;
    this.holder.on('exit', () => { exited = true; });
    const deadline = Date.now() + 20_000;
    while (!existsSync(join(this.dir, 'setup-done'))) {
      if (exited) throw new Error(`VM setup failed: ${stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`VM setup did not finish: ${stderr.trim()}`);
      await sleep(50);
    }
    await this.start();
  }

  /** Starts the container on the mounted overlay and waits until systemd finished booting. */
  private async start(): Promise<void> {
    const holderSh = childrenOf(this.holder!.pid!)[0] ?? this.holder!.pid!;
    const binds = [`--bind=${this.ctl}`, ...[realpathSync(TOP), dirname(dirname(realpathSync(NODE))), ...hiddenHostPaths()]
      .filter((p, i, a) => a.indexOf(p) === i && !this.ctl.startsWith(p)).map((p) => `--bind-ro=${p}`)];
    if (this.dvdDevice) binds.push(`--bind-ro=${this.dvdDevice}:/dev/sr0`);
    this.nspawnOut = '';
    this.nspawn = spawn('nsenter', ['-t', String(holderSh), '-m', '--', 'systemd-nspawn', '-D', join(this.dir, 'merged'), '--boot',
      '--register=no', '--keep-unit', '--private-network', '--console=read-only', '--machine', 'waagent-vm', ...binds], {
      env: { ...AGENT_ENV, SYSTEMD_NSPAWN_TMPFS_TMP: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (c: Buffer): void => { this.nspawnOut = (this.nspawnOut + c.toString()).slice(-16384); };
    this.nspawn.stdout!.on('data', keep);
    this.nspawn.stderr!.on('data', keep);
    let exited = false;
    this.nspawn.on('exit', () => { exited = true; });
    const timeout = this.opts.bootTimeoutMs ?? 60_000;
    const deadline = Date.now() + timeout;
    this.pid1 = 0;
    while (!this.pid1) {
      // The child nspawn forks is itself systemd-nspawn until it execs the container's init: wait for the exec
      // (its argv[0] is systemd's path), or commands would enter the host's namespaces.
      this.pid1 = childrenOf(this.nspawn.pid!).find((p) => /^\/(usr\/)?lib\/systemd\/systemd(\s|$)/.test(cmdline(p))) ?? 0;
      if (this.pid1) break;
      if (exited || Date.now() > deadline) throw new Error(`systemd-nspawn did not start the container: ${this.nspawnOut.trim()}`);
      await sleep(50);
    }
    // Wait for the boot to finish ("running" or "degraded") and for the simulator to listen.
    for (;;) {
      if (exited) throw new Error(`the container stopped while booting: ${this.nspawnOut.trim()}`);
      if (Date.now() > deadline) throw new Error(`the container did not finish booting within ${timeout} ms: ${this.nspawnOut.trim().slice(-2000)}`);
      const r = await this.exec(['systemctl', 'is-system-running']).catch(() => undefined);
      const state = r?.stdout.trim();
      if ((state === 'running' || state === 'degraded') && existsSync(join(this.ctl, 'sim', 'ready'))) return;
      await sleep(200);
    }
  }

  /** Stops the container (SIGKILL to its PID 1: an abrupt power-off) and boots it again on the same disk. The
   *  simulator starts afresh with the boot: its previous log is kept as `<file>.boot<n>`. */
  async reboot(): Promise<void> {
    await this.powerOff();
    this.boots++;
    for (const f of ['ready', 'summary.json', 'requests.jsonl']) {
      const p = join(this.ctl, 'sim', f);
      if (existsSync(p)) renameSync(p, `${p}.boot${this.boots}`);
    }
    await this.start();
  }

  private async powerOff(): Promise<void> {
    const n = this.nspawn;
    for (const p of [this.pid1, ...(n?.pid ? childrenOf(n.pid) : [])]) { if (p) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } } }
    if (n && n.exitCode === null && n.signalCode === null) {
      await Promise.race([new Promise((r) => n.once('exit', r)), sleep(5000)]);
      try { n.kill('SIGKILL'); } catch { /* gone */ }
    }
    this.pid1 = 0;
  }

  /** Console output of the container's boot (the last 16 KiB), for failure messages. */
  get console(): string { return this.nspawnOut; }

  /**
   * Runs a command inside the container (its mount, UTS, IPC, network and PID namespaces and root; capabilities that
   * act on the host kernel dropped) and returns its exit code and output. Rejects when the container is not running.
   */
  exec(argv: string[], input?: string, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    if (!this.pid1 || this.destroyed || !existsSync(`/proc/${this.pid1}`)) return Promise.reject(new Error(`exec(${JSON.stringify(argv)}): the container is not running`));
    return new Promise((resolve, reject) => {
      const c = spawn('nsenter', ['-t', String(this.pid1), '-m', '-u', '-i', '-n', '-p', '-r', '-w', '--', ...DROP_CAPS, ...argv], {
        env: { ...AGENT_ENV, SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0' }, stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => { try { c.kill('SIGKILL'); } catch { /* gone */ } }, timeoutMs);
      c.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
      c.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      c.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start nsenter: ${e.message}`)); });
      c.on('close', (code) => {
        clearTimeout(timer);
        if (/^(nsenter|setpriv): /m.test(stderr) && code !== 0) reject(new Error(`exec(${JSON.stringify(argv)}) could not run: ${stderr.trim()}`));
        else resolve({ code, stdout, stderr });
      });
      c.stdin!.on('error', () => { /* not read */ });
      c.stdin!.end(input ?? '');
    });
  }

  /** Runs a command and throws with its output unless it exits 0. */
  async sh(argv: string[], input?: string): Promise<string> {
    const r = await this.exec(argv, input);
    if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${(r.stdout + r.stderr).trim()}`);
    return r.stdout;
  }

  /** `systemctl show -p <prop> --value <unit>`. */
  async unitProperty(unit: string, prop: string): Promise<string> {
    return (await this.exec(['systemctl', 'show', '-p', prop, '--value', unit])).stdout.trim();
  }

  /** The journal entries of a unit (or of everything when `unit` is undefined). */
  async journal(unit?: string): Promise<JournalEntry[]> {
    await this.exec(['journalctl', '--sync']).catch(() => undefined);
    const r = await this.exec(['journalctl', '--no-pager', '-o', 'json', '--output-fields=PRIORITY,MESSAGE,_SYSTEMD_UNIT,SYSLOG_IDENTIFIER', ...(unit ? ['-u', unit] : [])]);
    const out: JournalEntry[] = [];
    for (const l of r.stdout.split('\n')) {
      if (!l.trim()) continue;
      try {
        const j = JSON.parse(l) as Record<string, unknown>;
        const msg = Array.isArray(j.MESSAGE) ? Buffer.from(j.MESSAGE as number[]).toString('utf8') : String(j.MESSAGE ?? '');
        out.push({ priority: Number(j.PRIORITY ?? 6), message: msg, unit: j._SYSTEMD_UNIT as string | undefined, identifier: j.SYSLOG_IDENTIFIER as string | undefined });
      } catch { /* a partial line */ }
    }
    return out;
  }

  /** Waits until `pred` holds (polling every 100 ms); throws with `what` after `timeoutMs`. */
  async waitFor<T>(what: string, pred: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await pred();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  }

  /** Reads a file as the container sees it; undefined when missing. */
  readFile(p: string): Buffer | undefined {
    try { return readFileSync(join(this.rootPath, p)); } catch { return undefined; }
  }

  /** Host pids of processes in the container whose command line contains `needle`. */
  pidsMatching(needle: string | RegExp): number[] {
    return descendants(this.pid1).filter((p) => { const c = cmdline(p); return typeof needle === 'string' ? c.includes(needle) : needle.test(c); });
  }

  /** Stops the container and the namespace holder, detaches the loop devices. Safe to call twice. */
  async destroy(opts: { removeFiles?: boolean } = { removeFiles: true }): Promise<void> {
    if (!this.destroyed) {
      await this.powerOff();
      this.destroySync();
    }
    if (opts.removeFiles && !process.env.WAAGENT_KEEP_VM) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous teardown for exit handlers: SIGKILL to the container's PID 1, nspawn and the holder, by pid. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    untrackVm(this);
    // The container's PID 1, and (should it not be known) every child of nspawn: killing a PID namespace's init
    // ends the namespace; killing only nspawn would leave the container running.
    const nspawnKids = this.nspawn?.pid ? childrenOf(this.nspawn.pid) : [];
    for (const p of [this.pid1, ...nspawnKids, this.nspawn?.pid, this.holder?.pid, ...(this.holder?.pid ? childrenOf(this.holder.pid) : [])]) {
      if (p) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    }
    detachLoopsAfter(this.pid1, this.loops);
    this.loops = [];
  }
}

/** Creates and boots a systemd VM. The caller must `destroy()` it. */
export async function createSystemdVm(opts: SystemdVmOptions): Promise<SystemdVm> {
  const vm = new SystemdVm(opts);
  try {
    await vm.boot();
  } catch (e) {
    await vm.destroy({ removeFiles: true });
    throw e;
  }
  return vm;
}

/** README "Install on an image", as commands run inside the VM (from the bound control directory). `unit` is the
 *  unit's name: `waagent` (generic) or `walinuxagent` (Debian/Ubuntu beside the distro package). */
export function readmeInstall(ctl: string, unit: 'waagent' | 'walinuxagent' = 'waagent'): string[][] {
  return [
    ['install', '-m', '0755', `${ctl}/waagent`, '/usr/sbin/waagent'],
    ['install', '-m', '0644', `${ctl}/init/azure.slice`, '/etc/systemd/system/azure.slice'],
    ['install', '-m', '0644', `${ctl}/init/waagent.service`, `/etc/systemd/system/${unit}.service`],
    ['install', '-m', '0644', `${ctl}/init/waagent.logrotate`, '/etc/logrotate.d/waagent'],
    ['systemctl', 'daemon-reload'],
  ];
}
