/**
 * Throwaway machines for the VM tests. A VM is: new mount, UTS, network and PID namespaces; an overlay of the host's
 * `/` (host root as the lowest layer, a small "image" layer with what the scenario installs, a tmpfs upper layer that
 * records exactly what the agent changed); a private /dev with the provisioning DVD (an ISO on a read-only loop device,
 * exposed as /dev/sr0); fresh /proc (with /proc/sys read-only), read-only /sys, tmpfs /run and /tmp; `lo` up, a veth
 * `eth0`, `ip rule ... prohibit` for 168.63.129.16 and 169.254.169.254; the fabric simulator on 127.0.0.1:80 and
 * :32526 inside the namespace, found by the agent through a dhclient lease with option 245 = 127.0.0.1.
 * The agent runs chrooted into the overlay. Nothing it does reaches the host: every mount lives in the private
 * mount namespace, every process in the PID namespace, and destroy() (or the exit handler) kills PID 1 of that
 * namespace and detaches the loop devices it attached, by id.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { buildOvfEnv, type Scenario } from '../fabric/scenario';
import type { Recorded, Summary } from '../fabric/simulator';

/** Repository top (this file is compiled to build/test/vm/vm.js). */
export const TOP = join(__dirname, '..', '..', '..');
const NODE = process.execPath;
export const SIM_JS = join(TOP, 'build', 'test', 'fabric', 'run-simulator.js');
const RUNNER_JS = join(TOP, 'build', 'test', 'vm', 'agent-runner.js');
/** Capabilities no process in the VM keeps: they act on the host kernel as a whole (device nodes, modules, clock,
 *  raw I/O). Applied with setpriv before the chroot. */
export const DROP_CAPS = ['setpriv', '--bounding-set', '-mknod,-sys_module,-sys_time,-sys_rawio,-sys_boot,-syslog,-wake_alarm,-sys_nice'];
export const AGENT_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8', TERM: 'dumb' };

export interface VmOptions {
  scenario: Scenario;
  /** Contents of /etc/waagent.conf. */
  waagentConf: string;
  /** A resource disk (`true`: the defaults of ResourceDiskOptions): the disk image on a loop device as /dev/sdb, its
   *  partition on a second loop device as /dev/sdb1, and a fake Hyper-V tree on a tmpfs over /sys/bus. */
  resourceDisk?: boolean | ResourceDiskOptions;
  /** Start the simulator inside the namespace (default true). */
  withSimulator?: boolean;
  /** Install /sbin/mount.udf and /sbin/mount.iso9660 helpers that mount the DVD with fuseiso (default true). */
  dvdHelpers?: boolean;
  /** Attach the DVD at all (default true). */
  withDvd?: boolean;
  /** Override the agent command (default env WAAGENT_BIN or dist/waagent-linux-x64); a value with spaces is a
   *  command line (e.g. `node dist/waagent.js`) installed as a wrapper script. */
  agentBin?: string;
  /** Host name the machine has before the agent runs. */
  initialHostname?: string;
  /** Called with the host path of the image layer (files there appear in the VM, and are not "changes"). */
  extraSetup?(imageDir: string): void | Promise<void>;
  /** How long to wait for the namespaces and the simulator (ms, default 20000). */
  bootTimeoutMs?: number;
  /** Put the dhclient lease with option 245 = 127.0.0.1 into the image (default true). Without it the agent finds
   *  the wire server only through a DHCP server (`startDhcpServer`) or a cached endpoint. */
  dhcpLease?: boolean;
}

/** A DHCP server on the far side of the VM's `eth0` (see `Vm.startDhcpServer`). */
export interface DhcpServerOptions {
  /** Option 245 (the wire server), e.g. '127.0.0.1'. */
  option245?: string;
  /** Option 3 (router). */
  router?: string;
  /** Option 249 as raw bytes, e.g. [16, 10, 9, 192, 0, 2, 1] = 10.9.0.0/16 via 192.0.2.1. */
  option249?: number[];
}

export interface DhcpServerHandle {
  /** dnsmasq's log (--log-dhcp) so far. */
  log(): string;
  /** PID (in the VM's PID namespace) of the process that holds the server's network namespace. */
  nsPid: number;
}

/** The resource disk of a VM (TOOLCHAIN.md "More of the test bed": this kernel parses no partition tables, so the
 *  partition is a second loop device over its byte range; sdb1 does not follow a new table, which is harmless). */
export interface ResourceDiskOptions {
  /** Host path of the disk image: created when missing (MBR, one NTFS-typed partition from sector 2048), reused when
   *  present (the same disk after a "reboot"). Default: a fresh image in the VM's directory. The caller owns it. */
  image?: string;
  /** Size of a new image in MiB (default 256). */
  sizeMiB?: number;
  /** The fake /sys/bus/vmbus: 'gen1' (IDE port 1 → sdb), 'gen2' (synthetic SCSI controller, LUN 1 → sdb, beside a
   *  data-disk controller whose LUN 1 is sdc), 'none' (only the OS disk: a VM size without a resource disk; no disk
   *  is attached). Default 'gen1'. */
  layout?: 'gen1' | 'gen2' | 'none';
  /** Also the udev link /dev/disk/azure/resource → ../../sdb (§6.5). */
  azureLink?: boolean;
}

export interface RunOptions {
  timeoutMs: number;
  /** 'exit' (default for non-daemon commands): wait for the agent to exit. 'ready': stop the agent once the simulator
   *  received a new Ready report and `graceMs` passed. */
  until?: 'exit' | 'ready';
  graceMs?: number;
  /** Send `killSignal` (default SIGKILL) to the agent's processes after this many ms. */
  killAfterMs?: number;
  killSignal?: NodeJS.Signals;
  /** Send `killSignal` once this holds for the simulator's summary (e.g. "NotReady received"). */
  killWhen?: (s: Summary) => boolean;
  /** Extra environment for the agent. */
  env?: Record<string, string>;
}

export interface RunResult {
  argv: string[];
  exitCode: number | null;
  signal: string | null;
  /** Why the run ended. */
  reason: 'exit' | 'ready' | 'timeout' | 'killed';
  startedAt: number;
  endedAt: number;
  /** Time of the first Ready report accepted during this run (simulator clock = host clock). */
  readyAt?: number;
  /** When the runner inside the VM spawned the agent (after the runner's own start-up). */
  agentStartedAt: number;
  /** From the agent's spawn (by the runner inside the VM) to the Ready report the simulator accepted. */
  timeToReadyMs?: number;
  /** user+system CPU of the agent and every descendant it waited for. */
  cpuMs: number;
  /** Highest sum of VmRSS over all processes of the agent's tree (sampled every 50 ms). */
  peakRssKb: number;
  /** Highest anonymous and file-backed RSS of the agent's own processes (sampled), and the sum of their VmHWM. */
  peakAgentAnonKb: number;
  peakAgentFileKb: number;
  agentHwmKb: number;
  /** The idle window after Ready (from 2 s after Ready to the stop): the agent's own CPU (user+system, ms), its
   *  length (ms) and its RSS at both ends (KiB). Undefined when the run did not reach Ready + 2 s. */
  idle?: { ms: number; cpuMs: number; rssStartKb: number; rssEndKb: number; anonEndKb: number; fileEndKb: number };
  /** Same, counting only the agent's own processes (command line mentions waagent). */
  peakAgentRssKb: number;
  /** Distinct processes seen in the agent's tree (sampled every 50 ms, so very short commands may be missed), and
   *  how many of them were the agent's own (command line mentions waagent). */
  processesSeen: number;
  agentProcessesSeen: number;
  stdout: string;
  stderr: string;
}

