import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { makeBed, TEST_UID } from './provision-helpers';
import { ensureUser } from '../../src/provision/steps/user';
import { applyPassword } from '../../src/provision/steps/password';
import { applySudoers } from '../../src/provision/steps/sudoers';
import { applyHostname } from '../../src/provision/steps/hostname';
import { deployPublicKeys, deployKeyPairs, normaliseKeyPath } from '../../src/provision/steps/ssh-keys';
import { applyCustomData } from '../../src/provision/steps/customdata';
import { applyRootPasswordLock } from '../../src/provision/steps/root-password';
import { applyHostKeys, parseFingerprint } from '../../src/provision/steps/host-keys';
import { checkMarker, sameInstanceId, writeMarker } from '../../src/provision/marker';
import { provisioningMode } from '../../src/provision/mode';
import { Config } from '../../src/config/config';
import { log, memoryAppender } from '../../src/core/log';
import { osClassFor } from '../../src/os/factory';
import { swapUuid } from '../../src/os/linux';
import { cryptPassword } from '../../src/crypto/password-crypt';

const calls = (bed: ReturnType<typeof makeBed>, cmd: string) => bed.run.calls.filter((c) => c.argv[0] === cmd);
const hasOpenssl = (() => { try { execFileSync('openssl', ['version'], { stdio: 'ignore' }); return true; } catch { return false; } })();

test('user: useradd -m <name>, then skipped when it exists; hostile names refused before any command', async () => {
  const bed = makeBed();
  try {
    const u = await ensureUser(bed.ctx, 'azureuser');
    assert.deepEqual(calls(bed, 'useradd').map((c) => c.argv), [['useradd', '-m', 'azureuser']]);
    assert.equal(u.created, true);
    assert.equal(u.home, '/home/azureuser');
    assert.equal((await ensureUser(bed.ctx, 'azureuser')).created, false);
    assert.equal(calls(bed, 'useradd').length, 1);
    for (const bad of ['-o', 'a;b', '../x', 'x'.repeat(40), 'root bob']) await assert.rejects(ensureUser(bed.ctx, bad), /Invalid UserName/);
    assert.equal(calls(bed, 'useradd').length, 1);
    assert.equal(bed.ctx.os.isSystemUser('sshd'), true);
    assert.equal(bed.ctx.os.isSystemUser('azureuser'), TEST_UID < 1000);
  } finally { bed.cleanup(); }
});

test('password: hash on chpasswd stdin only, shadow updated, rerun does nothing, system users and bad ids refused', async () => {
  const bed = makeBed({ 'Provisioning.PasswordCryptId': '6', 'Provisioning.PasswordCryptSaltLength': '12', 'Provisioning.AllowResetSysUser': 'y' });
  try {
    await ensureUser(bed.ctx, 'azureuser');
    assert.equal(await applyPassword(bed.ctx, 'azureuser', 'S3cret pass'), true);
    const [c] = calls(bed, 'chpasswd');
    assert.deepEqual(c.argv, ['chpasswd', '-e']);
    const input = String(c.opts.input);
    const hash = input.trim().slice('azureuser:'.length);
    assert.match(hash, /^\$6\$[A-Za-z0-9]{12}\$[./0-9A-Za-z]{86}$/);
    assert.equal(cryptPassword('S3cret pass', '6', hash.split('$')[2]), hash);
    for (const call of bed.run.calls) assert.ok(!call.argv.some((a) => a.includes(hash) || a.includes('S3cret')), 'no secret on argv');
    assert.ok(bed.read('/etc/shadow').includes(`azureuser:${hash}:`));
    assert.equal(await applyPassword(bed.ctx, 'azureuser', 'S3cret pass'), false, 'rerun: same password already set');
    assert.equal(calls(bed, 'chpasswd').length, 1);
  } finally { bed.cleanup(); }
  const strict = makeBed({ 'Provisioning.PasswordCryptId': '2a' });
  try {
    await assert.rejects(applyPassword(strict.ctx, 'sshd', 'x'), /User sshd is a system user, will not set password/);
    fs.appendFileSync(strict.p('/etc/passwd'), 'bob:x:5000:5000::/home/bob:/bin/sh\n');
    await assert.rejects(applyPassword(strict.ctx, 'bob', 'x'), /Unsupported Provisioning.PasswordCryptId '2a'/);
  } finally { strict.cleanup(); }
});

test('password: a failing chpasswd reports the output without the hash', async () => {
  const bed = makeBed({}, (argv, opts) => (argv[0] === 'chpasswd' ? { code: 1, stderr: `chpasswd: bad line ${String(opts.input)}` } : undefined));
  try {
    fs.appendFileSync(bed.p('/etc/passwd'), 'bob:x:5000:5000::/home/bob:/bin/sh\n');
    await assert.rejects(applyPassword(bed.ctx, 'bob', 'pw123'), (e: Error) => /Failed to set password for bob/.test(e.message) && !/\$6\$/.test(e.message));
  } finally { bed.cleanup(); }
});

