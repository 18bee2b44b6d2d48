/**
 * `-version` (DECISIONS.md D3): four lines — `WALinuxAgent-<ver> running on <distro> <version>` (tools grep for that
 * prefix), the runtime, the goal-state agent (always ours: we never run downloaded agents, D4), the product name.
 * No configuration is read; kept tiny so that it starts fast.
 */
import { writeSync } from 'node:fs';
import { AGENT_NAME, AGENT_VERSION, PRODUCT_NAME } from '../version';
import { detectDistro, type DistroInfo } from '../os/detect';
import { SysRoot } from '../core/sysroot';

/** The four lines of `-version` for this distro. */
export function versionText(distro: DistroInfo, nodeVersion: string = process.versions.node): string {
  return `${AGENT_NAME}-${AGENT_VERSION} running on ${distro.name} ${distro.version}\n` +
    `Node: ${nodeVersion}\n` +
    `Goal state agent: ${AGENT_VERSION}\n` +
    `${PRODUCT_NAME}\n`;
}

/** Prints the version on stdout; exit code 0. */
export function runVersion(): number {
  writeSync(1, versionText(detectDistro(new SysRoot('/'))));
  return 0;
}