export interface Change {
  path: string;
  kind: 'created' | 'modified' | 'deleted';
  type: 'file' | 'dir' | 'symlink' | 'other';
}

/** A read-only view of the simulator inside the VM (through its log directory). */
export interface SimHandle {
  logDir: string;
  summary(): Summary | undefined;
  requests(): Recorded[];
  /** Replaces the running simulator's scenario (written to its file, then SIGHUP). */
  setScenario(s: Scenario): void;
  /** Raises the incarnation of the running simulator (SIGUSR2); the new value shows in summary().incarnation. */
  bumpIncarnation(): void;
}

/** A throwaway machine the exit handlers tear down (Vm, SystemdVm). */
interface Teardownable { readonly dir: string; destroySync(): void }
const live = new Set<Teardownable>();
let handlersInstalled = false;

/** Tears `vm` down at process exit or on SIGINT/SIGTERM/SIGHUP, until `untrackVm`. */
export function trackVm(vm: Teardownable): void {
  live.add(vm);
  if (handlersInstalled) return;
  handlersInstalled = true;
  // At exit nothing can read a VM's files any more: remove them too, unless WAAGENT_KEEP_VM asks to keep them.
  const teardown = (): void => {
    for (const v of [...live]) {
      v.destroySync();
      if (!process.env.WAAGENT_KEEP_VM) { try { rmSync(v.dir, { recursive: true, force: true }); } catch { /* best effort */ } }
    }
  };
  process.on('exit', teardown);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      teardown();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

export function untrackVm(vm: Teardownable): void { live.delete(vm); }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Why VM tests cannot run here, or undefined when they can (root, unshare, overlay, xorriso, fuseiso, losetup). */
export function vmUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'VM tests need Linux';
  if (process.getuid?.() !== 0) return 'VM tests need root (namespaces, overlay, loop devices)';
  for (const tool of ['unshare', 'nsenter', 'losetup', 'xorriso', 'ip', 'chroot']) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }); } catch { return `VM tests need '${tool}' (see .ci/apt-packages.txt)`; }
  }
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return 'VM tests need overlayfs in the kernel';
  return undefined;
}

/** The agent command: opts.agentBin, env WAAGENT_BIN, or dist/waagent-linux-x64. */
export function agentCommand(override?: string): string {
  return override ?? process.env.WAAGENT_BIN ?? join(TOP, 'dist', 'waagent-linux-x64');
}

/** Host path of `p` as the lowest layer sees it, with symlinked parents resolved (so the image layer never puts a
 *  directory where the host has a symlink, e.g. /sbin → usr/sbin). */
export function resolveHostParent(p: string): string {
  let dir = dirname(p);
  const tail: string[] = [p.slice(dir.length + 1)];
  while (!existsSync(dir)) { tail.unshift(dir.slice(dirname(dir).length + 1)); dir = dirname(dir); }
  return join(realpathSync(dir), ...tail);
}

/** Writes a file into the image layer at VM path `p`. */
export function imageWrite(imageDir: string, p: string, data: string | Buffer, mode = 0o644): void {
  const target = join(imageDir, resolveHostParent(p));
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, data);
  chmodSync(target, mode);
}

export function leaseFile(): string {
  return [
    'lease {',
    '  interface "eth0";',
    '  fixed-address 192.0.2.4;',
    '  option subnet-mask 255.255.255.0;',
    '  option dhcp-lease-time 4294967295;',
    '  option dhcp-message-type 5;',
    '  option domain-name-servers 127.0.0.1;',
    '  option dhcp-server-identifier 127.0.0.1;',
    '  option unknown-245 7f:0:0:1;',
    '  renew 4 2099/12/30 23:59:59;',
    '  rebind 4 2099/12/31 00:00:00;',
    '  expire 4 2099/12/31 23:59:59;',
    '}',
    '',
  ].join('\n');
}

const MOUNT_HELPER = `#!/bin/sh
# Test-bed mount helper: the kernel here has no iso9660/udf driver, so mount(8) hands these types to us and we
# serve the ISO with fuseiso. Called as: mount.<type> <device> <dir> [-o opts]
exec fuseiso -n "$1" "$2"
`;

/** swapon/swapoff inside every VM: swap is global to the host kernel, so the real programs must never run there. This
 *  stand-in logs each call, checks the file like swapon would (exists, mkswap signature), and keeps the list of
 *  "active" swap files for `swapon -s` in /run (a fresh tmpfs per VM boot, like the kernel's list after a reboot). */
const SWAP_STANDIN = `#!/bin/sh
S=/run/swap-standin
mkdir -p "$S"; touch "$S/swaps"
me=\${0##*/}
echo "$me $*" >> "$S/log"
if [ "$me" = swapoff ]; then
  grep -q "^$1	" "$S/swaps" || { echo "swapoff: $1: swapoff failed: Invalid argument" >&2; exit 255; }
  grep -v "^$1	" "$S/swaps" > "$S/swaps.new" || true; mv "$S/swaps.new" "$S/swaps"; exit 0
fi
case "\${1:-}" in
  -s|--summary) printf 'Filename\\t\\t\\t\\tType\\t\\tSize\\t\\tUsed\\t\\tPriority\\n'; cat "$S/swaps"; exit 0 ;;
  -*|'') echo "swapon stand-in: unsupported: $*" >&2; exit 1 ;;
esac
f=$1
[ -f "$f" ] || { echo "swapon: cannot open $f: No such file or directory" >&2; exit 255; }
[ "$(dd if="$f" bs=1 skip=4086 count=10 2>/dev/null)" = SWAPSPACE2 ] || { echo "swapon: $f: read swap header failed" >&2; exit 255; }
grep -q "^$f	" "$S/swaps" && { echo "swapon: $f: swapon failed: Device or resource busy" >&2; exit 255; }
printf '%s\\tfile\\t\\t%s\\t\\t0\\t\\t-2\\n' "$f" "$(( $(stat -c %s "$f") / 1024 - 4 ))" >> "$S/swaps"
`;

