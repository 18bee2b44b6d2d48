// Root only: attach an ISO9660 image (xorriso) and a UDF image (genisoimage -udf when installed, else the ECMA-167
// builder of the unit tests) read-only to loop devices and read ovf-env.xml through the block device with the
// readers — the same path the agent takes on /dev/sr0 — then detach. Also checks the size comes from sysfs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { openBoundedReader } from '../../src/provision/iso9660';
import { isUdf, readUdfFile } from '../../src/provision/udf';
import { readOvfFromDevice } from '../../src/provision/dvd';
import { buildUdf, UDF_XML } from '../unit/udf-builder';

const isRoot = process.getuid?.() === 0;
const have = (p: string) => { try { execFileSync('sh', ['-c', `command -v ${p}`], { stdio: 'ignore' }); return true; } catch { return false; } };
const XML = '<?xml version="1.0"?><Environment xmlns="http://schemas.dmtf.org/ovf/environment/1">loop ✓</Environment>';

function withLoop(image: string, fn: (dev: string) => void): void {
  const dev = execFileSync('losetup', ['-f', '--show', '-r', image], { encoding: 'utf8' }).trim();
  try {
    assert.match(dev, /^\/dev\/loop\d+$/);
    fn(dev);
  } finally {
    execFileSync('losetup', ['-d', dev]);
  }
}

const skip = !isRoot ? 'needs root' : !have('losetup') ? 'losetup not installed' : !fs.existsSync('/dev/loop-control') ? 'no /dev/loop-control' : false;

test('ovf-env.xml from an ISO9660 image on a loop device', { skip: skip || (!have('xorriso') && 'xorriso not installed') }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvdloop-'));
  try {
    fs.mkdirSync(path.join(dir, 's'));
    fs.writeFileSync(path.join(dir, 's', 'ovf-env.xml'), XML);
    const img = path.join(dir, 'ovf.iso');
    execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-J', '-R', '-o', img, path.join(dir, 's')], { stdio: 'ignore' });
    withLoop(img, (dev) => {
      const r = openBoundedReader(dev);
      try { assert.equal(r.size, fs.statSync(img).size); } finally { r.close(); }
      // Without sysfs the size is found by probing reads.
      const probe = openBoundedReader(dev, path.join(dir, 'no-sys'));
      try { assert.equal(probe.size, fs.statSync(img).size); } finally { probe.close(); }
      assert.equal(readOvfFromDevice(dev).toString('utf8'), XML);
    });
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('ovf-env.xml from a UDF image on a loop device', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvdloop-'));
  try {
    const img = path.join(dir, 'ovf.udf');
    let expected = UDF_XML;
    if (have('genisoimage')) {
      fs.mkdirSync(path.join(dir, 's'));
      fs.writeFileSync(path.join(dir, 's', 'ovf-env.xml'), XML);
      execFileSync('genisoimage', ['-quiet', '-udf', '-o', img, path.join(dir, 's')], { stdio: 'ignore' });
      expected = XML;
    } else {
      fs.writeFileSync(img, buildUdf({ entry: 'efe', ad: 'long' }));
    }
    withLoop(img, (dev) => {
      const r = openBoundedReader(dev);
      try { assert.ok(isUdf(r)); assert.equal(readUdfFile(r).toString('utf8'), expected); } finally { r.close(); }
      assert.equal(readOvfFromDevice(dev).toString('utf8'), expected);
    });
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});
