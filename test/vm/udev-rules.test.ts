// The udev rules the packages install (init/udev/, provisioning-and-os.md §6.5) run through the real udev rule engine:
// `udevadm test` of Debian 12's udev (252 has no `udevadm verify`) inside a throwaway mount namespace whose /sys is a
// tmpfs holding a fake Hyper-V device tree (vmbus devices with their device_id, SCSI H:C:T:L devices, disks and
// partitions, the DMI id), whose /dev and /run are fresh tmpfs (udevadm test creates the links there) and whose rules
// directories hold only our two files plus a stand-in for the distro's persistent-storage rule (ID_VENDOR/ID_MODEL
// from the SCSI vendor/model, as scsi_id gives them). The host's /sys, /dev, /run and rules are never touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOP } from './vm';

const RULES = ['66-azure-storage.rules', '99-azure-product-uuid.rules'];
const has = (tool: string): boolean => { try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }); return true; } catch { return false; } };
let skip: string | undefined;
if (process.getuid?.() !== 0) skip = 'needs root (a private mount namespace with tmpfs over /sys, /dev and /run)';
else if (!has('udevadm')) skip = "needs udevadm (Debian package 'udev', see .ci/apt-packages.txt)";
else if (!has('unshare')) skip = 'needs unshare';
if (skip) console.log(`# skipping udev rule tests: ${skip}`);

const GEN1_ROOT = '00000000-0000-8899-0000-000000000000';
const GEN1_RESOURCE = '00000000-0001-8899-0000-000000000000';
const SCSI = (n: number): string => `f8b3781${'abcd'[n]}-1e82-4818-a1c3-63d806ec15bb`;

interface FakeDisk { vmbus: string; hctl: string; name: string; vendor?: string }

/** The shell script that builds the fake tree and runs `udevadm test` per device (test-made text, no input). */
function script(rulesDir: string, disks: FakeDisk[], dmi: { vendor: string; product: string } | undefined, actions: [string, string][]): string {
  const lines = [
    'set -e',
    'mount -t tmpfs none /dev && mknod -m 666 /dev/null c 1 3',
    'mount -t tmpfs none /run && mount -t tmpfs none /sys',
    `for d in /etc/udev/rules.d /lib/udev/rules.d /usr/local/lib/udev/rules.d; do [ -d $d ] && mount --bind "${rulesDir}" $d; done`,
    'mkdir -p /sys/bus/vmbus /sys/bus/scsi /sys/class/block /sys/class/dmi',
    'dev() { mkdir -p "$1"; printf "%s" "$3" > "$1/uevent"; ln -s "$2" "$1/subsystem"; }',
  ];
  let minor = 0;
  for (const d of disks) {
    const v = `/sys/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/${d.vmbus}`;
    const [h, c, t] = d.hctl.split(':');
    const sd = `${v}/host${h}/target${h}:${c}:${t}/${d.hctl}`;
    lines.push(
      `[ -d ${v} ] || { dev ${v} /sys/bus/vmbus ''; echo '{${d.vmbus}}' > ${v}/device_id; }`,
      `[ -d ${v}/host${h} ] || dev ${v}/host${h} /sys/bus/scsi 'DEVTYPE=scsi_host'`,
      `[ -d ${v}/host${h}/target${h}:${c}:${t} ] || dev ${v}/host${h}/target${h}:${c}:${t} /sys/bus/scsi 'DEVTYPE=scsi_target'`,
      `dev ${sd} /sys/bus/scsi 'DEVTYPE=scsi_device'`,
      `printf '%-8s\\n' '${d.vendor ?? 'Msft'}' > ${sd}/vendor`,
      `dev ${sd}/block/${d.name} /sys/class/block 'DEVNAME=${d.name}\nDEVTYPE=disk\nMAJOR=8\nMINOR=${minor}\n'`,
      `ln -s ../../../${d.hctl} ${sd}/block/${d.name}/device && ln -s ${sd}/block/${d.name} /sys/class/block/${d.name}`,
      `dev ${sd}/block/${d.name}/${d.name}1 /sys/class/block 'DEVNAME=${d.name}1\nDEVTYPE=partition\nPARTN=1\nMAJOR=8\nMINOR=${minor + 1}\n'`,
      `echo 1 > ${sd}/block/${d.name}/${d.name}1/partition && ln -s ${sd}/block/${d.name}/${d.name}1 /sys/class/block/${d.name}1`,
    );
    minor += 16;
  }
  if (dmi) {
    lines.push(
      "dev /sys/devices/virtual/dmi/id /sys/class/dmi ''",
      `echo '${dmi.vendor}' > /sys/devices/virtual/dmi/id/sys_vendor && echo '${dmi.product}' > /sys/devices/virtual/dmi/id/product_name`,
      'echo 0a1b2c3d-0000-4000-8000-000000000001 > /sys/devices/virtual/dmi/id/product_uuid',
    );
  }
  for (const [action, path] of actions) {
    lines.push(`echo "@@@udev-case ${action} ${path}"`, `SYSTEMD_DEVICE_VERIFY_SYSFS=0 udevadm test --action=${action} ${path} 2>&1 || echo "udevadm exit $?"`);
  }
  return lines.join('\n') + '\n';
}

