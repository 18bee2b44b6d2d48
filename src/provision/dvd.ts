/**
 * Obtaining ovf-env.xml (provisioning-and-os.md §3.4): find the provisioning DVD, read `ovf-env.xml` from it —
 * straight from the block device with the UDF/ISO9660 readers first (no kernel module needed, no race with an
 * eject), else by mounting it — save a copy with the password redacted as `<Lib.Dir>/ovf-env.xml` (0600), and hand
 * back an `eject()` to be called only after the provisioned marker has been written (FIX #1456).
 */
import * as path from 'node:path';
import type { AgentContext } from '../context';
import { decodeText, readFileCapped } from '../core/files';
import { errorText } from '../core/log';
import { redactOvf } from './ovf';
import { MediaError, MAX_FILE_BYTES, openBoundedReader, isIso9660, readIsoFile } from './iso9660';
import { isUdf, readUdfFile } from './udf';

export interface AcquiredOvf {
  /** The document as read (BOM, NULs and leading junk removed); holds the clear-text password. */
  xmlText: string;
  /** Where it came from, e.g. `/dev/sr0 (direct read)` or `/dev/sr0 mounted at /mnt/cdrom/secure`. */
  source: string;
  /** Ejects the medium (call after the provisioned marker is written); failures are logged as warnings only. */
  eject(): Promise<void>;
}

export interface DvdDeps {
  /** Sleep between mount passes (tests inject a no-op). */
  sleep?: (ms: number) => Promise<void>;
  /** Direct block-device reads (default on; tests of the mount path turn it off). */
  directRead?: boolean;
}

const OVF_NAME = 'ovf-env.xml';
const DEVICE_RE = /^(sr[0-9]|hd[c-z]|cdrom[0-9]|cd[0-9]|vd[b-z])/;
/** Checked in this order, so `cdrom` wins over `cd`; the sort order is sr, cdrom, cd, hd, vd. */
const GROUP_ORDER = ['sr', 'cdrom', 'cd', 'hd', 'vd'];

type Platform = 'linux' | 'freebsd' | 'openbsd';
function platformOf(ctx: AgentContext): Platform {
  const id = ctx.os.distro.id;
  return id === 'freebsd' ? 'freebsd' : id === 'openbsd' ? 'openbsd' : 'linux';
}

/** Sorts scan matches: `sr*`, `cdrom*`, `cd*`, `hd*`, `vd*`, each in natural (numeric) order. */
export function sortDeviceNames(names: string[]): string[] {
  const group = (n: string) => { const g = GROUP_ORDER.findIndex((pre) => n.startsWith(pre)); return g < 0 ? 99 : g; };
  return [...new Set(names)].sort((a, b) => group(a) - group(b) || a.localeCompare(b, 'en', { numeric: true }));
}

/**
 * Device candidates in the order they are tried (§3.4 NEW): `/dev/sr0`, then devices blkid reports as udf or
 * iso9660, then the sorted name scan of /dev (`sr[0-9]`, `cdrom[0-9]`, `cd[0-9]`, `hd[c-z]`, `vd[b-z]`, device =
 * the matched prefix). FreeBSD: `/dev/cd0`; OpenBSD: `cd[0-9]c`. Reads /dev and runs blkid; changes nothing.
 */
export async function dvdCandidates(ctx: AgentContext): Promise<string[]> {
  const plat = platformOf(ctx);
  const entries = ctx.os.fs.readdir('/dev');
  if (plat === 'freebsd') return ctx.os.fs.exists('/dev/cd0') ? ['/dev/cd0'] : [];
  if (plat === 'openbsd') {
    return sortDeviceNames(entries.map((e) => /^cd[0-9]c/.exec(e)?.[0]).filter((x): x is string => !!x)).map((n) => `/dev/${n}`);
  }
  const out: string[] = [];
  if (ctx.os.fs.exists('/dev/sr0')) out.push('/dev/sr0');
  for (const type of ['udf', 'iso9660']) {
    const r = await ctx.os.run(['blkid', '-o', 'device', '-t', `TYPE=${type}`], { timeoutMs: 30_000 });
    if (r.code !== 0) continue; // blkid missing, or no device of that type (exit 2)
    for (const line of r.stdout.split('\n').map((l) => l.trim())) if (/^\/dev\/[\w./-]+$/.test(line)) out.push(line);
  }
  const scanned = sortDeviceNames(entries.map((e) => DEVICE_RE.exec(e)?.[1]).filter((x): x is string => !!x));
  out.push(...scanned.map((n) => `/dev/${n}`));
  return [...new Set(out)];
}

