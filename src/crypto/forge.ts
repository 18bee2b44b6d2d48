/**
 * Lazy access to node-forge: loaded on first use only (the certificate path), so that start-up of commands that never
 * touch certificates stays fast (TOOLCHAIN.md).
 */
import type * as Forge from 'node-forge';

let cached: typeof Forge | undefined;

/** Returns the node-forge module, loading it on the first call. */
export function forge(): typeof Forge {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (!cached) cached = require('node-forge') as typeof Forge;
  return cached;
}
