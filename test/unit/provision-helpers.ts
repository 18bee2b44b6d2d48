/** Test fixtures for the provisioning tests: a temp-dir root with a small Linux tree and a recording runner that
 *  simulates useradd/chpasswd/ssh-keygen on that tree (no real system change, no root needed). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SysRoot } from '../../src/core/sysroot';
import { recordingRunner, type ExecOptions, type ExecResult } from '../../src/core/exec';
import { Config } from '../../src/config/config';
import { log } from '../../src/core/log';
import { createOs } from '../../src/os/factory';
import type { AgentContext } from '../../src/context';
import type { DistroInfo } from '../../src/os/detect';
import type { FabricLink, HealthReport, GoalStateIds } from '../../src/fabric/types';

export const TEST_UID = process.getuid?.() === 0 ? 1000 : (process.getuid?.() ?? 1000);
export const TEST_GID = process.getgid?.() === 0 ? 1000 : (process.getgid?.() ?? 1000);

export const SSHD_CONFIG = `Include /etc/ssh/sshd_config.d/*.conf
#PasswordAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM yes
Subsystem sftp /usr/lib/openssh/sftp-server
`;

export interface TestBed {
  dir: string;
  ctx: AgentContext;
  run: ReturnType<typeof recordingRunner>;
  p(abs: string): string;
  read(abs: string): string;
  mode(abs: string): number;
  cleanup(): void;
}

export type Handler = (argv: string[], opts: ExecOptions, bed: TestBed) => Partial<ExecResult> | undefined;

export function makeBed(conf: Record<string, string> = {}, handler?: Handler, distro?: Partial<DistroInfo>): TestBed {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-prov-'));
  const root = new SysRoot(dir);
  const w = (abs: string, data: string, mode = 0o644) => {
    fs.mkdirSync(path.dirname(root.path(abs)), { recursive: true });
    fs.writeFileSync(root.path(abs), data, { mode });
  };
  w('/etc/passwd', 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nsshd:x:105:65534::/run/sshd:/usr/sbin/nologin\n');
  w('/etc/shadow', 'root:$6$old$oldhash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n', 0o640);
  w('/etc/login.defs', '# defs\nUID_MIN\t\t\t 1000\nUID_MAX 60000\n');
  w('/etc/hostname', 'oldname\n');
  w('/etc/ssh/sshd_config', SSHD_CONFIG);
  fs.mkdirSync(root.path('/etc/ssh/sshd_config.d'), { recursive: true });
  w('/etc/ssh/ssh_host_rsa_key.pub', 'ssh-rsa AAAAB3NzaC1yc2E root@old\n');
  w('/etc/sudoers', 'root ALL=(ALL) ALL\n', 0o440);
  fs.mkdirSync(root.path('/etc/sudoers.d'), { recursive: true });
  fs.mkdirSync(root.path('/home'), { recursive: true });
  fs.mkdirSync(root.path('/var/lib/waagent'), { recursive: true, mode: 0o700 });
  const config = new Config('(test)', conf);
  const bed = {} as TestBed;
  const run = recordingRunner((argv, opts) => {
    const custom = handler?.(argv, opts, bed);
    if (custom) return custom;
    return simulate(argv, opts, bed);
  });
  const d: DistroInfo = { id: 'debian', like: [], version: '12', codename: 'bookworm', fullName: 'Debian GNU/Linux 12', name: 'debian', ...distro };
  const osObj = createOs(d, root, run, config);
  osObj.retryDelayMs = 0;
  const ctx: AgentContext = { conf: config, os: osObj, log, libDir: '/var/lib/waagent' };
  Object.assign(bed, {
    dir, ctx, run,
    p: (abs: string) => root.path(abs),
    read: (abs: string) => fs.readFileSync(root.path(abs), 'utf8'),
    mode: (abs: string) => fs.statSync(root.path(abs)).mode & 0o7777,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  });
  return bed;
}

/** Default behaviour of the simulated system commands. */
function simulate(argv: string[], opts: ExecOptions, bed: TestBed): Partial<ExecResult> | undefined {
  const [cmd] = argv;
  if (cmd === 'useradd') {
    const name = argv[argv.length - 1];
    fs.appendFileSync(bed.p('/etc/passwd'), `${name}:x:${TEST_UID}:${TEST_GID}::/home/${name}:/bin/bash\n`);
    fs.appendFileSync(bed.p('/etc/shadow'), `${name}:!:19000:0:99999:7:::\n`);
    fs.mkdirSync(bed.p(`/home/${name}`), { recursive: true, mode: 0o750 });
    return { code: 0 };
  }
  if (cmd === 'chpasswd') {
    const [user, hash] = String(opts.input).trim().split(/:(.*)/s);
    const shadow = bed.read('/etc/shadow').split('\n').map((l) => (l.startsWith(`${user}:`) ? [user, hash, ...l.split(':').slice(2)].join(':') : l));
    fs.writeFileSync(bed.p('/etc/shadow'), shadow.join('\n'));
    return { code: 0 };
  }
  if (cmd === 'ssh-keygen' && argv[1] === '-lf') return { code: 0, stdout: '3072 SHA256:AbCdEf12+/xyz root@host (RSA)\n' };
  if (cmd === 'systemctl' && (argv[1] === 'is-active' || argv[1] === 'is-enabled')) return { code: 3, stdout: 'inactive\n' };
  if (cmd === 'pidof') return { code: 1 };
  if (cmd === 'service') return { code: 1 };
  return undefined;
}

/** A FabricLink that records reports; `connected()` resolves when `connect()` is called. */
export function fakeFabric(connected = true): FabricLink & { reports: HealthReport[]; roleProps: string[]; connect(): void } {
  const ids: GoalStateIds = { incarnation: '1', containerId: 'c', instanceId: 'i', configName: 'cfg' };
  let resolve!: (v: GoalStateIds) => void;
  const p = new Promise<GoalStateIds>((r) => { resolve = r; });
  const f = {
    reports: [] as HealthReport[], roleProps: [] as string[], isConnected: connected,
    connected: () => p,
    connect() { f.isConnected = true; resolve(ids); },
    reportHealth(r: HealthReport) { f.reports.push(r); },
    healthAccepted: async () => undefined,
    reportRoleProperties(t: string) { f.roleProps.push(t); },
    close() { /* nothing */ },
  };
  if (connected) resolve(ids);
  return f;
}
