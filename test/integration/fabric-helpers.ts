/** Shared set-up for the fabric integration tests: a temp root with Lib.Dir, an AgentContext, a fast clock. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SysRoot } from '../../src/core/sysroot';
import { HostFs } from '../../src/os/os';
import { LinuxOS } from '../../src/os/linux';
import { Config } from '../../src/config/config';
import { recordingRunner } from '../../src/core/exec';
import { log } from '../../src/core/log';
import { realClock, type Clock } from '../../src/core/retry';
import type { AgentContext } from '../../src/context';

export const LIB = '/var/lib/waagent';

/** A clock whose sleeps are capped at `capMs` of real time (backoff logic unchanged, tests fast). */
export function fastClock(capMs = 20): Clock & { sleeps: number[] } {
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => Date.now(),
    random: () => 1,
    sleep: (ms, signal) => { sleeps.push(ms); return realClock.sleep(Math.min(ms, capMs), signal); },
  };
}

export interface TestRoot { dir: string; hostFs: HostFs; ctx: AgentContext; lib: (name: string) => string }

/** A temp root whose `<lib>/WireServerEndpoint` names the simulator (D14). */
export function testRoot(wirePort?: number): TestRoot {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-fabric-'));
  const root = new SysRoot(dir);
  const hostFs = new HostFs(root);
  hostFs.mkdir(LIB, 0o700);
  if (wirePort !== undefined) hostFs.write(`${LIB}/WireServerEndpoint`, `127.0.0.1:${wirePort}`, { mode: 0o600 });
  hostFs.mkdir('/etc', 0o755);
  hostFs.write('/etc/hostname', 'testvm\n', { mode: 0o644 });
  const conf = new Config();
  const distro = { id: 'ubuntu', like: ['debian'], version: '24.04', codename: 'noble', fullName: 'Ubuntu 24.04', name: 'Ubuntu' };
  const linux = new LinuxOS(distro, root, recordingRunner(), conf);
  const ctx: AgentContext = { conf, os: linux, log, libDir: LIB };
  return { dir, hostFs: linux.fs, ctx, lib: (name) => path.join(dir, LIB, name) };
}
