/**
 * The root prefix (provisioning-and-os.md §0.2 rule 4, DECISIONS.md D13): every absolute path the agent touches goes
 * through `SysRoot.path`, so the whole agent can run against a temp directory in unit tests. In production and in the
 * throwaway VM (a chroot of an overlay) the prefix is `/`.
 */
import * as path from 'node:path';

export class SysRoot {
  readonly dir: string;
  constructor(dir = '/') { this.dir = path.resolve(dir); }
  /** Maps an absolute agent path (e.g. `/etc/hostname`) to the real path under the root. */
  path(abs: string): string {
    if (!abs.startsWith('/')) throw new Error(`not an absolute path: ${abs}`);
    const norm = path.posix.normalize(abs);
    return this.dir === '/' ? norm : path.join(this.dir, norm);
  }
  get isReal(): boolean { return this.dir === '/'; }
}