const SETUP_SH = `set -eu
W="$VM_DIR"; F="$W/fs"; M="$W/merged"
mount -t tmpfs -o mode=0755,size=4g vmfs "$F"
mkdir -p "$F/upper" "$F/work" "$F/image"
cp -a "$W/image/." "$F/image/"
# A private copy of the agent: a rebuild of dist/ while the VM runs cannot change it under the agent's feet.
if [ -n "\${VM_BIN:-}" ]; then cp "$VM_BIN" "$F/image$VM_BIN_PATH"; chmod 0755 "$F/image$VM_BIN_PATH"; fi
mount -t overlay overlay -o "lowerdir=$F/image:/,upperdir=$F/upper,workdir=$F/work" "$M"
mount -t proc -o nosuid,nodev,noexec proc "$M/proc"
for p in sys sysrq-trigger irq bus; do
  if [ -e "$M/proc/$p" ]; then mount --bind "$M/proc/$p" "$M/proc/$p"; mount -o remount,bind,ro "$M/proc/$p"; fi
done
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$M/sys"
mount -t tmpfs -o mode=0755,nosuid,size=64m dev "$M/dev"
D="$M/dev"
mknod -m 666 "$D/null" c 1 3; mknod -m 666 "$D/zero" c 1 5; mknod -m 666 "$D/full" c 1 7
mknod -m 666 "$D/random" c 1 8; mknod -m 666 "$D/urandom" c 1 9; mknod -m 666 "$D/tty" c 5 0
mknod -m 600 "$D/console" c 5 1; mknod -m 666 "$D/fuse" c 10 229
ln -s /proc/self/fd "$D/fd"; ln -s /proc/self/fd/0 "$D/stdin"; ln -s /proc/self/fd/1 "$D/stdout"; ln -s /proc/self/fd/2 "$D/stderr"
mkdir -p "$D/pts" "$D/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$D/pts"; ln -s pts/ptmx "$D/ptmx"
mount -t tmpfs -o mode=1777,size=64m shm "$D/shm"
if [ -n "\${VM_DVD_MAJMIN:-}" ]; then mknod -m 660 "$D/sr0" b $VM_DVD_MAJMIN; ln -s sr0 "$D/cdrom"; fi
if [ -n "\${VM_DISK_MAJMIN:-}" ]; then mknod -m 660 "$D/sdb" b $VM_DISK_MAJMIN; fi
if [ -n "\${VM_PART_MAJMIN:-}" ]; then mknod -m 660 "$D/sdb1" b $VM_PART_MAJMIN; fi
if [ -n "\${VM_AZURE_LINK:-}" ]; then mkdir -p "$D/disk/azure"; ln -s ../../sdb "$D/disk/azure/resource"; fi
# The fake Hyper-V tree: a tmpfs over /sys/bus holding it, the host's other buses bound back read-only.
if [ -n "\${VM_SYSBUS:-}" ]; then
  mount -t tmpfs -o mode=0755,nosuid,nodev,noexec,size=8m sysbus "$M/sys/bus"
  for b in /sys/bus/*; do n=\${b##*/}; [ "$n" = vmbus ] && continue; mkdir "$M/sys/bus/$n"; mount --bind "$b" "$M/sys/bus/$n"; mount -o remount,bind,ro "$M/sys/bus/$n"; done
  cp -a "$VM_SYSBUS/." "$M/sys/bus/"
  mount -o remount,ro "$M/sys/bus"
fi
mount -t tmpfs -o mode=0755,nosuid,nodev,size=256m run "$M/run"
mount -t tmpfs -o mode=1777,nosuid,nodev,size=512m tmp "$M/tmp"
# Host folders the VM needs (the project, the Node that runs the tests) that the fresh /tmp or /run would hide:
# bound read-only at the same path (CI may clone the project under /tmp).
for b in \${VM_BINDS:-}; do mkdir -p "$M$b"; mount --bind "$b" "$M$b"; mount -o remount,bind,ro "$M$b"; done
hostname "$VM_HOSTNAME"
ip link set lo up
ip link add eth0 type veth peer name vm-peer0 2>/dev/null && { ip addr add 192.0.2.4/24 dev eth0; ip link set vm-peer0 up; ip link set eth0 up; } || true
ip rule add to 168.63.129.16 prohibit
ip rule add to 169.254.169.254 prohibit
touch "$W/setup-done"
if [ -n "\${VM_SIM:-}" ]; then
  exec "$VM_NODE" "$VM_SIM" --scenario "$W/scenario.json" --log-dir "$W/sim" --host 127.0.0.1 --port 80 --host-plugin-port 32526
fi
exec sleep 2147483647
`;

/** Host folders that the VM's fresh /tmp and /run would hide but the VM needs: the project and the test's Node. */
export function hiddenHostPaths(): string[] {
  const hidden = (p: string) => /^\/(tmp|run)\//.test(p);
  const want = [realpathSync(TOP), dirname(dirname(realpathSync(NODE)))];
  return [...new Set(want.filter(hidden))].filter((p) => !/\s/.test(p));
}

/** Lists processes as pid → ppid from /proc. */
function processTable(): Map<number, number> {
  const m = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = readFileSync(`/proc/${e}/stat`, 'utf8');
      const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
      m.set(Number(e), Number(rest[1]));
    } catch { /* gone */ }
  }
  return m;
}

function descendants(root: number, table = processTable()): number[] {
  const out: number[] = [];
  const kids = new Map<number, number[]>();
  for (const [pid, ppid] of table) { if (!kids.has(ppid)) kids.set(ppid, []); kids.get(ppid)!.push(pid); }
  const stack = [...(kids.get(root) ?? [])];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(kids.get(p) ?? []));
  }
  return out;
}

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}

/** Peak resident memory of one process (VmHWM) and its current anonymous and file-backed (file + tmpfs) parts, in KiB. */
function memKb(pid: number): { hwm: number; anon: number; file: number } {
  try {
    const t = readFileSync(`/proc/${pid}/status`, 'utf8');
    const f = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(t)?.[1] ?? 0);
    // File-backed = RssFile + RssShmem: the VM's image layer is a tmpfs, so the agent's executable copied there is
    // mapped as shared memory, while a program from the host's lower layer (python3) counts as RssFile.
    return { hwm: f('VmHWM'), anon: f('RssAnon'), file: f('RssFile') + f('RssShmem') };
  } catch { return { hwm: 0, anon: 0, file: 0 }; }
}

/** utime+stime of a process in ms (from /proc/<pid>/stat; clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch { return 0; }
}

function isAgent(pid: number): boolean {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('waagent'); } catch { return false; }
}

/** A running throwaway VM. Create with `createVm`; always `destroy()` it (try/finally). */
export class Vm {
  readonly dir: string;
  readonly imageDir: string;
  readonly simulator: SimHandle;
  private unshare?: ChildProcess;
  private pid1 = 0;
  private loops: string[] = [];
  private current?: { runner: ChildProcess; nsenterPid: number };
  private snapshotDir?: string;
  private destroyed = false;
  /** A simulator started after boot by `startSimulator` (host pid of the node process, and its nsenter). */
  private lateSim?: { pid: number; nsenter: ChildProcess };