interface Outcome { links: string[]; run: string[]; log: string }

/** Runs the fake tree in a private mount namespace; per `action path`, the links udev made and the RUN programs. */
function udevTest(disks: FakeDisk[], dmi: { vendor: string; product: string } | undefined, actions: [string, string][]): Map<string, Outcome> {
  const tmp = mkdtempSync(join(tmpdir(), 'waagent-udev-'));
  try {
    const rulesDir = join(tmp, 'rules');
    execFileSync('mkdir', [rulesDir]);
    for (const r of RULES) writeFileSync(join(rulesDir, r), readFileSync(join(TOP, 'init/udev', r)));
    // The distro's persistent-storage rule (scsi_id) fills ID_VENDOR/ID_MODEL for disks and their partitions.
    writeFileSync(join(rulesDir, '60-fake-persistent-storage.rules'),
      'SUBSYSTEM=="block", ATTRS{vendor}=="Msft*", ENV{ID_VENDOR}="Msft", ENV{ID_MODEL}="Virtual_Disk"\n');
    writeFileSync(join(tmp, 'run.sh'), script(rulesDir, disks, dmi, actions));
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', join(tmp, 'run.sh')], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `fake tree failed: ${r.stderr}\n${r.stdout.slice(-3000)}`);
    const out = new Map<string, Outcome>();
    for (const part of r.stdout.split(/^@@@udev-case /m).slice(1)) {
      const key = part.slice(0, part.indexOf('\n'));
      const links = /^DEVLINKS=(.*)$/m.exec(part)?.[1].split(' ').filter((l) => l.startsWith('/dev/disk/azure/')).sort() ?? [];
      const run = [...part.matchAll(/^run: '(.*)'$/gm)].map((m) => m[1]);
      out.set(key, { links, run, log: part });
    }
    return out;
  } finally { rmSync(tmp, { recursive: true, force: true }); }
}

/** No rule of ours is refused or fails while udev reads and runs it. */
function assertClean(o: Outcome, what: string): void {
  assert.doesNotMatch(o.log, /azure[^\n]*\.rules:\d+[^\n]*(invalid|unknown|error|failed|ignoring)/i, `${what}:\n${o.log}`);
  assert.doesNotMatch(o.log, /^udevadm exit/m, `${what}:\n${o.log}`);
}

test('66-azure-storage.rules: /dev/disk/azure links for Gen1 and Gen2 root/resource disks, data-disk LUNs, partitions', { skip }, () => {
  const disks: FakeDisk[] = [
    { vmbus: GEN1_ROOT, hctl: '0:0:0:0', name: 'sda' },
    { vmbus: GEN1_RESOURCE, hctl: '1:0:1:0', name: 'sdb' },
    { vmbus: SCSI(0), hctl: '2:0:0:0', name: 'sdc' },   // Gen2 OS disk
    { vmbus: SCSI(0), hctl: '2:0:0:1', name: 'sdd' },   // Gen2 resource disk
    { vmbus: SCSI(0), hctl: '2:0:0:2', name: 'sde' },   // Gen2 provisioning DVD: no link
    { vmbus: SCSI(1), hctl: '3:0:0:5', name: 'sdf' },
    { vmbus: SCSI(3), hctl: '5:0:0:63', name: 'sdg' },
    { vmbus: SCSI(1), hctl: '3:0:0:7', name: 'sdh', vendor: 'QEMU' }, // not a Hyper-V virtual disk
  ];
  const want: Record<string, string[]> = {
    sda: ['/dev/disk/azure/root'], sda1: ['/dev/disk/azure/root-part1'],
    sdb: ['/dev/disk/azure/resource'], sdb1: ['/dev/disk/azure/resource-part1'],
    sdc: ['/dev/disk/azure/root'], sdc1: ['/dev/disk/azure/root-part1'],
    sdd: ['/dev/disk/azure/resource'], sdd1: ['/dev/disk/azure/resource-part1'],
    sde: [], sde1: [],
    sdf: ['/dev/disk/azure/scsi1/lun5'], sdf1: ['/dev/disk/azure/scsi1/lun5-part1'],
    sdg: ['/dev/disk/azure/scsi3/lun63'], sdg1: ['/dev/disk/azure/scsi3/lun63-part1'],
    sdh: [], sdh1: [],
  };
  const actions: [string, string][] = Object.keys(want).map((k) => ['add', `/sys/class/block/${k}`]);
  actions.push(['change', '/sys/class/block/sdf'], ['remove', '/sys/class/block/sdf'], ['remove', '/sys/class/block/sdb1']);
  const got = udevTest(disks, undefined, actions);
  for (const [k, links] of Object.entries(want)) {
    const o = got.get(`add /sys/class/block/${k}`);
    assert.ok(o, `no udevadm output for ${k}`);
    assertClean(o, k);
    assert.deepEqual(o.links, links, `${k}:\n${o.log.slice(-2500)}`);
  }
  // change events (udevadm trigger --action=change after installing the rules) link too; remove events make none.
  assert.deepEqual(got.get('change /sys/class/block/sdf')!.links, ['/dev/disk/azure/scsi1/lun5']);
  // (DEVLINKS on remove is udev's database of the earlier add; our rules must neither link nor run a program.)
  for (const k of ['remove /sys/class/block/sdf', 'remove /sys/class/block/sdb1']) {
    assert.doesNotMatch(got.get(k)!.log, /66-azure-storage\.rules:\d+ (LINK|Running PROGRAM)/, k);
  }
  assert.match(got.get('add /sys/class/block/sdb1')!.log, /66-azure-storage\.rules:\d+ LINK 'disk\/azure\/resource-part1'/);
  // The LUN comes from the device link, not from a fixed table: the program udev ran names it.
  assert.match(got.get('add /sys/class/block/sdf')!.log, /fabric_name=scsi1\/lun5$/m);
});