test('sudoers: line appended once, mode 0440; password vs NOPASSWD; missing dir gets #includedir', async () => {
  const bed = makeBed();
  try {
    assert.equal(await applySudoers(bed.ctx, 'azureuser', true), true);
    assert.equal(bed.read('/etc/sudoers.d/waagent'), 'azureuser ALL=(ALL) NOPASSWD: ALL\n');
    assert.equal(bed.mode('/etc/sudoers.d/waagent'), 0o440);
    assert.equal(await applySudoers(bed.ctx, 'azureuser', true), false);
    assert.equal(await applySudoers(bed.ctx, 'bob', false), true);
    assert.equal(bed.read('/etc/sudoers.d/waagent'), 'azureuser ALL=(ALL) NOPASSWD: ALL\nbob ALL=(ALL) ALL\n');
    // deleteAccount removes by first token only.
    fs.appendFileSync(bed.p('/etc/passwd'), 'bob:x:5000:5000::/home/bob:/bin/sh\n');
    fs.chmodSync(bed.p('/etc/sudoers.d/waagent'), 0o640);
    fs.appendFileSync(bed.p('/etc/sudoers.d/waagent'), 'bobby ALL=(ALL) ALL\n');
    fs.chmodSync(bed.p('/etc/sudoers.d/waagent'), 0o440);
    fs.mkdirSync(bed.p('/var/run'), { recursive: true });
    await bed.ctx.os.deleteAccount('bob');
    assert.deepEqual(calls(bed, 'userdel').map((c) => c.argv), [['userdel', '-f', '-r', 'bob']]);
    assert.equal(bed.read('/etc/sudoers.d/waagent'), 'azureuser ALL=(ALL) NOPASSWD: ALL\nbobby ALL=(ALL) ALL\n');
    assert.ok(fs.existsSync(bed.p('/var/run/utmp')));
    await bed.ctx.os.deleteAccount('sshd');
    assert.equal(calls(bed, 'userdel').length, 1, 'system users are never deleted');
  } finally { bed.cleanup(); }
  const nodir = makeBed({ 'OS.SudoersDir': '/etc/sudoers.x' });
  try {
    await applySudoers(nodir.ctx, 'u1', false);
    assert.equal(nodir.read('/etc/sudoers'), 'root ALL=(ALL) ALL\n\n#includedir /etc/sudoers.x\n');
    assert.equal(nodir.read('/etc/sudoers.x/waagent'), 'u1 ALL=(ALL) ALL\n');
  } finally { nodir.cleanup(); }
});

test('hostname: /etc/hostname + hostname <n> + published_hostname; rerun unchanged', async () => {
  const bed = makeBed();
  try {
    assert.equal(await applyHostname(bed.ctx, 'vm-01'), true);
    assert.equal(bed.read('/etc/hostname'), 'vm-01\n');
    assert.deepEqual(calls(bed, 'hostname').map((c) => c.argv), [['hostname', 'vm-01']]);
    assert.equal(bed.read('/var/lib/waagent/published_hostname'), 'vm-01');
    const n = bed.run.calls.length;
    assert.equal(await applyHostname(bed.ctx, 'vm-01'), false);
    assert.equal(bed.run.calls.length, n);
  } finally { bed.cleanup(); }
});

test('publishHostname prefers networkctl renew over the interface bounce (D17); bounce only as last resort', async () => {
  const bed = makeBed({}, (argv) => {
    if (argv[0] === 'systemctl' && argv[1] === 'is-active' && argv[2] === 'systemd-networkd') return { stdout: 'active\n' };
    return undefined;
  });
  try {
    fs.mkdirSync(bed.p('/usr/bin'), { recursive: true });
    fs.writeFileSync(bed.p('/usr/bin/networkctl'), '', { mode: 0o755 });
    fs.mkdirSync(bed.p('/run/systemd/system'), { recursive: true }); // systemd is running (sd_booted)
    fs.mkdirSync(bed.p('/proc/net'), { recursive: true });
    fs.writeFileSync(bed.p('/proc/net/route'), 'Iface\tDestination\tGateway\neth7\t00000000\t0100000A\n');
    await bed.ctx.os.publishHostname('vm-02');
    assert.deepEqual(calls(bed, 'networkctl').map((c) => c.argv), [['networkctl', 'renew', 'eth7']]);
    assert.equal(calls(bed, 'ifdown').length, 0);
  } finally { bed.cleanup(); }
  const plain = makeBed();
  try {
    await plain.ctx.os.publishHostname('vm-03');
    assert.ok(calls(plain, 'ifdown').length >= 1 && calls(plain, 'ifup').length >= 1);
  } finally { plain.cleanup(); }
});

