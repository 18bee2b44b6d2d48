#!/usr/bin/env node
// Distro packages (DECISIONS.md D31; provisioning-and-os.md §10.2, §10.10): from the one executable per architecture
// (dist/waagent-linux-x64, -arm64, built by build.mjs) and init/, a .deb (dpkg-deb) and an .rpm (rpmbuild) each:
//   /usr/sbin/waagent, /etc/waagent.conf (conffile / %config(noreplace)), the systemd unit under the distro's name
//   (deb: /lib/systemd/system/walinuxagent.service, the path Debian's waagent uses, so Replaces hands it over; rpm:
//   /usr/lib/systemd/system/waagent.service), azure.slice, logrotate (deb: /etc/logrotate.d/waagent.logrotate,
//   Debian's name, so the replaced package leaves no second rule for the same log), the udev rules of init/udev/
//   (provisioning-and-os.md §6.5; deb: /lib/udev/rules.d as Debian's waagent, rpm: /etc/udev/rules.d), maintainer
//   scripts from packaging/deb/ and packaging/rpm/.
// The version is package.json's agentVersion (it must equal src/version.ts). Reproducible: every mtime is
// SOURCE_DATE_EPOCH (from the environment, else the last commit's time), owners root:root, the rpm build host fixed.
//
// Usage: node packaging/package.mjs [--version V] [--arch x64|arm64]... [--bin-x64 PATH] [--bin-arm64 PATH] [--out DIR]
//   --version, --bin-*: build a package from another executable (the VM tests build an upgrade this way).
// Output: DIR (default dist/packages)/waagent-ts_<V>_<amd64|arm64>.deb and waagent-ts-<V>-1.<x86_64|aarch64>.rpm
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const top = dirname(dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(readFileSync(join(top, 'package.json'), 'utf8'));
const ARCH = { x64: { deb: 'amd64', rpm: 'x86_64' }, arm64: { deb: 'arm64', rpm: 'aarch64' } };

const { values: args } = parseArgs({
  options: {
    version: { type: 'string' }, arch: { type: 'string', multiple: true }, out: { type: 'string' },
    'bin-x64': { type: 'string' }, 'bin-arm64': { type: 'string' }, 'no-rpm': { type: 'boolean' },
  },
});

function sourceVersion() {
  const m = /AGENT_VERSION = '([^']+)'/.exec(readFileSync(join(top, 'src/version.ts'), 'utf8'));
  if (!m) throw new Error('src/version.ts: AGENT_VERSION not found');
  if (m[1] !== pkg.agentVersion) throw new Error(`package.json agentVersion ${pkg.agentVersion} differs from src/version.ts ${m[1]}`);
  return m[1];
}

