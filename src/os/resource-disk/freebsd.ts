/**
 * The resource disk on FreeBSD (provisioning-and-os.md §5.9): ufs only; the disk found through `sysctl dev.storvsc`
 * and `camcontrol` (IDE port 1), else `camcontrol periphlist`; partition `s1` (MBR) or `p2` (GPT) checked with gpart;
 * `mount -t ufs`, `newfs -U` only when that mount fails; the swap file attached with `mdconfig` and switched on
 * directly or, with `ResourceDisk.EnableSwapEncryption`, through `geli onetime`. Every command is an argv array.
 */
import type { LinuxOS } from '../linux';
import type { ExecResult } from '../../core/exec';
import { log } from '../../core/log';
import { findMount, type MountedAt, type ResourceDiskPlatform, type ResourceDiskSettings } from './platform';

const out = (r: ExecResult): string => (r.stdout + r.stderr).trim() || r.spawnError || `exit code ${r.code}`;

/** `gpart list` → geom name → scheme (MBR/GPT). */
export function parseGpartList(text: string): Map<string, string> {
  const m = new Map<string, string>();
  let geom: string | undefined;
  for (const line of text.split('\n')) {
    const g = /^Geom name:\s*(\S+)/.exec(line.trim());
    if (g) { geom = g[1]; continue; }
    const s = /^scheme:\s*(\S+)/.exec(line.trim());
    if (s && geom) { m.set(geom, s[1].toUpperCase()); geom = undefined; }
  }
  return m;
}

export class FreeBSDResourceDisk implements ResourceDiskPlatform {
  readonly swapKind = 'file' as const;
  private schemes = new Map<string, string>();
  constructor(private readonly os: LinuxOS) {}

  checkFilesystem(fsType: string): string {
    if (fsType !== 'ufs') throw new Error(`Unsupported filesystem type:${fsType}, only ufs is supported.`);
    return 'ufs';
  }

  async findDisk(): Promise<string | undefined> {
    this.schemes = parseGpartList((await this.os.runOk(['gpart', 'list'], undefined, 'gpart list')).stdout);
    let disk = await this.diskForIdePort1();
    if (!disk || !this.schemes.has(disk)) {
      disk = undefined;
      for (const addr of ['2:1:0', '3:1:0']) {
        const r = await this.os.run(['camcontrol', 'periphlist', addr]);
        if (r.code !== 0) continue;
        for (const line of r.stdout.split('\n')) {
          const m = /^(\w+):/.exec(line.trim());
          if (m && this.schemes.has(m[1])) { disk = m[1]; break; }
        }
        if (disk) break;
      }
    }
    return disk ? `/dev/${disk}` : undefined;
  }