test('publish host name via dhclient: the running client\'s -pf/-lf are reused (no second client); another interface\'s client is left alone', async () => {
  const proc = (bed: ReturnType<typeof makeBed>, pid: number, argv: string[]) => {
    fs.mkdirSync(bed.p(`/proc/${pid}`), { recursive: true });
    fs.writeFileSync(bed.p(`/proc/${pid}/comm`), `${path.basename(argv[0])}\n`);
    fs.writeFileSync(bed.p(`/proc/${pid}/cmdline`), `${argv.join('\0')}\0`);
  };
  const setup = (bed: ReturnType<typeof makeBed>) => {
    fs.mkdirSync(bed.p('/usr/sbin'), { recursive: true });
    fs.writeFileSync(bed.p('/usr/sbin/dhclient'), '', { mode: 0o755 });
    fs.mkdirSync(bed.p('/proc/net'), { recursive: true });
    fs.writeFileSync(bed.p('/proc/net/route'), 'Iface\tDestination\tGateway\neth0\t00000000\t0100000A\n');
  };
  const bed = makeBed();
  try {
    setup(bed);
    proc(bed, 412, ['/sbin/dhclient', '-1', '-4', '-v', '-i', '-pf', '/run/dhclient.eth0.pid', '-lf', '/var/lib/dhcp/dhclient.eth0.leases', '-I', '-df', '/var/lib/dhcp/dhclient6.eth0.leases', 'eth0']);
    await bed.ctx.os.publishHostname('vm-04');
    assert.deepEqual(calls(bed, 'dhclient').map((c) => c.argv), [
      ['dhclient', '-x', '-pf', '/run/dhclient.eth0.pid', '-lf', '/var/lib/dhcp/dhclient.eth0.leases', 'eth0'],
      ['dhclient', '-nw', '-pf', '/run/dhclient.eth0.pid', '-lf', '/var/lib/dhcp/dhclient.eth0.leases', 'eth0'],
    ]);
  } finally { bed.cleanup(); }
  const other = makeBed();
  try {
    setup(other);
    proc(other, 77, ['dhclient', '-pf', '/run/dhclient.eth1.pid', 'eth1']);
    await other.ctx.os.publishHostname('vm-05');
    assert.equal(calls(other, 'dhclient').length, 0, 'the client of eth1 is not restarted for eth0');
  } finally { other.cleanup(); }
});

test('ssh public keys: $HOME → OS.HomeDir, append + de-duplicate, 0700 dir and 0600 file owned by the user', async () => {
  const bed = makeBed();
  try {
    const u = await ensureUser(bed.ctx, 'azureuser');
    const user = { name: 'azureuser', ...u };
    const file = '/home/azureuser/.ssh/authorized_keys';
    fs.mkdirSync(bed.p('/home/azureuser/.ssh'), { recursive: true });
    fs.writeFileSync(bed.p(file), 'ssh-rsa EXISTING old@key');
    const keys = [
      { path: '$HOME/azureuser/.ssh/authorized_keys', value: 'ssh-ed25519 AAAAKEY1 a@b\n' },
      { path: '/home/azureuser/.ssh/authorized_keys', value: 'ecdsa-sha2-nistp256 AAAAKEY2 c@d' },
      { path: '/home/azureuser/.ssh/../.ssh/authorized_keys', value: 'ssh-ed25519 AAAAKEY1 a@b' },
    ];
    assert.equal(await deployPublicKeys(bed.ctx, user, keys), 2);
    assert.equal(bed.read(file), 'ssh-rsa EXISTING old@key\nssh-ed25519 AAAAKEY1 a@b\necdsa-sha2-nistp256 AAAAKEY2 c@d\n');
    assert.equal(bed.mode(file), 0o600);
    assert.equal(bed.mode('/home/azureuser/.ssh'), 0o700);
    assert.equal(fs.statSync(bed.p(file)).uid, TEST_UID);
    const ino = fs.statSync(bed.p(file)).ino;
    assert.equal(await deployPublicKeys(bed.ctx, user, keys), 0, 'rerun adds nothing');
    assert.equal(fs.statSync(bed.p(file)).ino, ino, 'rerun does not rewrite');
  } finally { bed.cleanup(); }
});

test('ssh public keys: hostile paths, bad keys and symlinks are refused', async () => {
  const bed = makeBed();
  try {
    const u = await ensureUser(bed.ctx, 'azureuser');
    const user = { name: 'azureuser', ...u };
    for (const p of ['/etc/passwd', '$HOME/../etc/shadow', '/root/.ssh/authorized_keys', 'relative/keys', '/home', '$HOME/azureuser/../../etc/x']) {
      await assert.rejects(deployPublicKeys(bed.ctx, user, [{ path: p, value: 'ssh-rsa AAAA x' }]), /refused|not absolute|outside/, p);
    }
    assert.throws(() => normaliseKeyPath(bed.ctx, user, undefined), /Public key path is None/);
    for (const v of ['rm -rf /', 'ssh-rsa AAA\nssh-rsa BBB', 'command="x" ssh-rsa AAA']) {
      await assert.rejects(deployPublicKeys(bed.ctx, user, [{ path: '/home/azureuser/.ssh/authorized_keys', value: v }]), /Bad public key/);
    }
    fs.mkdirSync(bed.p('/home/azureuser/.ssh'), { recursive: true });
    fs.symlinkSync('/etc/shadow', bed.p('/home/azureuser/.ssh/authorized_keys'));
    await assert.rejects(deployPublicKeys(bed.ctx, user, [{ path: '/home/azureuser/.ssh/authorized_keys', value: 'ssh-rsa AAAA x' }]), /symbolic link/);
    await assert.rejects(deployPublicKeys(bed.ctx, user, [{ path: '/home/azureuser/.ssh/k2' }]), /SSH public key Fingerprint and Value are None/);
    assert.ok(!fs.readFileSync(bed.p('/etc/shadow'), 'utf8').includes('ssh-rsa'));
  } finally { bed.cleanup(); }
});