  constructor(readonly opts: VmOptions) {
    this.dir = mkdtempSync('/tmp/waagent-vm-');
    this.imageDir = join(this.dir, 'image');
    const logDir = join(this.dir, 'sim');
    this.simulator = {
      logDir,
      summary: (): Summary | undefined => {
        try { return JSON.parse(readFileSync(join(logDir, 'summary.json'), 'utf8')) as Summary; } catch { return undefined; }
      },
      requests: (): Recorded[] => {
        try {
          return readFileSync(join(logDir, 'requests.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Recorded);
        } catch { return []; }
      },
      setScenario: (s: Scenario): void => {
        writeFileSync(join(this.dir, 'scenario.json'), JSON.stringify(s));
        this.signalSimulator('SIGHUP');
      },
      bumpIncarnation: (): void => { this.signalSimulator('SIGUSR2'); },
    };
  }

  private signalSimulator(sig: NodeJS.Signals): void {
    if (this.lateSim && !this.destroyed) { process.kill(this.lateSim.pid, sig); return; }
    if (!this.pid1 || this.destroyed || this.opts.withSimulator === false) throw new Error('no simulator runs in this VM');
    process.kill(this.pid1, sig);
  }

  /**
   * Switches the fabric on in a VM booted with `withSimulator: false`: starts the simulator inside the VM's
   * namespaces (127.0.0.1:80 and :32526, log in `simulator.logDir`, which it starts afresh) with `scenario` (default:
   * the VM's scenario), and resolves once it listens. The `simulator` handle then controls it. Throws when the VM
   * booted with its own simulator, when one was started already, or when it does not come up within `timeoutMs`.
   */
  async startSimulator(scenario?: Scenario, timeoutMs = 20_000): Promise<void> {
    if (!this.pid1 || this.destroyed) throw new Error('VM is not running');
    if (this.opts.withSimulator !== false) throw new Error('this VM runs its simulator as PID 1: it cannot be started again');
    if (this.lateSim) throw new Error('the simulator already runs in this VM');
    if (!existsSync(SIM_JS)) throw new Error(`${SIM_JS} missing: compile the tests first (tsc -p .)`);
    if (scenario) writeFileSync(join(this.dir, 'scenario.json'), JSON.stringify(scenario));
    const ready = join(this.dir, 'sim', 'ready');
    rmSync(ready, { force: true });
    const child = spawn('nsenter', ['-t', String(this.pid1), '-m', '-u', '-i', '-n', '-p', '--', NODE, SIM_JS,
      '--scenario', join(this.dir, 'scenario.json'), '--log-dir', join(this.dir, 'sim'), '--host', '127.0.0.1', '--port', '80',
      '--host-plugin-port', '32526'], { env: AGENT_ENV, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-8192); });
    let exited = false;
    child.on('exit', () => { exited = true; });
    child.on('error', (e) => { exited = true; stderr += `cannot start nsenter: ${e.message}`; });
    const deadline = Date.now() + timeoutMs;
    let pid: number | undefined;
    while (pid === undefined) {
      if (existsSync(ready)) pid = descendants(child.pid!).find((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('run-simulator'); } catch { return false; } });
      if (pid !== undefined) break;
      if (exited) throw new Error(`the simulator did not start: ${stderr.trim()}`);
      if (Date.now() > deadline) { try { child.kill('SIGKILL'); } catch { /* gone */ } throw new Error(`the simulator did not come up within ${timeoutMs} ms: ${stderr.trim()}`); }
      await sleep(50);
    }
    this.lateSim = { pid, nsenter: child };
  }

  /** Switches the fabric off again: stops a simulator started by `startSimulator` (SIGTERM, so it writes its final
   *  log; SIGKILL after 3 s). Its log stays readable through `simulator`. No-op when none runs. */
  async stopSimulator(): Promise<void> {
    const late = this.lateSim;
    if (!late) return;
    this.lateSim = undefined;
    const gone = new Promise<void>((r) => { if (late.nsenter.exitCode !== null || late.nsenter.signalCode !== null) r(); else late.nsenter.once('exit', () => r()); });
    try { process.kill(late.pid, 'SIGTERM'); } catch { /* gone */ }
    if (!(await Promise.race([gone.then(() => true), sleep(3000).then(() => false)]))) {
      try { process.kill(late.pid, 'SIGKILL'); } catch { /* gone */ }
      await Promise.race([gone, sleep(3000)]);
    }
  }

  /** Whether a simulator answers in this VM now (booted with one, or started by `startSimulator`). */
  get simulatorRunning(): boolean {
    return !this.destroyed && (this.opts.withSimulator !== false ? this.pid1 !== 0 : this.lateSim !== undefined);
  }

  /** The loop devices this VM attached (DVD first), e.g. for leak checks. */
  get loopDevices(): string[] {
    return [...this.loops];
  }

  /** Host pid of the VM's PID 1 (0 before boot). */
  get pid(): number {
    return this.pid1;
  }

  /** Host path of the VM's merged root while it runs. */
  get rootPath(): string {
    return `/proc/${this.pid1}/root${this.dir}/merged`;
  }

  private get upperPath(): string {
    return this.snapshotDir ?? `/proc/${this.pid1}/root${this.dir}/fs/upper`;
  }

