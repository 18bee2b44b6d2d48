/** Test bed for the extension runner tests: a temp-dir root with `/var/lib/waagent` and `/var/log/azure`, an OS object
 *  over it (real or recording runner), and small helpers to build a handler directory with a shell script in it. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SysRoot } from '../../src/core/sysroot';
import { createRunner, recordingRunner, type Runner } from '../../src/core/exec';
import { Config } from '../../src/config/config';
import { log } from '../../src/core/log';
import { LinuxOS } from '../../src/os/linux';
import type { AgentContext } from '../../src/context';

export interface ExtBed {
  dir: string;
  ctx: AgentContext;
  /** Real path of an agent path. */
  p(abs: string): string;
  read(abs: string): string;
  write(abs: string, data: string | Buffer, mode?: number): void;
  mode(abs: string): number;
  /** Creates `<L>/<name>-<version>` with `bin/run.sh` = `script` (0755) and returns the agent path. */
  handler(name: string, version: string, script: string): string;
  cleanup(): void;
}

export function makeExtBed(opts: { conf?: Record<string, string>; run?: Runner } = {}): ExtBed {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-ext-'));
  const root = new SysRoot(dir);
  fs.mkdirSync(root.path('/var/lib/waagent'), { recursive: true, mode: 0o700 });
  fs.mkdirSync(root.path('/var/log/azure'), { recursive: true, mode: 0o755 });
  const conf = new Config('(test)', opts.conf ?? {});
  const run = opts.run ?? recordingRunner();
  const osObj = new LinuxOS({ id: 'debian', like: [], version: '12', codename: 'bookworm', fullName: 'Debian GNU/Linux 12', name: 'debian' }, root, run, conf);
  const ctx: AgentContext = { conf, os: osObj, log, libDir: '/var/lib/waagent' };
  const bed: ExtBed = {
    dir, ctx,
    p: (abs) => root.path(abs),
    read: (abs) => fs.readFileSync(root.path(abs), 'utf8'),
    write: (abs, data, mode = 0o644) => {
      fs.mkdirSync(path.dirname(root.path(abs)), { recursive: true });
      fs.writeFileSync(root.path(abs), data, { mode });
    },
    mode: (abs) => fs.statSync(root.path(abs)).mode & 0o7777,
    handler: (name, version, script) => {
      const h = `/var/lib/waagent/${name}-${version}`;
      bed.write(`${h}/bin/run.sh`, script, 0o755);
      return h;
    },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
  return bed;
}

export { createRunner, recordingRunner };