test('ssh public keys: OS.HomeDir itself, another user\'s home, a symlink below the home and .. are refused; nothing changes', async () => {
  const bed = makeBed();
  try {
    const u = await ensureUser(bed.ctx, 'azureuser');
    const user = { name: 'azureuser', ...u };
    await ensureUser(bed.ctx, 'bob');
    fs.mkdirSync(bed.p('/home/bob/.ssh'), { recursive: true, mode: 0o755 });
    fs.chmodSync(bed.p('/home'), 0o755);
    fs.chmodSync(bed.p('/home/bob'), 0o755);
    const before = () => [bed.mode('/home'), bed.mode('/home/bob'), bed.mode('/home/bob/.ssh')];
    const b0 = before();
    const key = 'ssh-ed25519 AAAAHOSTILE x@y';
    for (const p of ['$HOME/authorized_keys', '/home/authorized_keys', '$HOME/bob/.ssh/authorized_keys', '/home/bob/authorized_keys',
      '/home/azureuser/../bob/.ssh/authorized_keys', '$HOME/azureuser/../authorized_keys', '/home/azureuser/../../home/keys']) {
      await assert.rejects(deployPublicKeys(bed.ctx, user, [{ path: p, value: key }]), /refused|outside/, p);
      await assert.rejects(deployKeyPairs(bed.ctx, user, [{ path: p, fingerprint: 'AB' }]), /refused|outside/, p);
    }
    assert.deepEqual(before(), b0, 'no mode of /home or another home changed');
    assert.ok(!fs.existsSync(bed.p('/home/authorized_keys')) && !fs.existsSync(bed.p('/home/bob/.ssh/authorized_keys')));
    // A symbolic link below the home (the user points .ssh at another directory): refused, the target untouched.
    fs.mkdirSync(bed.p('/etc/target'), { mode: 0o755 });
    fs.mkdirSync(bed.p('/home/azureuser'), { recursive: true });
    fs.symlinkSync(bed.p('/etc/target'), bed.p('/home/azureuser/.ssh'));
    await assert.rejects(deployPublicKeys(bed.ctx, user, [{ path: '/home/azureuser/.ssh/authorized_keys', value: key }]), /symbolic link/);
    fs.unlinkSync(bed.p('/home/azureuser/.ssh'));
    fs.mkdirSync(bed.p('/home/azureuser/sub'), { recursive: true });
    fs.symlinkSync(bed.p('/etc'), bed.p('/home/azureuser/sub/link'));
    await assert.rejects(deployPublicKeys(bed.ctx, user, [{ path: '/home/azureuser/sub/link/target/keys', value: key }]), /symbolic link/);
    assert.equal(bed.mode('/etc/target'), 0o755);
    assert.equal(fs.readdirSync(bed.p('/etc/target')).length, 0);
    // The legitimate path still works.
    assert.equal(await deployPublicKeys(bed.ctx, user, [{ path: '$HOME/azureuser/.ssh/authorized_keys', value: key }]), 1);
  } finally { bed.cleanup(); }
});

