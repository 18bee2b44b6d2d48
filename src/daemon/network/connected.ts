/**
 * A small helper for the network duties: waits until the fabric link has a verified wire-server endpoint (or the
 * daemon stops) and returns the host the agent actually talks to (fabric-protocol.md §1.2 step 6).
 */
import type { FabricLinkHandle } from '../../fabric/link';

/** The verified wire-server host, or undefined when `signal` aborted first (or the link closed). */
export async function wireServerHost(link: FabricLinkHandle, signal: AbortSignal): Promise<string | undefined> {
  if (!link.wire) {
    let onAbort: (() => void) | undefined;
    await Promise.race([
      link.connected().catch(() => undefined),
      new Promise<void>((r) => { onAbort = (): void => r(); if (signal.aborted) r(); else signal.addEventListener('abort', onAbort, { once: true }); }),
    ]);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
  return signal.aborted ? undefined : link.wire?.endpoint.host;
}
