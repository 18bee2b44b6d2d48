/**
 * Kernel options in the boot-loader configuration (provisioning-and-os.md §7.4, used by `-serialconsole` and the
 * NUMA check of §7.1): which file and which lines hold the kernel command line on this image (GRUB 2's
 * /etc/default/grub, GRUB legacy's menu.lst, FreeBSD's loader.conf), the edit (idempotent: a line that already has the
 * options means nothing to do), the atomic write, and the regeneration command (grubby on BLS images, update-grub,
 * grub2-mkconfig, grub-mkconfig). Every command is an argv array through the OS object.
 */
import type { LinuxOS } from './linux';
import { log } from '../core/log';

/** Where the kernel command line lives on this image. */
export type BootConfig =
  | { kind: 'grub2'; file: string; key: 'GRUB_CMDLINE_LINUX_DEFAULT' | 'GRUB_CMDLINE_LINUX' }
  | { kind: 'grub-legacy'; file: string }
  | { kind: 'freebsd-loader'; file: string };

const GRUB2_DEFAULTS = '/etc/default/grub';
const MENU_LST = ['/boot/grub/menu.lst', '/boot/grub/grub.conf'];
const LOADER_CONF = '/boot/loader.conf';

/** Families that put the options in `GRUB_CMDLINE_LINUX` (Fedora, RHEL ≥ 7, SUSE ≥ 12 and their kin, §7.4). */
function usesCmdlineLinux(os: LinuxOS): boolean {
  const ids = [os.distro.id, ...os.distro.like].map((s) => s.toLowerCase());
  return ids.some((i) => ['fedora', 'rhel', 'centos', 'redhat', 'ol', 'oracle', 'almalinux', 'rocky', 'suse', 'sles', 'opensuse',
    'opensuse-leap', 'opensuse-tumbleweed', 'mariner', 'azurelinux'].includes(i));
}

/** The boot configuration of this image, or undefined when none of the known files exists. */
export function findBootConfig(os: LinuxOS): BootConfig | undefined {
  if (os.resourceDiskFlavor() === 'freebsd') return { kind: 'freebsd-loader', file: LOADER_CONF };
  if (os.resourceDiskFlavor() === 'openbsd') return undefined;
  if (os.fs.exists(GRUB2_DEFAULTS)) {
    return { kind: 'grub2', file: GRUB2_DEFAULTS, key: usesCmdlineLinux(os) ? 'GRUB_CMDLINE_LINUX' : 'GRUB_CMDLINE_LINUX_DEFAULT' };
  }
  const legacy = MENU_LST.find((f) => os.fs.exists(f));
  if (legacy) return { kind: 'grub-legacy', file: legacy };
  return undefined;
}