/** Cleans the raw bytes: BOM, NUL bytes and anything before the first `<?` are dropped (W20). */
export function cleanOvfBytes(buf: Buffer): string {
  let text = decodeText(buf).replace(/\0/g, '');
  const start = text.indexOf('<?');
  if (start > 0) text = text.slice(start);
  return text;
}

/**
 * Writes `<Lib.Dir>/ovf-env.xml` (mode 0600, Lib.Dir created 0700) with every UserPassword replaced by `*` through
 * the XML tree (`redactOvf`). Throws XmlError for a malformed document: nothing is written then.
 */
export function saveRedactedOvf(ctx: AgentContext, xmlText: string): void {
  const lib = ctx.libDir;
  ctx.os.fs.mkdir(lib, 0o700);
  ctx.os.fs.write(path.posix.join(lib, OVF_NAME), redactOvf(xmlText), { mode: 0o600 });
}

/**
 * Reads ovf-env.xml straight from a device or image (UDF first, then ISO9660); `sysDir` is the real path of /sys
 * (block device sizes). Throws MediaError or a system error (no medium, no device).
 */
export function readOvfFromDevice(realPath: string, sysDir = '/sys'): Buffer {
  const r = openBoundedReader(realPath, sysDir);
  try {
    if (r.size === 0) throw new MediaError(`${realPath}: no medium`);
    let udfErr: Error | undefined;
    if (isUdf(r)) {
      try { return readUdfFile(r, OVF_NAME); } catch (e) { udfErr = e as Error; }
    }
    if (isIso9660(r)) return readIsoFile(r, OVF_NAME);
    throw udfErr ?? new MediaError(`${realPath}: neither UDF nor ISO9660`);
  } finally { r.close(); }
}

/**
 * Finds the provisioning DVD, reads ovf-env.xml (direct read, then mount with up to 5 passes — OpenBSD 6 — 5 s
 * apart), saves the redacted copy and returns the clear document with a deferred `eject`. Errors: no device
 * (`Failed to get dvd device from /dev ...`, also saying when only a redacted copy from an earlier attempt exists),
 * `Failed to mount dvd device` with the last output, a malformed document (XmlError from the redaction).
 */
export async function acquireOvf(ctx: AgentContext, deps: DvdDeps = {}): Promise<AcquiredOvf> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((res) => setTimeout(res, ms)));
  const log = ctx.log;
  // Fast path: the provisioning DVD is /dev/sr0 on Azure; read it before scanning (blkid costs two commands).
  if (deps.directRead !== false && platformOf(ctx) === 'linux' && ctx.os.fs.exists('/dev/sr0')) {
    try {
      const buf = readOvfFromDevice(ctx.os.fs.p('/dev/sr0'), ctx.os.fs.p('/sys'));
      log.info(`Read ${OVF_NAME} from /dev/sr0 without mounting`);
      return finish(ctx, buf, '/dev/sr0 (direct read)', '/dev/sr0');
    } catch (e) {
      log.verbose(`Direct read of /dev/sr0: ${errorText(e)}`);
    }
  }
  const candidates = await dvdCandidates(ctx);
  if (candidates.length === 0) {
    const saved = path.posix.join(ctx.libDir, OVF_NAME);
    const hint = ctx.os.fs.exists(saved)
      ? ` (${saved} from an earlier attempt exists, but its password is redacted and it cannot be used to provision)`
      : '';
    throw new Error(`Failed to get dvd device from /dev: ${ctx.os.fs.readdir('/dev').join(', ')}${hint}`);
  }
  log.verbose(`DVD candidates: ${candidates.join(' ')}`);

  if (deps.directRead !== false) {
    for (const dev of candidates) {
      let buf: Buffer;
      try {
        buf = readOvfFromDevice(ctx.os.fs.p(dev), ctx.os.fs.p('/sys'));
      } catch (e) {
        log.verbose(`Direct read of ${dev}: ${errorText(e)}`);
        continue;
      }
      log.info(`Read ${OVF_NAME} from ${dev} without mounting`);
      return finish(ctx, buf, `${dev} (direct read)`, dev);
    }
  }

  const plat = platformOf(ctx);
  const passes = plat === 'openbsd' ? 6 : 5;
  const mp = ctx.conf.s('DVD.MountPoint');
  const types = plat === 'openbsd' ? 'udf' : plat === 'freebsd' ? 'udf,iso9660' : 'udf,iso9660,vfat';
  let lastOutput = '';
  for (let pass = 1; pass <= passes; pass++) {
    for (const dev of candidates) {
      const mounted = await mountedAt(ctx, dev);
      let where = mounted;
      if (!where) {
        ctx.os.fs.mkdir(mp, 0o700);
        const r = await ctx.os.run(['mount', '-o', 'ro', '-t', types, dev, mp], { timeoutMs: 60_000 });
        if (r.code !== 0) {
          lastOutput = (r.spawnError ?? `${r.stdout}${r.stderr}`).trim();
          log.verbose(`mount ${dev}: ${lastOutput}`);
          continue;
        }
        where = mp;
      }
      let buf: Buffer | undefined;
      try {
        buf = readFileCapped(ctx.os.fs.p(path.posix.join(where, OVF_NAME)), MAX_FILE_BYTES);
      } catch (e) {
        lastOutput = `${dev}: ${errorText(e)}`;
        log.verbose(`No ${OVF_NAME} on ${dev}: ${errorText(e)}`);
      }
      if (!mounted) {
        const u = await ctx.os.run(['umount', mp], { timeoutMs: 60_000 });
        if (u.code !== 0) log.warn(`umount ${mp} failed: ${(u.stdout + u.stderr).trim()}`);
      }
      if (buf) return finish(ctx, buf, mounted ? `${dev} mounted at ${where}` : `${dev} mounted at ${mp}`, dev);
    }
    if (pass < passes) {
      log.warn(`Mounting dvd failed [retry ${pass}/${passes}, sleeping 5 sec]`);
      await sleep(5000);
    }
  }
  throw new Error(`Failed to mount dvd device${lastOutput ? `: ${lastOutput}` : ''}`);
}