function sourceDateEpoch() {
  if (process.env.SOURCE_DATE_EPOCH && /^\d+$/.test(process.env.SOURCE_DATE_EPOCH)) return Number(process.env.SOURCE_DATE_EPOCH);
  try { return Number(execFileSync('git', ['-C', top, 'log', '-1', '--format=%ct'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()); } catch { return 0; }
}

const version = args.version ?? sourceVersion();
if (!/^\d+(\.\d+){1,3}([+~][0-9A-Za-z.]+)?$/.test(version)) { console.error(`package failed: bad version ${JSON.stringify(version)}`); process.exit(1); }
const epoch = sourceDateEpoch();
const out = args.out ?? join(top, 'dist', 'packages');
const arches = args.arch?.length ? args.arch : ['x64', 'arm64'];

/** Writes `content` (or copies `from`) to root/rel with mode. */
function put(root, rel, mode, { from, content }) {
  const p = join(root, rel);
  mkdirSync(dirname(p), { recursive: true });
  if (from !== undefined) copyFileSync(from, p); else writeFileSync(p, content);
  chmodSync(p, mode);
}

/** Sets every mtime under root (and root) to the epoch. */
function clamp(root) {
  const walk = (p) => {
    if (statSync(p).isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    utimesSync(p, epoch, epoch);
  };
  walk(root);
}

/** The files both packages carry, at their distro paths. */
/** The udev rules both packages install (§6.5): /dev/disk/azure links and a world-readable product_uuid. */
const UDEV_RULES = ['66-azure-storage.rules', '99-azure-product-uuid.rules'];

function stageCommon(root, bin, unitPath, logrotatePath, udevDir) {
  put(root, 'usr/sbin/waagent', 0o755, { from: bin });
  put(root, 'etc/waagent.conf', 0o644, { from: join(top, 'init/waagent.conf') });
  put(root, logrotatePath, 0o644, { from: join(top, 'init/waagent.logrotate') });
  put(root, unitPath, 0o644, { from: join(top, 'init/waagent.service') });
  put(root, join(dirname(unitPath), 'azure.slice'), 0o644, { from: join(top, 'init/azure.slice') });
  for (const r of UDEV_RULES) put(root, join(udevDir, r), 0o644, { from: join(top, 'init/udev', r) });
}

function installedSizeKb(root) {
  let n = 0;
  const walk = (p) => { const s = statSync(p); if (s.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e)); else n += s.size; };
  walk(root);
  return Math.ceil(n / 1024);
}

function buildDeb(arch, bin, work) {
  const root = join(work, `deb-${arch}`);
  stageCommon(root, bin, 'lib/systemd/system/walinuxagent.service', 'etc/logrotate.d/waagent.logrotate', 'lib/udev/rules.d');
  const others = 'waagent, walinuxagent';
  const control = [
    'Package: waagent-ts',
    `Version: ${version}`,
    `Architecture: ${ARCH[arch].deb}`,
    'Maintainer: waagent-ts maintainers <waagent-ts@invalid>',
    `Installed-Size: ${installedSizeKb(root)}`,
    'Depends: openssl, ca-certificates',
    'Recommends: openssh-server, sudo, iptables | nftables, parted, eject',
    // Not `Provides: walinuxagent`: Debian's waagent says `Conflicts: walinuxagent`, and dpkg -i refuses a package
    // that provides a name an installed package conflicts with (it only removes conflictors we Replace).
    'Provides: waagent',
    `Conflicts: ${others}`,
    `Replaces: ${others}`,
    'Section: admin',
    'Priority: optional',
    'Homepage: https://github.com/Azure/WALinuxAgent',
    'Description: Azure Linux guest agent (waagent-ts, one executable)',
    ' The Azure Linux guest agent as one self-contained executable (TypeScript on an',
    ' embedded Node runtime), compatible with WALinuxAgent: provisioning, the fabric',
    ' protocol, extensions and daemon duties. Replaces the waagent/walinuxagent package',
    ' and keeps its unit name, walinuxagent.service.',
    '',
  ].join('\n');
  put(root, 'DEBIAN/control', 0o644, { content: control });
  put(root, 'DEBIAN/conffiles', 0o644, { content: '/etc/waagent.conf\n/etc/logrotate.d/waagent.logrotate\n' });
  for (const s of ['preinst', 'postinst', 'prerm', 'postrm']) put(root, `DEBIAN/${s}`, 0o755, { from: join(top, 'packaging/deb', s) });
  clamp(root);
  const file = join(out, `waagent-ts_${version}_${ARCH[arch].deb}.deb`);
  rmSync(file, { force: true });
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '-z1', '--build', root, file], {
    stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) },
  });
  return file;
}

function buildRpm(arch, bin, work) {
  const stage = join(work, `rpm-${arch}`);
  stageCommon(stage, bin, 'usr/lib/systemd/system/waagent.service', 'etc/logrotate.d/waagent', 'etc/udev/rules.d');
  clamp(stage);
  const spec = readFileSync(join(top, 'packaging/rpm/waagent-ts.spec.in'), 'utf8')
    .replaceAll('@VERSION@', version.replace(/[+~-]/g, '.')).replaceAll('@RPMARCH@', ARCH[arch].rpm).replaceAll('@STAGE@', stage);
  const specFile = join(work, `waagent-ts-${arch}.spec`);
  writeFileSync(specFile, spec);
  const rpmTop = join(work, `rpmbuild-${arch}`);
  execFileSync('rpmbuild', ['-bb', '--quiet', '--target', `${ARCH[arch].rpm}-linux`,
    '--define', `_topdir ${rpmTop}`, '--define', '_rpmfilename %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm',
    '--define', `_rpmdir ${out}`, '--define', '_binary_payload w1T2.xzdio', specFile], {
    stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch), HOME: work, LC_ALL: 'C' },
  });
  const file = join(out, `waagent-ts-${version.replace(/[+~-]/g, '.')}-1.${ARCH[arch].rpm}.rpm`);
  if (!existsSync(file)) throw new Error(`rpmbuild did not produce ${file}`);
  return file;
}

function main() {
  const t0 = Date.now();
  mkdirSync(out, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'waagent-package-'));
  try {
    for (const arch of arches) {
      if (!ARCH[arch]) throw new Error(`unknown arch ${arch} (x64 or arm64)`);
      const bin = args[`bin-${arch}`] ?? join(top, 'dist', `waagent-linux-${arch}`);
      if (!existsSync(bin)) throw new Error(`${bin} is missing: run node build.mjs first`);
      const made = [buildDeb(arch, bin, work)];
      if (!args['no-rpm']) made.push(buildRpm(arch, bin, work));
      for (const f of made) console.log(`  ${f.startsWith(top) ? f.slice(top.length + 1) : f}  ${(statSync(f).size / 1e6).toFixed(1)} MB`);
    }
  } finally { rmSync(work, { recursive: true, force: true }); }
  console.log(`# packages ${version} (SOURCE_DATE_EPOCH=${epoch}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

try { main(); } catch (e) { console.error(`package failed: ${e.message}`); process.exit(1); }