/** Adds ` <opts>` at the end of a value, before a closing quote when the line ends with one. */
function appendToValue(line: string, opts: string): string {
  const m = /^(.*?)(["']?)(\s*)$/.exec(line)!;
  const body = m[1];
  const quote = m[2];
  // An empty quoted value (`KEY=""`): no leading space inside the quotes.
  const sep = quote && body.endsWith('=' + quote) ? '' : ' ';
  return quote ? `${body}${sep}${opts}${quote}` : `${line.trimEnd()} ${opts}`;
}

/**
 * The edited text of a boot configuration: `undefined` when any selected line already contains `opts` (nothing to
 * do); throws when no line selects (the image's file has no kernel line to edit).
 */
export function editBootText(cfg: BootConfig, text: string, opts: string): string | undefined {
  const lines = text.split('\n');
  if (cfg.kind === 'freebsd-loader') {
    // `opts` is not a kernel option here: the serial console is two loader variables (§7.4 NEW).
    const want: [string, string][] = [['console', '"comconsole,vidconsole"'], ['comconsole_speed', '"115200"']];
    let changed = false;
    for (const [k, v] of want) {
      const idx = lines.findIndex((l) => new RegExp(`^\\s*${k}\\s*=`).test(l));
      const line = `${k}=${v}`;
      if (idx >= 0) { if (lines[idx] !== line) { lines[idx] = line; changed = true; } } else {
        if (lines.length && lines[lines.length - 1] === '') lines.splice(lines.length - 1, 0, line); else lines.push(line);
        changed = true;
      }
    }
    return changed ? lines.join('\n') : undefined;
  }
  const selected = (l: string): boolean => cfg.kind === 'grub2'
    ? new RegExp(`^\\s*${cfg.key}=`).test(l)
    : l.trim().split(/\s+/)[0] === 'kernel';
  const idx = lines.map((l, i) => (selected(l) ? i : -1)).filter((i) => i >= 0);
  if (idx.length === 0) {
    if (cfg.kind === 'grub2') { lines.splice(lines.length && lines[lines.length - 1] === '' ? lines.length - 1 : lines.length, 0, `${cfg.key}="${opts}"`); return lines.join('\n'); }
    throw new Error(`${cfg.file} has no kernel line to edit`);
  }
  if (idx.some((i) => lines[i].includes(opts))) return undefined;
  for (const i of idx) lines[i] = appendToValue(lines[i], opts);
  return lines.join('\n');
}

/** Whether the image boots through BLS entries managed by grubby (Fedora ≥ 30, RHEL ≥ 8). */
function usesBls(os: LinuxOS): boolean {
  return os.which('grubby') !== undefined && os.fs.readdir('/boot/loader/entries').some((e) => e.endsWith('.conf'));
}

/** Regenerates the boot-loader configuration after an edit (§7.4 "Regeneration"). Throws when the command fails. */
async function regenerate(os: LinuxOS, cfg: BootConfig, opts: string, distroId: string): Promise<string> {
  if (cfg.kind !== 'grub2') return 'nothing to regenerate';
  if (usesBls(os)) {
    await os.runOk(['grubby', '--update-kernel=ALL', `--args=${opts}`], { timeoutMs: 120_000 }, 'grubby');
    return 'grubby --update-kernel=ALL';
  }
  if (os.which('update-grub')) {
    await os.runOk(['update-grub'], { timeoutMs: 300_000 }, 'update-grub');
    return 'update-grub';
  }
  if (os.which('grub2-mkconfig')) {
    const cfgFile = ['/boot/grub2/grub.cfg', `/boot/efi/EFI/${distroId}/grub.cfg`].find((f) => os.fs.exists(f)) ?? '/boot/grub2/grub.cfg';
    await os.runOk(['grub2-mkconfig', '-o', cfgFile], { timeoutMs: 300_000 }, 'grub2-mkconfig');
    return `grub2-mkconfig -o ${cfgFile}`;
  }
  if (os.which('grub-mkconfig')) {
    await os.runOk(['grub-mkconfig', '-o', '/boot/grub/grub.cfg'], { timeoutMs: 300_000 }, 'grub-mkconfig');
    return 'grub-mkconfig -o /boot/grub/grub.cfg';
  }
  throw new Error('none of grubby, update-grub, grub2-mkconfig, grub-mkconfig is installed: cannot regenerate the boot configuration');
}

export interface KernelOptionResult {
  config: BootConfig;
  changed: boolean;
  /** The regeneration command run (when changed). */
  regenerated?: string;
}

/**
 * Adds `opts` (e.g. `console=ttyS0 earlyprintk=ttyS0`) to the kernel command line of the boot configuration and
 * regenerates the boot-loader files. A configuration that already has them is left alone (no write, no command).
 * Throws when the image has no known boot configuration, the file has no kernel line, or regeneration fails; then
 * the file is put back as it was (never half-changed: a rerun edits and regenerates again).
 */
export async function addKernelOptions(os: LinuxOS, opts: string): Promise<KernelOptionResult> {
  const cfg = findBootConfig(os);
  if (!cfg) throw new Error(`no boot configuration found (${[GRUB2_DEFAULTS, ...MENU_LST].join(', ')})`);
  const text = os.fs.readText(cfg.file, 4 * 1024 * 1024) ?? '';
  const edited = editBootText(cfg, text, opts);
  if (edited === undefined) return { config: cfg, changed: false };
  await os.writeSystemFile(cfg.file, edited, 0o644);
  log.info(`Added "${cfg.kind === 'freebsd-loader' ? 'console="comconsole,vidconsole"' : opts}" to ${cfg.file}`);
  try {
    const how = await regenerate(os, cfg, opts, os.distro.id.toLowerCase());
    return { config: cfg, changed: true, regenerated: how };
  } catch (e) {
    await os.writeSystemFile(cfg.file, text, 0o644);
    throw new Error(`the boot configuration was not regenerated (${cfg.file} left unchanged): ${(e as Error).message}`);
  }
}
