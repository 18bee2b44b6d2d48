import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseOsRelease, distroFromOsRelease, distroFromReleaseFile, detectDistro, normaliseId } from '../../src/os/detect';
import { SysRoot } from '../../src/core/sysroot';

const LINUX = { sysname: 'Linux', release: '6.8.0-1012-azure' };

const UBUNTU = `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
`;
const RHEL = `NAME="Red Hat Enterprise Linux"
VERSION="9.4 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.4"
PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"
`;
const FLATCAR = `NAME="Flatcar Container Linux by Kinvolk"
ID=flatcar
ID_LIKE=coreos
VERSION=3815.2.5
VERSION_ID=3815.2.5
PRETTY_NAME="Flatcar Container Linux by Kinvolk 3815.2.5 (Oklo)"
`;
const ODD = `# a comment
  ID='SLES'   
VERSION_ID="15-SP5"
NAME="SUSE \\"Linux\\" Enterprise"
garbage line
ID_LIKE="suse  opensuse"
`;

test('os-release: quoted and unquoted values, code name, ID_LIKE', () => {
  const u = distroFromOsRelease(parseOsRelease(UBUNTU));
  assert.deepEqual(u, { id: 'ubuntu', like: ['debian'], version: '22.04', codename: 'jammy', fullName: 'Ubuntu', name: 'ubuntu' });
  const r = distroFromOsRelease(parseOsRelease(RHEL));
  assert.deepEqual([r.id, r.version, r.like, r.codename, r.fullName], ['rhel', '9.4', ['fedora'], 'Plow', 'Red Hat Enterprise Linux']);
  const f = distroFromOsRelease(parseOsRelease(FLATCAR));
  assert.deepEqual([f.id, f.version, f.like], ['flatcar', '3815.2.5', ['coreos']]);
});

test('os-release: comments, single quotes, escapes, surrounding spaces, junk lines, upper-case ID', () => {
  const kv = parseOsRelease(ODD);
  assert.equal(kv.ID, 'SLES');
  assert.equal(kv.NAME, 'SUSE "Linux" Enterprise');
  const d = distroFromOsRelease(kv);
  assert.deepEqual([d.id, d.version, d.like], ['sles', '15-SP5', ['suse', 'opensuse']]);
});

