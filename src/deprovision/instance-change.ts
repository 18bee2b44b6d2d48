/**
 * Changed-instance-ID clean-up (provisioning-and-os.md §4.4, HEAD's list), run without a prompt when the provisioned
 * marker names another VM (an image captured without deprovisioning): cached DHCP leases, the fabric state cached in
 * Lib.Dir (goal-state documents, endpoint, incarnation, published host name, …), each extension directory's status,
 * settings, HandlerStatus and mrseq, and the firewall persistence files. Certificates, the marker and the
 * extensions themselves stay; provisioning is not re-run.
 */
import * as path from 'node:path';
import type { AgentContext } from '../context';
import { errorText } from '../core/log';
import { removeFile, removeMatching } from './files';
import { deleteDhcpLeases, deleteFirewallPersistence } from './plan';

const LIB_FILES = [
  'HostingEnvironmentConfig.xml', 'Incarnation', 'Protocol', 'SharedConfig.xml', 'WireServerEndpoint', 'partition',
  'published_hostname', 'fast_track.json', 'initial_goal_state', 'waagent_rsm_update', 'waagent_initial_update',
];
const LIB_GLOBS = [/^Extensions\..*\.xml$/, /^ExtensionsConfig\..*\.xml$/, /^GoalState\..*\.xml$/];

/**
 * Deletes the cached state listed above. Each part is attempted; failures are logged as warnings and returned as
 * messages (empty = everything removed).
 */
export function cleanupChangedInstance(ctx: AgentContext): string[] {
  const hfs = ctx.os.fs;
  const lib = ctx.libDir.replace(/\/+$/, '') || '/';
  const problems: string[] = [];
  const attempt = (what: string, fn: () => void) => {
    try { fn(); } catch (e) { const m = `${what}: ${errorText(e)}`; problems.push(m); ctx.log.warn(`Clean-up after instance change: ${m}`); }
  };
  attempt('DHCP leases', () => deleteDhcpLeases(ctx));
  attempt(`cached state in ${lib}`, () => {
    for (const f of LIB_FILES) removeFile(hfs, path.posix.join(lib, f));
    for (const re of LIB_GLOBS) removeMatching(hfs, lib, re);
  });
  for (const e of hfs.readdir(lib)) {
    const d = path.posix.join(lib, e);
    if (!hfs.lstat(d)?.isDirectory()) continue;
    attempt(`extension state in ${d}`, () => {
      removeMatching(hfs, `${d}/status`, /\.status$/);
      removeMatching(hfs, `${d}/config`, /\.settings$/);
      removeFile(hfs, `${d}/config/HandlerStatus`);
      removeFile(hfs, `${d}/mrseq`);
    });
  }
  attempt('firewall persistence', () => deleteFirewallPersistence(ctx));
  return problems;
}