test('99-azure-product-uuid.rules: product_uuid made world-readable on an Azure VM only', { skip }, () => {
  const azure = udevTest([], { vendor: 'Microsoft Corporation', product: 'Virtual Machine' }, [['add', '/sys/devices/virtual/dmi/id']]);
  const a = azure.get('add /sys/devices/virtual/dmi/id')!;
  assertClean(a, 'dmi');
  assert.deepEqual(a.run, ['/bin/chmod 0444 /sys/devices/virtual/dmi/id/product_uuid'], a.log);
  for (const [vendor, product] of [['QEMU', 'Standard PC (Q35 + ICH9, 2009)'], ['Microsoft Corporation', 'Surface Laptop']]) {
    const other = udevTest([], { vendor, product }, [['add', '/sys/devices/virtual/dmi/id']]).get('add /sys/devices/virtual/dmi/id')!;
    assertClean(other, `${vendor} ${product}`);
    assert.deepEqual(other.run, [], `${vendor} ${product}:\n${other.log}`);
  }
});

test('udev rules: every line is a rule udev accepts; each GOTO has its LABEL; links only under disk/azure', () => {
  const keys = /^(ACTION|SUBSYSTEM|KERNEL|ENV\{[A-Za-z_]+\}|ATTR\{[a-z_]+\}|ATTRS\{[a-z_]+\}|TEST|PROGRAM|RESULT|SYMLINK|RUN|GOTO|LABEL)$/;
  for (const r of RULES) {
    const text = readFileSync(join(TOP, 'init/udev', r), 'utf8');
    assert.match(text, /^# waagent-ts: .*§6\.5/m, `${r}: header comment`);
    const labels = new Set<string>();
    const gotos: string[] = [];
    for (const [i, line] of text.split('\n').entries()) {
      if (!line.trim() || line.startsWith('#')) continue;
      const parts = line.split(/,\s*(?=[A-Z]+[{=!+:])/);
      for (const p of parts) {
        const m = /^([A-Z]+(?:\{[^}]*\})?)(==|!=|=|\+=|:=)"([^"]*)"$/.exec(p.trim());
        assert.ok(m, `${r}:${i + 1}: not a udev key: ${p}`);
        assert.match(m[1], keys, `${r}:${i + 1}: unexpected key ${m[1]}`);
        if (m[1] === 'LABEL') labels.add(m[3]);
        if (m[1] === 'GOTO') gotos.push(m[3]);
        if (m[1] === 'SYMLINK') assert.match(m[3], /^disk\/azure\/\$env\{fabric_name\}(-part%n)?$/, `${r}:${i + 1}`);
      }
    }
    for (const g of gotos) assert.ok(labels.has(g), `${r}: GOTO "${g}" has no LABEL`);
  }
  const storage = readFileSync(join(TOP, 'init/udev/66-azure-storage.rules'), 'utf8');
  assert.match(storage, /ENV\{ID_VENDOR\}!="Msft"/);
  assert.match(storage, /ENV\{ID_MODEL\}!="Virtual_Disk"/);
  for (const n of [0, 1, 2, 3]) assert.match(storage, new RegExp(`ATTRS\\{device_id\\}=="\\{${SCSI(n)}\\}".*"scsi${n}"`));
});