test('detectDistro under a root: /etc first, /usr/lib fallback, unknown without either', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-detect-'));
  const root = new SysRoot(dir);
  assert.equal(detectDistro(root, 'linux', LINUX).id, 'unknown');
  fs.mkdirSync(path.join(dir, 'usr/lib'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'usr/lib/os-release'), RHEL);
  assert.equal(detectDistro(root, 'linux', LINUX).id, 'rhel');
  fs.mkdirSync(path.join(dir, 'etc'));
  fs.writeFileSync(path.join(dir, 'etc/os-release'), UBUNTU);
  assert.equal(detectDistro(root, 'linux', LINUX).id, 'ubuntu');
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A temp root holding `files` (agent path → content; a trailing `/` makes a directory); removed after `fn`. */
function withRoot(files: Record<string, string>, fn: (root: SysRoot) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-detect-'));
  try {
    for (const [p, content] of Object.entries(files)) {
      const real = path.join(dir, p);
      if (p.endsWith('/')) { fs.mkdirSync(real, { recursive: true }); continue; }
      fs.mkdirSync(path.dirname(real), { recursive: true });
      fs.writeFileSync(real, content);
    }
    fn(new SysRoot(dir));
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
}

test('detectDistro on the BSDs: uname name and release without its suffix; os-release is not consulted', () => {
  withRoot({ '/etc/os-release': UBUNTU }, (root) => {
    assert.deepEqual(detectDistro(root, 'freebsd', { sysname: 'FreeBSD', release: '13.2-RELEASE-p4' }),
      { id: 'freebsd', like: [], version: '13.2', codename: '', fullName: 'freebsd', name: 'freebsd' });
    const o = detectDistro(root, 'openbsd', { sysname: 'OpenBSD', release: '7.5' });
    assert.deepEqual([o.id, o.version, o.fullName], ['openbsd', '7.5', 'openbsd']);
    const n = detectDistro(root, 'freebsd', { sysname: 'NS-BSD', release: '4.3.21-beta' });
    assert.deepEqual([n.id, n.version], ['nsbsd', '4.3.21']);
    // Default uname: this machine's kernel release.
    const d = detectDistro(root, 'freebsd');
    if (os.type() !== 'OpenBSD' && os.type() !== 'NS-BSD') assert.equal(d.id, 'freebsd');
    assert.equal(d.version, os.release().replace(/-.*$/, ''));
  });
});

test('ID normalisation: ol → oracle, opensuse-leap → opensuse, quotes and spaces stripped, lower-cased', () => {
  assert.equal(normaliseId('ol'), 'oracle');
  assert.equal(normaliseId('opensuse-leap'), 'opensuse');
  assert.equal(normaliseId(' "Ubuntu" '), 'ubuntu');
  assert.equal(normaliseId('RedHatEnterpriseServer'), 'rhel');
  withRoot({ '/etc/os-release': 'NAME="Oracle Linux Server"\nID="ol"\nVERSION_ID="9.3"\n' }, (root) => {
    const d = detectDistro(root, 'linux', LINUX);
    assert.deepEqual([d.id, d.name, d.version, d.fullName], ['oracle', 'oracle', '9.3', 'Oracle Linux Server']);
  });
  withRoot({ '/etc/os-release': 'NAME="openSUSE Leap"\nID="opensuse-leap"\nVERSION_ID="15.5"\nID_LIKE="suse opensuse"\n' }, (root) => {
    assert.deepEqual([detectDistro(root, 'linux', LINUX).id, detectDistro(root, 'linux', LINUX).version], ['opensuse', '15.5']);
  });
  withRoot({ '/etc/os-release': 'NAME=Debian\nID=" Debian "\nVERSION_ID=12\nVERSION="12 (bookworm)"\n' }, (root) => {
    const d = detectDistro(root, 'linux', LINUX);
    assert.deepEqual([d.id, d.codename], ['debian', 'bookworm']);
  });
});

test('without os-release: /etc/lsb-release, then the first /etc/<x>-release file', () => {
  const lsb = 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=14.04\nDISTRIB_CODENAME=trusty\nDISTRIB_DESCRIPTION="Ubuntu 14.04.6 LTS"\n';
  withRoot({ '/etc/lsb-release': lsb, '/etc/centos-release': 'CentOS release 6.10 (Final)\n' }, (root) => {
    assert.deepEqual(detectDistro(root, 'linux', LINUX),
      { id: 'ubuntu', like: [], version: '14.04', codename: 'trusty', fullName: 'Ubuntu 14.04.6 LTS', name: 'ubuntu' });
  });
  // An lsb-release without DISTRIB_ID (some RHEL images) does not count; system-release is skipped.
  withRoot({ '/etc/lsb-release': 'LSB_VERSION=base-4.0\n', '/etc/centos-release': 'CentOS Linux release 7.9.2009 (Core)\n',
    '/etc/redhat-release': 'Red Hat Enterprise Linux Server release 7.9 (Maipo)\n', '/etc/system-release': 'x release 1\n' }, (root) => {
    assert.deepEqual(detectDistro(root, 'linux', LINUX),
      { id: 'centos', like: [], version: '7.9.2009', codename: 'Core', fullName: 'CentOS Linux', name: 'centos' });
  });
  withRoot({ '/etc/redhat-release': 'Red Hat Enterprise Linux Server release 6.10 (Santiago)\n' }, (root) => {
    const d = detectDistro(root, 'linux', LINUX);
    assert.deepEqual([d.id, d.version, d.codename, d.fullName], ['rhel', '6.10', 'Santiago', 'Red Hat Enterprise Linux Server']);
  });
  withRoot({ '/etc/SuSE-release': 'SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\n' }, (root) => {
    const d = detectDistro(root, 'linux', LINUX);
    assert.deepEqual([d.id, d.version, d.fullName], ['suse', '11', 'SUSE Linux Enterprise Server']);
  });
  // An empty os-release is ignored; an empty release file gives unknown.
  withRoot({ '/etc/os-release': '', '/etc/foo-release': '\n' }, (root) => {
    assert.equal(detectDistro(root, 'linux', LINUX).id, 'unknown');
  });
  assert.equal(distroFromReleaseFile('x', '   '), undefined);
});

test('overrides: oracle, euleros, UnionTech, photon, alpaquita, openwrt, iosxe', () => {
  const rhel = { '/etc/os-release': RHEL };
  withRoot({ ...rhel, '/etc/oracle-release': 'Oracle Linux Server release 8.9\n' }, (root) => {
    const d = detectDistro(root, 'linux', LINUX);
    assert.deepEqual([d.id, d.codename, d.fullName, d.version], ['rhel', 'oracle', 'Oracle Linux', '9.4']);
  });
  const only = (file: string) => { let id = ''; withRoot({ ...rhel, [file]: 'x\n' }, (root) => { id = detectDistro(root, 'linux', LINUX).id; }); return id; };
  assert.equal(only('/etc/euleros-release'), 'euleros');
  assert.equal(only('/etc/UnionTech-release'), 'uos');
  assert.equal(only('/etc/photon-release'), 'photonos');
  assert.equal(only('/etc/alpaquita-release'), 'alpaquita');
  assert.equal(only('/etc/openwrt_release'), 'openwrt');
  assert.equal(only('/etc/unrelated-file'), 'rhel');
  withRoot({ ...rhel, '/home/guestshell/azure/': '' }, (root) => {
    assert.deepEqual(detectDistro(root, 'linux', LINUX),
      { id: 'iosxe', like: [], version: 'csr1000v', codename: '', fullName: 'Cisco IOSXE Linux', name: 'iosxe' });
  });
  // Later overrides win: photon after euleros.
  withRoot({ ...rhel, '/etc/euleros-release': '', '/etc/photon-release': '' }, (root) => {
    assert.equal(detectDistro(root, 'linux', LINUX).id, 'photonos');
  });
});

test('F5 (/shared/vadc + /VERSION) and Check Point Gaia (/etc/cp-release + /etc/cloud-version)', () => {
  const VERSION = 'Product: BIG-IP\nVersion: 17.1.1\nBuild: 0.0.4\nSequence: 17.1.1.0.0.4\nBaseBuild: 0.0.4\nEdition: Final\n';
  withRoot({ '/etc/os-release': RHEL, '/shared/vadc/': '', '/VERSION': VERSION }, (root) => {
    assert.deepEqual(detectDistro(root, 'linux', LINUX),
      { id: 'bigip', like: [], version: '17.1.1', codename: 'bigip', fullName: 'BIG-IP', name: 'bigip' });
  });
  withRoot({ '/shared/vadc/': '', '/VERSION': 'Product: BIG-IQ\nVersion: 8.3.0\n' }, (root) => {
    assert.equal(detectDistro(root, 'linux', LINUX).id, 'bigiq');
  });
  withRoot({ '/shared/vadc/': '', '/VERSION': 'Product: iWorkflow\nVersion: 2.3.0\n' }, (root) => {
    assert.deepEqual([detectDistro(root, 'linux', LINUX).id, detectDistro(root, 'linux', LINUX).version], ['iworkflow', '2.3.0']);
  });
  // /shared/vadc without /VERSION: keep what os-release said rather than fail.
  withRoot({ '/etc/os-release': RHEL, '/shared/vadc/': '' }, (root) => {
    assert.equal(detectDistro(root, 'linux', LINUX).id, 'rhel');
  });
  withRoot({ '/etc/os-release': RHEL, '/etc/cp-release': 'Check Point Gaia R81.20\n',
    '/etc/cloud-version': 'release: R81.20\ntake: 631\nbuild: 992001234\ntemplate_name: x\n' }, (root) => {
    assert.deepEqual(detectDistro(root, 'linux', LINUX),
      { id: 'gaia', like: [], version: '631.992001234', codename: 'R81.20', fullName: 'Check Point Gaia R81.20', name: 'gaia' });
  });
});

test('mariner: the override and the most precise version; Azure Linux likewise', () => {
  const MARINER = 'NAME="Common Base Linux Mariner"\nVERSION="2.0.20240123"\nID=mariner\nVERSION_ID="2.0"\n';
  withRoot({ '/etc/os-release': MARINER, '/etc/mariner-release': 'CBL-Mariner 2.0.20240123\nBUILD_NUMBER=abc\n' }, (root) => {
    const d = detectDistro(root, 'linux', LINUX);
    assert.deepEqual([d.id, d.version, d.fullName], ['mariner', '2.0.20240123', 'Common Base Linux Mariner']);
  });
  withRoot({ '/etc/os-release': 'NAME="Common Base Linux Mariner"\nID=mariner\nVERSION_ID="1.0"\n',
    '/etc/mariner-release': 'CBL-Mariner 1.0.20220226\n' }, (root) => {
    assert.equal(detectDistro(root, 'linux', LINUX).version, '1.0.20220226');
  });
  withRoot({ '/etc/os-release': 'NAME="Microsoft Azure Linux"\nID=azurelinux\nVERSION_ID="3.0"\nVERSION="3.0.20240824"\n' }, (root) => {
    const d = detectDistro(root, 'linux', LINUX);
    assert.deepEqual([d.id, d.version], ['azurelinux', '3.0.20240824']);
  });
  // Other distros keep VERSION_ID even when VERSION is more precise.
  withRoot({ '/etc/os-release': UBUNTU }, (root) => { assert.equal(detectDistro(root, 'linux', LINUX).version, '22.04'); });
});

test('/etc/motd containing snappy: full name Snappy Ubuntu Core', () => {
  withRoot({ '/etc/os-release': UBUNTU, '/etc/motd': 'Welcome to snappy Ubuntu Core\n' }, (root) => {
    const d = detectDistro(root, 'linux', LINUX);
    assert.deepEqual([d.id, d.fullName], ['ubuntu', 'Snappy Ubuntu Core']);
  });
  withRoot({ '/etc/os-release': UBUNTU, '/etc/motd': 'Welcome\n' }, (root) => {
    assert.equal(detectDistro(root, 'linux', LINUX).fullName, 'Ubuntu');
  });
});