  /** §5.9 step 3: storvsc unit of device id 00000000-0001-…, its scbus, and that bus's non-`pass` peripheral. */
  private async diskForIdePort1(): Promise<string | undefined> {
    const sys = await this.os.run(['sysctl', 'dev.storvsc']);
    if (sys.code !== 0) return undefined;
    let unit: string | undefined;
    for (const line of sys.stdout.split('\n')) {
      if (!/pnpinfo/.test(line) || !/deviceid=00000000-0001-/i.test(line)) continue;
      unit = line.split(':')[0].split('.')[2];
      break;
    }
    if (unit === undefined || !/^\d+$/.test(unit)) return undefined;
    const buses = await this.os.run(['camcontrol', 'devlist', '-b']);
    if (buses.code !== 0) return undefined;
    const busOf = (drv: string): string | undefined => buses.stdout.split('\n').map((l) => l.trim().split(/\s+/))
      .find((f) => f.includes(`${drv}${unit}`))?.[0];
    const bus = busOf('blkvsc') ?? busOf('storvsc');
    if (!bus) return undefined;
    const list = await this.os.run(['camcontrol', 'devlist']);
    if (list.code !== 0) return undefined;
    for (const line of list.stdout.split('\n')) {
      if (!new RegExp(`\\b${bus}\\b`).test(line)) continue;
      const m = /\(([^)]*)\)\s*$/.exec(line.trim());
      const dev = m?.[1].split(',').map((x) => x.trim()).find((x) => x && !x.startsWith('pass'));
      if (dev) return dev;
    }
    return undefined;
  }

  private partitionOf(disk: string): string {
    const name = disk.replace(/^\/dev\//, '');
    return `${disk}${this.schemes.get(name) === 'GPT' ? 'p2' : 's1'}`;
  }

  async mountedAt(disk: string): Promise<MountedAt | undefined> {
    const r = await this.os.run(['mount']);
    if (r.code !== 0) throw new Error(`Cannot list mounts: ${out(r)}`);
    return findMount(r.stdout, disk, /^(s\d+[a-h]?|p\d+)?$/);
  }

  async mount(disk: string, s: ResourceDiskSettings): Promise<string> {
    const part = this.partitionOf(disk);
    const name = disk.replace(/^\/dev\//, '');
    const show = await this.os.run(['gpart', 'show', '-p', name]);
    if (show.code !== 0 || !show.stdout.includes(part.replace(/^\/dev\//, ''))) throw new Error('Resource disk partition not found.');
    this.os.fs.mkdir(s.mountPoint, 0o755);
    this.os.fs.chmod(s.mountPoint, 0o755);
    const argv = ['mount', '-t', 'ufs', ...(s.mountOptions ? ['-o', s.mountOptions] : []), part, s.mountPoint];
    let r = await this.os.run(argv);
    if (r.code !== 0) {
      log.info(`Mounting ${part} failed (${out(r)}): creating a ufs file system on it`);
      await this.os.runOk(['newfs', '-U', part], { timeoutMs: 30 * 60 * 1000 }, `newfs ${part}`);
      r = await this.os.run(argv);
      if (r.code !== 0) throw new Error(`Could not mount ${part}: [${r.code}] ${out(r)}`);
    }
    return part;
  }

  /** The md unit (e.g. `md0`) backing `file`, from `mdconfig -l -v`. */
  private async mdOf(file: string): Promise<string | undefined> {
    const r = await this.os.run(['mdconfig', '-l', '-v']);
    if (r.code !== 0) return undefined;
    for (const line of r.stdout.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 4 && f[1] === 'vnode' && f[f.length - 1] === file) return f[0];
    }
    return undefined;
  }

  async swapActive(file: string): Promise<boolean> {
    const md = await this.mdOf(file);
    if (!md) return false;
    const r = await this.os.run(['swapctl', '-l']);
    return r.code === 0 && r.stdout.split('\n').some((l) => { const d = l.trim().split(/\s+/)[0]; return d === `/dev/${md}` || d === `/dev/${md}.eli`; });
  }

  async swapOff(file: string): Promise<void> {
    const md = await this.mdOf(file);
    if (!md) return;
    const l = await this.os.run(['swapctl', '-l']);
    for (const dev of [`/dev/${md}.eli`, `/dev/${md}`]) {
      if (l.stdout.split('\n').some((x) => x.trim().split(/\s+/)[0] === dev)) await this.os.runOk(['swapoff', dev], undefined, `swapoff ${dev}`);
    }
    await this.os.runOk(['mdconfig', '-d', '-u', md.replace(/^md/, '')], undefined, `mdconfig -d ${md}`);
  }

  async preallocate(): Promise<boolean> { return false; }

  async activateSwap(file: string, encrypt: boolean): Promise<void> {
    const md = (await this.os.runOk(['mdconfig', '-a', '-t', 'vnode', '-f', file], undefined, `mdconfig ${file}`)).stdout.trim();
    if (!/^md\d+$/.test(md)) throw new Error(`mdconfig printed no md unit for ${file}: ${md}`);
    await this.os.runOk(['chmod', '0600', `/dev/${md}`]);
    let dev = `/dev/${md}`;
    if (encrypt) {
      for (const mod of ['aesni', 'cryptodev', 'geom_eli']) {
        const k = await this.os.run(['kldload', mod]);
        if (k.code !== 0) log.verbose(`kldload ${mod}: ${out(k)}`); // already loaded or built in
      }
      await this.os.runOk(['geli', 'onetime', '-e', 'AES-XTS', '-l', '256', '-d', dev], undefined, `geli onetime ${dev}`);
      dev = `${dev}.eli`;
      await this.os.runOk(['chmod', '0600', dev]);
    }
    const r = await this.os.run(['swapon', dev]);
    if (r.code !== 0) throw new Error(`Failed to enable swap file ${file} (${dev}): ${out(r)}`);
  }
}