  /** Builds the DVD and the image layer, starts the namespaces and waits for the simulator. */
  async boot(): Promise<void> {
    trackVm(this);
    const o = this.opts;
    mkdirSync(join(this.dir, 'merged'));
    mkdirSync(join(this.dir, 'fs'));
    mkdirSync(join(this.dir, 'sim'));
    mkdirSync(this.imageDir);
    writeFileSync(join(this.dir, 'scenario.json'), JSON.stringify(o.scenario));
    const env: Record<string, string> = {
      ...AGENT_ENV, VM_DIR: this.dir, VM_HOSTNAME: o.initialHostname ?? 'vm-before-provisioning', VM_NODE: NODE,
      VM_BINDS: hiddenHostPaths().join(' '),
    };
    if (o.withSimulator !== false) {
      if (!existsSync(SIM_JS)) throw new Error(`${SIM_JS} missing: compile the tests first (tsc -p .)`);
      env.VM_SIM = SIM_JS;
    }
    if (o.withDvd !== false) {
      const src = join(this.dir, 'dvd');
      mkdirSync(src);
      writeFileSync(join(src, 'ovf-env.xml'), buildOvfEnv(o.scenario));
      const iso = join(this.dir, 'dvd.iso');
      execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-V', 'rd_rdfe_stable', '-J', '-r', '-o', iso, src], { stdio: 'pipe' });
      const loop = execFileSync('losetup', ['-f', '--show', '-r', iso]).toString().trim();
      this.loops.push(loop);
      env.VM_DVD_MAJMIN = execFileSync('stat', ['-c', '%t %T', loop]).toString().trim().split(' ').map((h) => String(parseInt(h, 16))).join(' ');
    }
    if (o.resourceDisk) Object.assign(env, this.attachResourceDisk(o.resourceDisk === true ? {} : o.resourceDisk));
    // The image layer: agent, configuration, DHCP lease, DVD mount helpers, then the test's own additions.
    const bin = agentCommand(o.agentBin);
    if (/\s/.test(bin.trim())) {
      imageWrite(this.imageDir, '/usr/sbin/waagent', `#!/bin/sh\nexec ${bin.trim()} "$@"\n`, 0o755);
    } else {
      if (!existsSync(bin)) throw new Error(`agent executable ${bin} not found: run 'node build.mjs' or set WAAGENT_BIN`);
      imageWrite(this.imageDir, '/usr/sbin/waagent', '', 0o755);
      env.VM_BIN = realpathSync(bin);
      env.VM_BIN_PATH = resolveHostParent('/usr/sbin/waagent');
    }
    imageWrite(this.imageDir, '/etc/waagent.conf', o.waagentConf, 0o644);
    imageWrite(this.imageDir, '/sbin/swapon', SWAP_STANDIN, 0o755);
    imageWrite(this.imageDir, '/sbin/swapoff', SWAP_STANDIN, 0o755);
    if (o.dhcpLease !== false) imageWrite(this.imageDir, '/var/lib/dhcp/dhclient.eth0.leases', leaseFile(), 0o644);
    if (o.dvdHelpers !== false) {
      imageWrite(this.imageDir, '/sbin/mount.udf', MOUNT_HELPER, 0o755);
      imageWrite(this.imageDir, '/sbin/mount.iso9660', MOUNT_HELPER, 0o755);
    }
    await o.extraSetup?.(this.imageDir);
    writeFileSync(join(this.dir, 'setup.sh'), SETUP_SH);

    let stderr = '';
    this.unshare = spawn('unshare', ['--mount', '--uts', '--ipc', '--net', '--pid', '--fork', '--propagation', 'private', 'sh', join(this.dir, 'setup.sh')], {
      env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.unshare.stderr!.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-8192); });
    this.unshare.stdout!.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-8192); });
    let exited = false;
    this.unshare.on('exit', () => { exited = true; });
    const deadline = Date.now() + (o.bootTimeoutMs ?? 20_000);
    const want = o.withSimulator !== false ? join(this.dir, 'sim', 'ready') : join(this.dir, 'setup-done');
    while (!existsSync(want)) {
      if (exited) throw new Error(`VM setup failed: ${stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`VM did not come up within ${o.bootTimeoutMs ?? 20_000} ms: ${stderr.trim()}`);
      await sleep(50);
    }
    const kids = readFileSync(`/proc/${this.unshare.pid}/task/${this.unshare.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    if (kids.length !== 1) throw new Error(`cannot find the VM's PID 1 (children of unshare: ${kids.join(',')})`);
    this.pid1 = Number(kids[0]);
  }

  /**
   * The resource disk's host side: the image (created with an MBR and one type-7 partition when missing), a loop
   * device for the disk and one over the partition's byte range, and the fake vmbus tree (written to `<dir>/sysbus`,
   * copied onto the VM's /sys/bus by setup.sh). Returns the environment setup.sh reads.
   */
  private attachResourceDisk(rd: ResourceDiskOptions): Record<string, string> {
    const env: Record<string, string> = {};
    const majmin = (loop: string): string => execFileSync('stat', ['-c', '%t %T', loop]).toString().trim().split(' ').map((h) => String(parseInt(h, 16))).join(' ');
    const layout = rd.layout ?? 'gen1';
    if (layout !== 'none') {
      const img = rd.image ?? join(this.dir, 'resource.img');
      if (!existsSync(img)) {
        writeFileSync(img, '');
        execFileSync('truncate', ['-s', `${rd.sizeMiB ?? 256}M`, img]);
        execFileSync('sfdisk', ['-q', img], { input: 'label: dos\nstart=2048, type=7\n', stdio: ['pipe', 'ignore', 'pipe'] });
      }
      const table = JSON.parse(execFileSync('sfdisk', ['-J', img]).toString()) as { partitiontable: { partitions: { start: number; size: number }[] } };
      const part = table.partitiontable.partitions[0];
      const disk = execFileSync('losetup', ['-f', '--show', img]).toString().trim();
      this.loops.push(disk);
      env.VM_DISK_MAJMIN = majmin(disk);
      const loop1 = execFileSync('losetup', ['-f', '--show', '-o', String(part.start * 512), '--sizelimit', String(part.size * 512), img]).toString().trim();
      this.loops.push(loop1);
      env.VM_PART_MAJMIN = majmin(loop1);
      if (rd.azureLink) env.VM_AZURE_LINK = '1';
    }
    const bus = join(this.dir, 'sysbus');
    const dev = (id: string, cls: string, blocks: string[]): void => {
      const d = join(bus, 'vmbus', 'devices', id);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'device_id'), `{${id}}\n`);
      writeFileSync(join(d, 'class_id'), `{${cls}}\n`);
      for (const b of blocks) mkdirSync(join(d, b), { recursive: true });
    };
    const IDE = '32412632-86cb-44a2-9b5c-50d1417354f5';
    const SCSI = 'ba6163d9-04a1-4d29-b605-72e2ffb1dc7f';
    if (layout === 'gen2') {
      dev('0a8b3781-1e82-4818-a1c3-63d806ec15bb', SCSI, ['host3/target3:0:0/3:0:0:1/block/sdc']);
      dev('f8b3781a-1e82-4818-a1c3-63d806ec15bb', SCSI, ['host0/target0:0:0/0:0:0:0/block/sda', 'host0/target0:0:0/0:0:0:1/block/sdb']);
    } else {
      dev('00000000-0000-8899-0000-000000000000', IDE, ['host0/target0:0:0/0:0:0:0/block/sda']);
      if (layout === 'gen1') dev('00000000-0001-8899-0000-000000000000', IDE, ['host1/target1:0:1/1:0:1:0/block/sdb']);
    }
    env.VM_SYSBUS = bus;
    return env;
  }

  /** What the swapon/swapoff stand-in saw in this VM: its calls and the swap files it holds "active". */
  swapStandIn(): { calls: string[]; active: { file: string; kb: number }[] } {
    const calls = this.readFile('/run/swap-standin/log')?.toString().split('\n').filter(Boolean) ?? [];
    const active = (this.readFile('/run/swap-standin/swaps')?.toString().split('\n').filter(Boolean) ?? [])
      .map((l) => l.split('\t').filter(Boolean)).map((f) => ({ file: f[0], kb: Number(f[2]) }));
    return { calls, active };
  }

  /** Host pids of the current agent invocation's processes (empty when none runs). */
  agentPids(table = processTable()): number[] {
    const runner = this.runnerPid(table);
    return runner ? descendants(runner, table) : [];
  }

  /** Host pid of the agent-runner of the current invocation (the child of nsenter), or undefined. */
  private runnerPid(table: Map<number, number>): number | undefined {
    if (!this.current) return undefined;
    return descendants(this.current.nsenterPid, table).find((p) => {
      try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('agent-runner'); } catch { return false; }
    });
  }

  /** Sends `signal` to every process of the current agent invocation (by pid), leaves the runner alive. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.current) return;
    const pids = this.agentPids();
    for (const p of pids) { try { process.kill(p, signal); } catch { /* gone */ } }
  }

  /**
   * Runs `argv` (default the agent: `['/usr/sbin/waagent', ...args]` when argv[0] is not absolute) chrooted in the
   * VM, measures it, and ends it as RunOptions says. Only one invocation at a time.
   */
  async run(args: string[], ro: RunOptions): Promise<RunResult> {
    if (this.current) throw new Error('an invocation is already running in this VM');
    const argv = args[0]?.startsWith('/') ? args : ['/usr/sbin/waagent', ...args];
    const resultFile = join(this.dir, `run-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
    const readyBefore = this.simulator.summary()?.readyCount ?? 0;
    const startedAt = Date.now();
    const child = spawn('nsenter', ['-t', String(this.pid1), '-m', '-u', '-i', '-n', '-p', '--', NODE, RUNNER_JS, resultFile, `${this.dir}/merged`, ...argv], {
      env: { ...AGENT_ENV, ...ro.env, VM_DROP_CAPS: JSON.stringify(DROP_CAPS) }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => { stdout = (stdout + c.toString()).slice(-65536); });
    child.stderr!.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-65536); });
    // 'close' comes after the output pipes ended; a background child of the agent (a handler, CustomData) may hold
    // them, so the run also ends 2 s after 'exit'.
    const done = new Promise<void>((r) => {
      child.on('close', () => r());
      child.on('exit', () => { setTimeout(r, 2000).unref(); });
      child.on('error', (e) => { stderr += `\nvm: cannot start nsenter: ${e.message}`; r(); });
    });
    this.current = { runner: child, nsenterPid: child.pid! };
    let reason: RunResult['reason'] = 'exit';
    let peak = 0;
    let peakAgent = 0; let peakAnon = 0; let peakFile = 0; let peakHwm = 0;
    let idleStart: { t: number; cpu: number; rss: number } | undefined;
    let idle: RunResult['idle'];
    let readyAt: number | undefined;
    let stopAt: number | undefined;
    let exited = false;
    void done.then(() => { exited = true; });
    const seen = new Set<number>();
    const seenAgent = new Set<number>();
    try {
      while (!exited) {
        const pids = this.agentPids();
        for (const p of pids) { if (!seen.has(p)) { seen.add(p); if (isAgent(p)) seenAgent.add(p); } }
        let sum = 0;
        let sumAgent = 0; let anon = 0; let file = 0; let hwm = 0;
        for (const p of pids) {
          const r = rssKb(p);
          sum += r;
          if (isAgent(p)) {
            sumAgent += r;
            const m = memKb(p); anon += m.anon; file += m.file; hwm += m.hwm;
          }
        }
        peakAnon = Math.max(peakAnon, anon); peakFile = Math.max(peakFile, file); peakHwm = Math.max(peakHwm, hwm);
        peak = Math.max(peak, sum);
        peakAgent = Math.max(peakAgent, sumAgent);
        const now = Date.now();
        if (readyAt === undefined) {
          const s = this.simulator.summary();
          if (s && s.readyCount > readyBefore) {
            readyAt = s.healthReports.filter((h) => h.state === 'Ready')[readyBefore]?.at ?? s.readyAt;
            if (ro.until === 'ready') stopAt = now + (ro.graceMs ?? 2000);
          }
        }
        if (readyAt !== undefined && idleStart === undefined && now >= readyAt + 2000) {
          const ap = pids.filter(isAgent);
          idleStart = { t: now, cpu: ap.reduce((a, p) => a + cpuMsOf(p), 0), rss: ap.reduce((a, p) => a + rssKb(p), 0) };
        }
        if (stopAt !== undefined && now >= stopAt && reason === 'exit') {
          if (idleStart) {
            const ap = pids.filter(isAgent);
            const end = ap.map(memKb);
            idle = {
              ms: now - idleStart.t, cpuMs: ap.reduce((a, p) => a + cpuMsOf(p), 0) - idleStart.cpu, rssStartKb: idleStart.rss, rssEndKb: ap.reduce((a, p) => a + rssKb(p), 0),
              anonEndKb: end.reduce((a, m) => a + m.anon, 0), fileEndKb: end.reduce((a, m) => a + m.file, 0),
            };
          }
          reason = 'ready'; await this.stopAgent(done);
        }
        if (ro.killWhen && reason === 'exit') {
          const s = this.simulator.summary();
          if (s && ro.killWhen(s)) { reason = 'killed'; this.kill(ro.killSignal ?? 'SIGKILL'); }
        }
        if (ro.killAfterMs !== undefined && now - startedAt >= ro.killAfterMs && reason === 'exit') {
          reason = 'killed';
          this.kill(ro.killSignal ?? 'SIGKILL');
        }
        if (now - startedAt >= ro.timeoutMs && (reason === 'exit' || reason === 'killed')) { reason = 'timeout'; await this.stopAgent(done); }
        await Promise.race([done, sleep(50)]);
      }
    } finally {
      this.current = undefined;
    }
    // The agent's start: when the runner spawned it (the runner's own Node start-up is not the agent's time).
    let agentStartedAt = startedAt;
    try { agentStartedAt = Number(readFileSync(`${resultFile}.started`, 'utf8')) || startedAt; } catch { /* runner never got there */ }
    let res: { code: number | null; signal: string | null; cpuMs: number } = { code: null, signal: null, cpuMs: 0 };
    try { res = JSON.parse(readFileSync(resultFile, 'utf8')); } catch { /* runner killed */ }
    if (readyAt === undefined) {
      const s = this.simulator.summary();
      if (s && s.readyCount > readyBefore) readyAt = s.healthReports.filter((h) => h.state === 'Ready')[readyBefore]?.at;
    }
    return {
      argv, exitCode: res.code, signal: res.signal, reason, startedAt, agentStartedAt, endedAt: Date.now(), readyAt,
      timeToReadyMs: readyAt !== undefined ? readyAt - agentStartedAt : undefined, cpuMs: res.cpuMs,
      peakRssKb: peak, peakAgentRssKb: Math.max(peakAgent, peakHwm), peakAgentAnonKb: peakAnon, peakAgentFileKb: peakFile, agentHwmKb: peakHwm, idle, stdout, stderr,
      processesSeen: seen.size, agentProcessesSeen: seenAgent.size,
    };
  }

  /** SIGTERM to the agent's processes, SIGKILL after 3 s, then wait for the runner. */
  private async stopAgent(done: Promise<void>): Promise<void> {
    this.kill('SIGTERM');
    const t = await Promise.race([done.then(() => true), sleep(3000).then(() => false)]);
    if (!t) {
      this.kill('SIGKILL');
      await Promise.race([done, sleep(3000)]);
    }
  }

  /**
   * Runs a command chrooted in the VM and returns its exit code and output (no measurement). Resolves once the
   * command exited and its output pipes closed ('close', not 'exit': Node may emit 'exit' before the pipes delivered
   * their data); a command that leaves a background child holding the pipes resolves `closeGraceMs` after its exit
   * with what it printed. Rejects — never returns empty output — when the command could not run in the VM: the VM is
   * not running, nsenter or chroot failed, or the program is missing.
   */
  exec(argv: string[], input?: string, closeGraceMs = 5000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    if (!this.pid1 || this.destroyed || !existsSync(`/proc/${this.pid1}`)) {
      return Promise.reject(new Error(`vm.exec(${JSON.stringify(argv)}): the VM is not running`));
    }
    return new Promise((resolve, reject) => {
      const c = spawn('nsenter', ['-t', String(this.pid1), '-m', '-u', '-i', '-n', '-p', '--', ...DROP_CAPS, 'chroot', `${this.dir}/merged`, ...argv], {
        env: AGENT_ENV, stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      let settled = false;
      let exitCode: number | null = null;
      let graceTimer: NodeJS.Timeout | undefined;
      c.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
      c.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      const finish = (): void => {
        if (settled) return;
        settled = true;
        if (graceTimer) clearTimeout(graceTimer);
        // nsenter/setpriv/chroot report their own failures with their name first (chroot: 125 cannot chroot, 126
        // not executable, 127 not found); the command's own output never starts that way.
        const own = /^(nsenter|setpriv|chroot): /m.exec(stderr);
        if (own && (exitCode === 1 || exitCode === 125 || exitCode === 126 || exitCode === 127)) {
          reject(new Error(`vm.exec(${JSON.stringify(argv)}) could not run (exit ${exitCode}): ${stderr.trim()}`));
        } else {
          resolve({ code: exitCode, stdout, stderr });
        }
      };
      c.on('error', (e) => { if (!settled) { settled = true; reject(new Error(`vm.exec: cannot start nsenter: ${e.message}`)); } });
      c.on('exit', (code) => {
        exitCode = code;
        graceTimer = setTimeout(finish, closeGraceMs);
      });
      c.on('close', (code) => { exitCode = code; finish(); });
      c.stdin!.on('error', () => { /* the command did not read its input */ });
      c.stdin!.end(input ?? '');
    });
  }

  /** Path of `p` in the merged view while the VM runs; after destroy, the snapshot of the upper layer, then the
   *  image layer, then the host's file (what the lower layer showed). Whiteouts read as missing. */
  private locate(p: string): string | undefined {
    if (!this.snapshotDir && this.pid1 && !this.destroyed) return join(this.rootPath, p);
    for (const base of [this.upperPath, this.imageDir, '/']) {
      const q = join(base, p);
      try {
        const st = lstatSync(q);
        if (st.isCharacterDevice() && st.rdev === 0) return undefined;
        return q;
      } catch { /* next layer */ }
    }
    return undefined;
  }

  /** Reads a file as the VM sees it; undefined when missing. */
  readFile(p: string): Buffer | undefined {
    const q = this.locate(p);
    if (!q) return undefined;
    try { return readFileSync(q); } catch { return undefined; }
  }

  /** Writes a file into the running VM (as if something on the machine wrote it, e.g. the DHCP client); it becomes
   *  part of the upper layer. Parent directories are created. */
  writeFile(p: string, data: string | Buffer, mode = 0o644): void {
    if (!this.pid1 || this.destroyed) throw new Error('VM is not running');
    // Symlinks are followed the way the VM sees them: an absolute target written from the host through
    // /proc/<pid>/root would otherwise land on the HOST's file (e.g. /usr/sbin/iptables → /etc/alternatives/…).
    const q = join(this.rootPath, this.resolveInVm(p));
    mkdirSync(dirname(q), { recursive: true });
    writeFileSync(q, data);
    chmodSync(q, mode);
  }

  /** `p` with every symlink resolved inside the VM's root (absolute targets relative to it), like a chrooted
   *  realpath; missing components are kept as they are. */
  resolveInVm(p: string): string {
    const root = this.rootPath;
    const todo = p.split('/').filter(Boolean);
    const done: string[] = [];
    for (let hops = 0; todo.length; ) {
      const part = todo.shift()!;
      if (part === '.') continue;
      if (part === '..') { done.pop(); continue; }
      const cur = join(root, ...done, part);
      let st;
      try { st = lstatSync(cur); } catch { done.push(part, ...todo); break; }
      if (!st.isSymbolicLink()) { done.push(part); continue; }
      if (++hops > 40) throw new Error(`too many symlinks in ${p}`);
      const target = readlinkSync(cur);
      if (target.startsWith('/')) done.length = 0;
      todo.unshift(...target.split('/').filter(Boolean));
    }
    return `/${done.join('/')}`;
  }

  /** Re-creates the DHCP lease with option 245 (deprovisioning deletes leases; a real DHCP client writes it again). */
  restoreLease(): void {
    this.writeFile('/var/lib/dhcp/dhclient.eth0.leases', leaseFile());
  }

  /**
   * Starts a real DHCP server (Debian's dnsmasq) on the far side of the VM's `eth0`: `vm-peer0` moves into a network
   * namespace of its own (created inside the VM, so it dies with it) with 192.0.2.1/24, and dnsmasq answers `eth0`'s
   * MAC with 192.0.2.4 and the given options (sent whether asked for or not). Resolves once dnsmasq runs.
   */
  async startDhcpServer(o: DhcpServerOptions = {}): Promise<DhcpServerHandle> {
    const mac = (await this.exec(['cat', '/sys/class/net/eth0/address'])).stdout.trim();
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) throw new Error(`startDhcpServer: no MAC for eth0 (${mac})`);
    const holder = await this.exec(['sh', '-c', 'unshare --net sleep 2147483647 </dev/null >/dev/null 2>&1 & echo $!']);
    const nsPid = Number(holder.stdout.trim());
    if (!nsPid) throw new Error(`startDhcpServer: cannot create the server's namespace: ${holder.stderr}`);
    for (let i = 0; i < 40; i++) {
      const r = await this.exec(['readlink', `/proc/${nsPid}/ns/net`]);
      const mine = await this.exec(['readlink', '/proc/self/ns/net']);
      if (r.stdout.trim() && r.stdout.trim() !== mine.stdout.trim()) break;
      await sleep(50);
    }
    const mv = await this.exec(['ip', 'link', 'set', 'vm-peer0', 'netns', String(nsPid)]);
    if (mv.code !== 0) throw new Error(`startDhcpServer: cannot move vm-peer0: ${mv.stderr}`);
    const args = ['dnsmasq', '--port=0', '--interface=vm-peer0', '--bind-interfaces', '--user=root', '--group=root',
      '--dhcp-range=192.0.2.4,192.0.2.20,255.255.255.0,12h', `--dhcp-host=${mac},192.0.2.4`, '--dhcp-authoritative',
      '--dhcp-leasefile=/run/dnsmasq.leases', '--pid-file=/run/dnsmasq.pid', '--log-dhcp', '--log-facility=/run/dnsmasq.log'];
    if (o.router) args.push(`--dhcp-option=3,${o.router}`); else args.push('--dhcp-option=3');
    if (o.option245) args.push(`--dhcp-option-force=245,${o.option245}`);
    if (o.option249) args.push(`--dhcp-option-force=249,${o.option249.map((b) => b.toString(16).padStart(2, '0')).join(':')}`);
    const up = await this.exec(['nsenter', '-t', String(nsPid), '-n', '--', 'sh', '-c',
      'ip link set lo up && ip addr add 192.0.2.1/24 dev vm-peer0 && ip link set vm-peer0 up && exec "$@"', 'dhcp-server', ...args]);
    if (up.code !== 0) throw new Error(`startDhcpServer: dnsmasq did not start (exit ${up.code}): ${up.stderr}`);
    return { nsPid, log: () => this.readFile('/run/dnsmasq.log')?.toString('utf8') ?? '' };
  }

  /** lstat-like facts about a VM path (mode, uid, gid, type), or undefined. */
  stat(p: string): { mode: number; uid: number; gid: number; isDir: boolean; isFile: boolean; isSymlink: boolean } | undefined {
    const q = this.locate(p);
    if (!q) return undefined;
    try {
      const s = lstatSync(q);
      return { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, isDir: s.isDirectory(), isFile: s.isFile(), isSymlink: s.isSymbolicLink() };
    } catch { return undefined; }
  }

  /** Everything the VM changed relative to image + host: the upper layer, with directories listed only when new. */
  changedPaths(): Change[] {
    const out: Change[] = [];
    const upper = this.upperPath;
    const lowerHas = (p: string): boolean => [this.imageDir, '/'].some((b) => { try { lstatSync(join(b, p)); return true; } catch { return false; } });
    const walk = (rel: string): void => {
      let entries: string[];
      try { entries = readdirSync(join(upper, rel)); } catch { return; }
      for (const e of entries.sort()) {
        const p = `${rel}/${e}`;
        const st = lstatSync(join(upper, p));
        if (st.isCharacterDevice() && st.rdev === 0) { out.push({ path: p, kind: 'deleted', type: 'other' }); continue; }
        const type: Change['type'] = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
        const existed = lowerHas(p);
        if (type !== 'dir' || !existed) out.push({ path: p, kind: existed ? 'modified' : 'created', type });
        if (type === 'dir') walk(p);
      }
    };
    walk('');
    return out;
  }

  /** Copies the upper layer to the host so readFile/changedPaths work after destroy. */
  snapshot(): void {
    if (this.snapshotDir || !this.pid1) return;
    const dst = join(this.dir, 'upper-snapshot');
    execFileSync('cp', ['-a', this.upperPath, dst]);
    this.snapshotDir = dst;
  }

  /** Stops everything (agent, simulator, PID 1), detaches the loop devices; keeps a snapshot of the upper layer in
   *  `dir` unless `removeFiles` (then the temp directory goes too). Safe to call twice. */
  async destroy(opts: { removeFiles?: boolean } = {}): Promise<void> {
    if (this.destroyed) { if (opts.removeFiles) rmSync(this.dir, { recursive: true, force: true }); return; }
    try {
      if (this.current) this.kill('SIGKILL');
      if (this.pid1 && !opts.removeFiles) { try { this.snapshot(); } catch { /* best effort */ } }
      if (this.lateSim) { try { await this.stopSimulator(); } catch { /* best effort */ } }
      if (this.pid1 && this.opts.withSimulator !== false) {
        try { process.kill(this.pid1, 'SIGTERM'); } catch { /* gone */ }
        for (let i = 0; i < 40 && existsSync(`/proc/${this.pid1}`); i++) await sleep(50);
      }
    } finally {
      this.destroySync();
      if (this.unshare && this.unshare.exitCode === null) await new Promise((r) => { this.unshare!.once('exit', r); setTimeout(r, 3000); });
      if (opts.removeFiles) rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** Synchronous teardown for exit handlers: SIGKILL to PID 1 (ends the whole PID namespace and with it the mount
   *  namespace), then detach our loop devices by name. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    untrackVm(this);
    if (!this.pid1 && this.unshare?.pid) {
      try {
        const kids = readFileSync(`/proc/${this.unshare.pid}/task/${this.unshare.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
        if (kids.length === 1) this.pid1 = Number(kids[0]);
      } catch { /* unshare gone: its child went with it or never started */ }
    }
    if (this.pid1) { try { process.kill(this.pid1, 'SIGKILL'); } catch { /* gone */ } }
    if (this.unshare?.pid) { try { process.kill(this.unshare.pid, 'SIGKILL'); } catch { /* gone */ } }
    detachLoopsAfter(this.pid1, this.loops);
    this.loops = [];
  }
}

/** Waits (bounded, 3 s) for the VM's PID 1 to disappear, so that the loop devices are no longer held open, then
 *  detaches them (by id). Used by every bed's teardown. */
export function detachLoopsAfter(pid1: number, loops: readonly string[]): void {
  const until = Date.now() + 3000;
  while (pid1 && existsSync(`/proc/${pid1}`) && Date.now() < until) execFileSync('sleep', ['0.05']);
  for (const loop of loops) {
    try { execFileSync('losetup', ['-d', loop], { stdio: 'ignore' }); } catch { /* already gone */ }
  }
}

/** Creates and boots a VM. The caller must `destroy()` it. */
export async function createVm(opts: VmOptions): Promise<Vm> {
  const vm = new Vm(opts);
  try {
    await vm.boot();
  } catch (e) {
    await vm.destroy({ removeFiles: true });
    throw e;
  }
  return vm;
}

export interface VmResult {
  run: RunResult;
  summary: Summary | undefined;
  requests: Recorded[];
  changed: Change[];
  agentLog: string;
  /** The VM (destroyed; readFile/changedPaths read its snapshot). Call `vm.destroy({ removeFiles: true })` when done. */
  vm: Vm;
}

/** Boots a VM, runs the agent once (default `-daemon` until Ready + grace), collects the results and tears the VM
 *  down, keeping a snapshot of what changed. */
export async function bootVm(opts: VmOptions & { agentArgs?: string[]; timeoutMs: number; graceMs?: number }): Promise<VmResult> {
  const vm = await createVm(opts);
  try {
    const args = opts.agentArgs ?? ['-daemon'];
    const run = await vm.run(args, { timeoutMs: opts.timeoutMs, until: args.includes('-daemon') ? 'ready' : 'exit', graceMs: opts.graceMs });
    await vm.destroy();
    return {
      run, summary: vm.simulator.summary(), requests: vm.simulator.requests(), changed: vm.changedPaths(),
      agentLog: vm.readFile('/var/log/waagent.log')?.toString('utf8') ?? '', vm,
    };
  } catch (e) {
    await vm.destroy({ removeFiles: true });
    throw e;
  }
}

/** A waagent.conf for the VM tests: built-in provisioning, host keys regenerated, no resource disk, verbose logs. */
export function defaultWaagentConf(extra: Record<string, string> = {}): string {
  const conf: Record<string, string> = {
    'Provisioning.Enabled': 'y',
    'Provisioning.UseCloudInit': 'n',
    'Provisioning.DeleteRootPassword': 'n',
    'Provisioning.RegenerateSshHostKeyPair': 'y',
    'Provisioning.SshHostKeyPairType': 'rsa',
    'Provisioning.MonitorHostName': 'n',
    'Provisioning.DecodeCustomData': 'n',
    'Provisioning.ExecuteCustomData': 'n',
    'Provisioning.PasswordCryptId': '6',
    'Provisioning.PasswordCryptSaltLength': '10',
    'ResourceDisk.Format': 'n',
    'ResourceDisk.EnableSwap': 'n',
    'Logs.Verbose': 'y',
    'Logs.Console': 'n',
    'OS.EnableFirewall': 'n',
    'OS.RootDeviceScsiTimeout': 'None',
    'OS.SshDir': '/etc/ssh',
    'LBProbeResponder': 'n',
    'AutoUpdate.Enabled': 'n',
    'Extensions.GoalStatePeriod': '2',
    ...extra,
  };
  return Object.entries(conf).map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
}