/** The mount point of `dev` from `mount` output (third field of a line whose first field is the device). */
async function mountedAt(ctx: AgentContext, dev: string): Promise<string | undefined> {
  const r = await ctx.os.run(['mount'], { timeoutMs: 30_000 });
  if (r.code !== 0) return undefined;
  for (const line of r.stdout.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === dev && f.length >= 3) return f[2];
  }
  return undefined;
}

function finish(ctx: AgentContext, buf: Buffer, source: string, dev: string): AcquiredOvf {
  const xmlText = cleanOvfBytes(buf);
  saveRedactedOvf(ctx, xmlText);
  ctx.log.info(`Saved ${path.posix.join(ctx.libDir, OVF_NAME)} (password redacted) from ${source}`);
  return { xmlText, source, eject: () => ejectDvd(ctx, dev) };
}

/** Ejects the medium: Linux `eject <dev>` (not for vd*), FreeBSD `cdcontrol -f <dev> eject`, OpenBSD `cdio eject <dev>`; BIG-IP/Gaia none. Never throws. */
export async function ejectDvd(ctx: AgentContext, dev: string): Promise<void> {
  const plat = platformOf(ctx);
  const id = ctx.os.distro.id;
  if (id === 'bigip' || id === 'gaia' || (plat === 'linux' && /^\/dev\/vd/.test(dev))) return;
  const argv = plat === 'freebsd' ? ['cdcontrol', '-f', dev, 'eject'] : plat === 'openbsd' ? ['cdio', 'eject', dev] : ['eject', dev];
  try {
    const r = await ctx.os.run(argv, { timeoutMs: 60_000 });
    if (r.code !== 0) ctx.log.warn(`Failed to eject ${dev}: ${(r.spawnError ?? r.stdout + r.stderr).trim()}`);
  } catch (e) {
    ctx.log.warn(`Failed to eject ${dev}: ${errorText(e)}`);
  }
}

/**
 * `-provision:<path>`: reads an ovf-env.xml file given on the command line (a path in the real file system,
 * relative to the working directory; not mapped through the root prefix), saves the redacted copy like the DVD path
 * and returns it with a no-op eject. Errors: unreadable or larger than 1 MiB file, malformed document.
 */
export async function readOvfFile(ctx: AgentContext, file: string): Promise<AcquiredOvf> {
  const real = path.resolve(file);
  const xmlText = cleanOvfBytes(readFileCapped(real, MAX_FILE_BYTES));
  saveRedactedOvf(ctx, xmlText);
  return { xmlText, source: real, eject: async () => { /* nothing to eject */ } };
}