test('ssh keys by fingerprint from <FP>.crt, IMDS fallback, and key pairs (0600/0644, OpenSSH public half)', { skip: hasOpenssl ? false : 'openssl not installed' }, async () => {
  const bed = makeBed();
  const tmp = fs.mkdtempSync(path.join(bed.dir, 'gen-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${tmp}/k.prv`, '-out', `${tmp}/k.crt`, '-subj', '/CN=test', '-days', '1'], { stdio: 'ignore' });
    const FP = 'AB12CD34';
    fs.copyFileSync(`${tmp}/k.crt`, bed.p(`/var/lib/waagent/${FP}.crt`));
    fs.copyFileSync(`${tmp}/k.prv`, bed.p(`/var/lib/waagent/${FP}.prv`));
    const expected = execFileSync('ssh-keygen', ['-y', '-f', `${tmp}/k.prv`]).toString().trim().split(' ').slice(0, 2).join(' ');
    const u = await ensureUser(bed.ctx, 'azureuser');
    const user = { name: 'azureuser', ...u };
    await deployPublicKeys(bed.ctx, user, [{ path: '$HOME/azureuser/.ssh/authorized_keys', fingerprint: FP }]);
    assert.equal(bed.read('/home/azureuser/.ssh/authorized_keys').trim().split(' ').slice(0, 2).join(' '), expected);
    assert.match(bed.read(`/var/lib/waagent/${FP}.pub`), /BEGIN PUBLIC KEY/);
    assert.equal(bed.mode(`/var/lib/waagent/${FP}.pub`), 0o600);
    // Missing certificate → IMDS keys for the same path.
    let imdsCalls = 0;
    await deployPublicKeys(bed.ctx, user, [{ path: '/home/azureuser/.ssh/other_keys', fingerprint: 'FFFF' }], {
      getImdsPublicKeys: async () => { imdsCalls++; return [{ keyData: 'ssh-rsa IMDSKEY x', path: '/home/azureuser/.ssh/other_keys' }, { keyData: 'ssh-rsa NOTME', path: '/home/azureuser/.ssh/zzz' }]; },
    });
    assert.equal(imdsCalls, 1);
    assert.equal(bed.read('/home/azureuser/.ssh/other_keys'), 'ssh-rsa IMDSKEY x\n');
    await assert.rejects(deployPublicKeys(bed.ctx, user, [{ path: '/home/azureuser/.ssh/k3', fingerprint: 'EEEE' }], { getImdsPublicKeys: async () => [] }), /Can't find EEEE.crt/);
    // Key pair.
    assert.equal(await deployKeyPairs(bed.ctx, user, [{ path: '$HOME/azureuser/.ssh/id_rsa', fingerprint: FP }]), 2);
    assert.equal(bed.read('/home/azureuser/.ssh/id_rsa'), fs.readFileSync(`${tmp}/k.prv`, 'utf8'));
    assert.equal(bed.mode('/home/azureuser/.ssh/id_rsa'), 0o600);
    assert.equal(bed.mode('/home/azureuser/.ssh/id_rsa.pub'), 0o644);
    assert.equal(fs.statSync(bed.p('/home/azureuser/.ssh/id_rsa')).uid, TEST_UID);
    assert.equal(bed.read('/home/azureuser/.ssh/id_rsa.pub').trim().split(' ').slice(0, 2).join(' '), expected);
    assert.equal(await deployKeyPairs(bed.ctx, user, [{ path: '$HOME/azureuser/.ssh/id_rsa', fingerprint: FP }]), 0, 'rerun');
    await assert.rejects(deployKeyPairs(bed.ctx, user, [{ path: '$HOME/azureuser/.ssh/id2', fingerprint: 'DEAD' }]), /Can't find DEAD.prv/);
  } finally { bed.cleanup(); }
});

test('customdata: saved 0600 as given; decoded with DecodeCustomData; executed with ExecuteCustomData; bad base64 fails', async () => {
  const raw = makeBed();
  try {
    assert.equal(await applyCustomData(raw.ctx, 'IyEvYmluL3NoCmVjaG8gaGk='), true);
    assert.equal(raw.read('/var/lib/waagent/CustomData'), 'IyEvYmluL3NoCmVjaG8gaGk=');
    assert.equal(raw.mode('/var/lib/waagent/CustomData'), 0o600);
    assert.equal(await applyCustomData(raw.ctx, undefined), false);
    assert.equal(raw.run.calls.length, 0);
  } finally { raw.cleanup(); }
  const exec = makeBed({ 'Provisioning.ExecuteCustomData': 'y' });
  try {
    await applyCustomData(exec.ctx, 'IyEvYmluL3NoCmVjaG8gaGk=', 1234);
    assert.equal(exec.read('/var/lib/waagent/CustomData'), '#!/bin/sh\necho hi');
    assert.equal(exec.mode('/var/lib/waagent/CustomData'), 0o700);
    const [c] = exec.run.calls;
    assert.deepEqual(c.argv, ['/var/lib/waagent/CustomData']);
    assert.equal(c.opts.cwd, '/var/lib/waagent');
    assert.equal(c.opts.timeoutMs, 1234);
    await assert.rejects(applyCustomData(exec.ctx, '!!!not base64!!!'), /not valid base64/);
    await assert.rejects(applyCustomData(exec.ctx, Buffer.from([0xff, 0xfe, 0x80]).toString('base64')), /not valid UTF-8/);
  } finally { exec.cleanup(); }
});

test('customdata: the output goes to <Lib.Dir>/CustomData.out (0600), never to the log (world-readable, console)', async () => {
  const out = 'token=VERY-SECRET-OUTPUT\n'.repeat(10);
  const bed = makeBed({ 'Provisioning.ExecuteCustomData': 'y' }, (argv) => (argv[0] === '/var/lib/waagent/CustomData' ? { stdout: out, stderr: 'ERR-SECRET\n' } : undefined));
  const mem = memoryAppender();
  log.addAppender(mem);
  try {
    await applyCustomData(bed.ctx, Buffer.from('#!/bin/sh\necho hi\n').toString('base64'));
    assert.ok(!mem.lines.some((l) => l.includes('VERY-SECRET') || l.includes('ERR-SECRET')), mem.lines.join(''));
    assert.ok(mem.lines.some((l) => l.includes('/var/lib/waagent/CustomData.out')));
    assert.equal(bed.mode('/var/lib/waagent/CustomData.out'), 0o600);
    const saved = bed.read('/var/lib/waagent/CustomData.out');
    assert.ok(saved.includes(out) && saved.includes('ERR-SECRET'));
  } finally { log.removeAppender(mem); bed.cleanup(); }
});

test('root password lock: root line first as *LOCK*, mode kept, idempotent; off by default', async () => {
  const off = makeBed();
  try { assert.equal(await applyRootPasswordLock(off.ctx), false); assert.match(off.read('/etc/shadow'), /^root:\$6\$old/); } finally { off.cleanup(); }
  const bed = makeBed({ 'Provisioning.DeleteRootPassword': 'y' });
  try {
    fs.writeFileSync(bed.p('/etc/shadow'), 'daemon:*:1::::::\nroot:$6$x$y:19000:0:99999:7:::\n');
    fs.chmodSync(bed.p('/etc/shadow'), 0o640);
    await applyRootPasswordLock(bed.ctx);
    assert.equal(bed.read('/etc/shadow'), 'root:*LOCK*:14600::::::\ndaemon:*:1::::::\n');
    assert.equal(bed.mode('/etc/shadow'), 0o640);
    const ino = fs.statSync(bed.p('/etc/shadow')).ino;
    await applyRootPasswordLock(bed.ctx);
    assert.equal(fs.statSync(bed.p('/etc/shadow')).ino, ino);
  } finally { bed.cleanup(); }
});

test('host keys: regenerated in-process (readable by ssh-keygen), fingerprint as ssh-keygen -lf, failures only logged', async () => {
  assert.equal(parseFingerprint('3072 SHA256:AbC:d root@h (RSA)'), 'SHA256AbCd');
  assert.equal(parseFingerprint('2048 aa:bb:cc root@h (RSA)'), 'aabbcc');
  const bed = makeBed({ 'Provisioning.RegenerateSshHostKeyPair': 'y', 'Provisioning.SshHostKeyPairType': 'ed25519' });
  try {
    fs.writeFileSync(bed.p('/etc/ssh/ssh_host_ecdsa_key'), 'x');
    const fp = await applyHostKeys(bed.ctx, 'vm1');
    assert.equal(fs.existsSync(bed.p('/etc/ssh/ssh_host_ecdsa_key')), false, 'old keys deleted');
    assert.ok(fs.existsSync(bed.p('/etc/ssh/sshd_config')), 'sshd_config kept');
    assert.equal(bed.mode('/etc/ssh/ssh_host_ed25519_key'), 0o600);
    assert.equal(bed.mode('/etc/ssh/ssh_host_ed25519_key.pub'), 0o644);
    const pub = bed.read('/etc/ssh/ssh_host_ed25519_key.pub');
    assert.match(pub, /^ssh-ed25519 \S+ root@vm1\n$/);
    let lf: string | undefined;
    try { lf = execFileSync('ssh-keygen', ['-lf', bed.p('/etc/ssh/ssh_host_ed25519_key.pub')]).toString(); } catch { lf = undefined; }
    if (lf) assert.equal(fp, parseFingerprint(lf));
    else assert.match(fp ?? '', /^SHA256[A-Za-z0-9+/]{43}$/);
    assert.deepEqual(bed.run.calls.map((c) => c.argv[0]).filter((c) => c === 'ssh-keygen'), [], 'no ssh-keygen for ed25519');
  } finally { bed.cleanup(); }
  const noKey = makeBed({});
  try {
    fs.rmSync(noKey.p('/etc/ssh/ssh_host_rsa_key.pub'), { force: true });
    assert.equal(await applyHostKeys(noKey.ctx), undefined);
  } finally { noKey.cleanup(); }
});

test('marker: instance id from product_uuid byte-swapped; comparison in both orders, any case', async () => {
  assert.equal(swapUuid('544CDFD0-CB4E-4B4A-9954-5BDF3ED5C3B8'), 'D0DF4C54-4ECB-4A4B-9954-5BDF3ED5C3B8');
  assert.ok(sameInstanceId('d0df4c54-4ecb-4a4b-9954-5bdf3ed5c3b8', 'D0DF4C54-4ECB-4A4B-9954-5BDF3ED5C3B8'));
  assert.ok(sameInstanceId('544CDFD0-CB4E-4B4A-9954-5BDF3ED5C3B8', 'D0DF4C54-4ECB-4A4B-9954-5BDF3ED5C3B8'));
  assert.ok(!sameInstanceId('00000000-CB4E-4B4A-9954-5BDF3ED5C3B8', 'D0DF4C54-4ECB-4A4B-9954-5BDF3ED5C3B8'));
  const bed = makeBed();
  try {
    fs.mkdirSync(bed.p('/sys/class/dmi/id'), { recursive: true });
    fs.writeFileSync(bed.p('/sys/class/dmi/id/product_uuid'), '544CDFD0-CB4E-4B4A-9954-5BDF3ED5C3B8\n');
    assert.equal((await checkMarker(bed.ctx)).state, 'absent');
    await writeMarker(bed.ctx);
    assert.equal(bed.read('/var/lib/waagent/provisioned'), 'D0DF4C54-4ECB-4A4B-9954-5BDF3ED5C3B8');
    assert.equal(bed.mode('/var/lib/waagent/provisioned'), 0o600);
    assert.equal((await checkMarker(bed.ctx)).state, 'same');
    fs.writeFileSync(bed.p('/var/lib/waagent/provisioned'), '');
    assert.equal((await checkMarker(bed.ctx)).state, 'empty');
    fs.writeFileSync(bed.p('/var/lib/waagent/provisioned'), '11111111-2222-3333-4444-555555555555');
    assert.equal((await checkMarker(bed.ctx)).state, 'changed');
  } finally { bed.cleanup(); }
  const dmi = makeBed({}, (argv) => (argv[0] === 'dmidecode' ? { stdout: 'not a uuid\n' } : undefined));
  try { assert.equal(await dmi.ctx.os.getInstanceId(), ''); } finally { dmi.cleanup(); }
});

test('mode (§3.2, D29): Provisioning.Enabled decides when present; else Provisioning.Agent, auto asks the OS', async () => {
  const cases: [Record<string, string>, boolean, string][] = [
    [{ 'Provisioning.Enabled': 'y', 'Provisioning.UseCloudInit': 'y' }, true, 'builtin'],
    [{ 'Provisioning.Enabled': 'n', 'Provisioning.UseCloudInit': 'y' }, false, 'cloud-init'],
    [{ 'Provisioning.Enabled': 'n' }, true, 'disabled'],
    [{ 'Provisioning.Agent': 'waagent' }, true, 'builtin'],
    [{ 'Provisioning.Agent': 'cloud-init' }, false, 'cloud-init'],
    [{ 'Provisioning.Agent': 'disabled' }, true, 'disabled'],
    [{}, true, 'cloud-init'],
    [{}, false, 'builtin'],
  ];
  for (const [conf, ciEnabled, want] of cases) {
    const bed = makeBed(conf, (argv) => (argv[0] === 'systemctl' && argv[1] === 'is-enabled' ? { stdout: ciEnabled ? 'enabled\n' : 'disabled\n' } : undefined));
    try { assert.equal(await provisioningMode(bed.ctx), want, JSON.stringify(conf) + ciEnabled); } finally { bed.cleanup(); }
  }
});

test('mode: the shipped init/waagent.conf leaves the choice to auto (no two provisioners); forcing built-in while cloud-init is enabled warns', async () => {
  const shipped = Config.parse(fs.readFileSync(path.join(__dirname, '../../../init/waagent.conf'), 'utf8'), 'init/waagent.conf');
  assert.equal(shipped.has('Provisioning.Enabled'), false, 'the shipped file must not set Provisioning.Enabled (it overrides auto, D29)');
  assert.equal(shipped.has('Provisioning.UseCloudInit'), false);
  assert.equal(shipped.str('Provisioning.Agent'), 'auto');
  const values = Object.fromEntries(shipped.values);
  for (const [ciEnabled, want] of [[true, 'cloud-init'], [false, 'builtin']] as const) {
    const bed = makeBed(values, (argv) => (argv[0] === 'systemctl' && argv[1] === 'is-enabled' ? { stdout: ciEnabled ? 'enabled\n' : 'disabled\n' } : undefined));
    try { assert.equal(await provisioningMode(bed.ctx), want, `shipped config, cloud-init enabled=${ciEnabled}`); } finally { bed.cleanup(); }
  }
  const mem = memoryAppender();
  log.addAppender(mem);
  try {
    for (const [conf, ciEnabled, warns] of [[{ 'Provisioning.Enabled': 'y' }, true, true], [{ 'Provisioning.Agent': 'waagent' }, true, true],
      [{ 'Provisioning.Enabled': 'y' }, false, false], [{}, false, false]] as const) {
      mem.lines.length = 0;
      const bed = makeBed({ ...conf }, (argv) => (argv[0] === 'systemctl' && argv[1] === 'is-enabled' ? { stdout: ciEnabled ? 'enabled\n' : 'disabled\n' } : undefined));
      try {
        assert.equal(await provisioningMode(bed.ctx), 'builtin');
        const warned = mem.lines.some((l) => / WARNING .*cloud-init is enabled/.test(l));
        assert.equal(warned, warns, `${JSON.stringify(conf)} cloud-init enabled=${ciEnabled}: ${mem.lines.join('')}`);
      } finally { bed.cleanup(); }
    }
  } finally { log.removeAppender(mem); }
});

test('password: Provisioning.PasswordCryptSaltLength longer than crypt uses is clamped with a warning, not a failure', async () => {
  const mem = memoryAppender();
  log.addAppender(mem);
  try {
    for (const [id, len, want] of [['6', '20', 16], ['5', '17', 16], ['1', '12', 8], ['6', '0', 10], ['6', '12', 12]] as const) {
      mem.lines.length = 0;
      const bed = makeBed({ 'Provisioning.PasswordCryptSaltLength': len, 'Provisioning.PasswordCryptId': id });
      try {
        await ensureUser(bed.ctx, 'azureuser');
        assert.equal(await applyPassword(bed.ctx, 'azureuser', 'Secret-pw-1'), true, `id ${id} length ${len}`);
        const hash = await bed.ctx.os.hashPassword('Secret-pw-1');
        const salt = hash.split('$')[2];
        assert.equal(salt.length, want, `id ${id} length ${len}: ${salt}`);
        assert.equal(mem.lines.some((l) => / WARNING .*PasswordCryptSaltLength/.test(l)), String(want) !== len, mem.lines.join(''));
      } finally { bed.cleanup(); }
    }
  } finally { log.removeAppender(mem); }
});

test('writeSystemFile: an existing parent directory keeps its mode; a missing one is created 0755', async () => {
  const bed = makeBed();
  try {
    fs.mkdirSync(bed.p('/etc/private'), { mode: 0o700 });
    fs.chmodSync(bed.p('/etc/private'), 0o700);
    await bed.ctx.os.writeSystemFile('/etc/private/file', 'x\n', 0o600);
    assert.equal(bed.mode('/etc/private'), 0o700);
    assert.equal(bed.mode('/etc/private/file'), 0o600);
    await bed.ctx.os.writeSystemFile('/etc/newdir/file', 'y\n', 0o644);
    assert.equal(bed.mode('/etc/newdir'), 0o755);
  } finally { bed.cleanup(); }
});

test('factory: first match wins (§9.2)', () => {
  const d = (id: string, version = '', extra: Record<string, string> = {}) => ({ id, like: [], version, codename: '', fullName: id, name: id, ...extra });
  assert.equal(osClassFor(d('ubuntu', '22.04')).name, 'Ubuntu');
  assert.equal(osClassFor(d('debian', '12')).name, 'Debian');
  assert.equal(osClassFor(d('rhel', '9.2')).name, 'RedHat');
  assert.equal(osClassFor(d('almalinux', '8.8')).name, 'RedHat');
  assert.equal(osClassFor(d('fedora', '39')).name, 'Fedora');
  assert.equal(osClassFor(d('azurelinux', '3.0')).name, 'Mariner');
  assert.equal(osClassFor(d('sles', '15.5')).name, 'SUSE');
  assert.equal(osClassFor(d('flatcar')).name, 'CoreOS');
  assert.equal(osClassFor(d('x', '', { codename: 'coreos' })).name, 'CoreOS');
  assert.equal(osClassFor(d('alpine')).name, 'Alpine');
  assert.equal(osClassFor(d('arch')).name, 'Arch');
  assert.equal(osClassFor(d('x', '', { fullName: 'Clear Linux OS' })).name, 'ClearLinux');
  assert.equal(osClassFor(d('freebsd')).name, 'FreeBSD');
  assert.equal(osClassFor(d('openbsd')).name, 'OpenBSD');
  assert.equal(osClassFor(d('gentoo')).name, 'Default');
});

test('distro commands: Debian sshd restart and services, RedHat hostnamectl, CoreOS core user', async () => {
  const deb = makeBed();
  try {
    await deb.ctx.os.restartSshd();
    await deb.ctx.os.stopAgentService();
    assert.deepEqual(deb.run.calls.map((c) => c.argv), [
      ['systemctl', '--job-mode=ignore-dependencies', 'try-reload-or-restart', 'ssh'],
      ['systemctl', 'stop', 'walinuxagent'],
    ]);
  } finally { deb.cleanup(); }
  const rh = makeBed({}, undefined, { id: 'rhel', version: '9.3' });
  try {
    await rh.ctx.os.setHostname('vm1');
    await rh.ctx.os.restartSshd();
    await rh.ctx.os.registerAgentService();
    assert.deepEqual(rh.run.calls.map((c) => c.argv), [
      ['hostnamectl', 'set-hostname', 'vm1', '--static'], ['systemctl', 'condrestart', 'sshd'], ['systemctl', 'enable', 'waagent'],
    ]);
  } finally { rh.cleanup(); }
  const core = makeBed({}, undefined, { id: 'flatcar' });
  try {
    fs.appendFileSync(core.p('/etc/passwd'), 'core:x:500:500::/home/core:/bin/bash\n');
    assert.equal(core.ctx.os.isSystemUser('core'), false);
    assert.equal(core.ctx.os.isSystemUser('sshd'), true);
  } finally { core.cleanup(); }
});

test('sudoers: visudo checks the new content before it goes live; a rejected entry leaves the file as it was', async () => {
  const seen: string[] = [];
  const bed = makeBed({}, (argv) => {
    if (argv[0] !== 'visudo') return undefined;
    const text = fs.readFileSync(bed.p(argv[2]), 'utf8');
    seen.push(argv[2]);
    return text.includes('bad!user') ? { code: 1, stderr: 'syntax error near line 2' } : { code: 0, stdout: 'parsed OK' };
  });
  try {
    fs.mkdirSync(bed.p('/usr/sbin'), { recursive: true });
    fs.writeFileSync(bed.p('/usr/sbin/visudo'), '', { mode: 0o755 });
    assert.equal(await applySudoers(bed.ctx, 'azureuser', true), true);
    assert.equal(bed.read('/etc/sudoers.d/waagent'), 'azureuser ALL=(ALL) NOPASSWD: ALL\n');
    assert.match(seen[0], /^\/etc\/sudoers\.d\/\.[^/]*$/, 'visudo checked a candidate that #includedir ignores (a name with a dot)');
    await assert.rejects(applySudoers(bed.ctx, 'bad!user', false), /failed validation/);
    assert.equal(bed.read('/etc/sudoers.d/waagent'), 'azureuser ALL=(ALL) NOPASSWD: ALL\n', 'the live file is unchanged');
    assert.deepEqual(fs.readdirSync(bed.p('/etc/sudoers.d')), ['waagent'], 'no candidate left behind');
  } finally { bed.cleanup(); }
});
