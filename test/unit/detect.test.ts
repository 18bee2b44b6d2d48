import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseOsRelease, distroFromOsRelease, detectDistro } from '../../src/os/detect';
import { SysRoot } from '../../src/core/sysroot';

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
  assert.deepEqual(u, { id: 'ubuntu', like: ['debian'], version: '22.04', codename: 'jammy', fullName: 'Ubuntu 22.04.4 LTS', name: 'ubuntu' });
  const r = distroFromOsRelease(parseOsRelease(RHEL));
  assert.deepEqual([r.id, r.version, r.like], ['rhel', '9.4', ['fedora']]);
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
  assert.equal(detectDistro(root, 'linux').id, 'unknown');
  fs.mkdirSync(path.join(dir, 'usr/lib'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'usr/lib/os-release'), RHEL);
  assert.equal(detectDistro(root, 'linux').id, 'rhel');
  fs.mkdirSync(path.join(dir, 'etc'));
  fs.writeFileSync(path.join(dir, 'etc/os-release'), UBUNTU);
  assert.equal(detectDistro(root, 'linux').id, 'ubuntu');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('detectDistro on a BSD without os-release: the kernel name and release without its suffix', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-detect-'));
  const d = detectDistro(new SysRoot(dir), 'freebsd');
  assert.equal(d.id, 'freebsd');
  assert.equal(d.version, os.release().replace(/-.*$/, ''));
  fs.rmSync(dir, { recursive: true, force: true });
});
