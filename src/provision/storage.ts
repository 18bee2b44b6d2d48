/**
 * Storage faults during provisioning (provisioning-and-os.md §3.18; issue 10 "disk full and read-only"): a failure
 * caused by a full or read-only file system that provisioning writes (/etc, Lib.Dir, the home directories) is named
 * in the reported description and marked retryable — it clears without a new goal state (space freed, a file system
 * remounted read-write), so the daemon provisions again instead of waiting for the next boot.
 */
import type { AgentContext } from '../context';

/** errno codes that mean "the storage, not the input" (seen on the error or its causes). */
const STORAGE_CODES = new Set(['ENOSPC', 'EROFS', 'EDQUOT']);

function storageCode(e: unknown): string | undefined {
  for (let c = e as { code?: unknown; cause?: unknown } | undefined, i = 0; c && i < 8; c = c.cause as typeof c, i++) {
    if (typeof c.code === 'string' && STORAGE_CODES.has(c.code)) return c.code;
  }
  return undefined;
}

export interface StorageDiagnosis {
  /** What is wrong, for the description (e.g. `/etc is on a read-only file system`), or undefined. */
  hint?: string;
  /** Whether provisioning should be tried again once the storage may have recovered. */
  retryable: boolean;
}

/** Looks at the error and at the directories provisioning writes; never throws. */
export function diagnoseStorage(ctx: AgentContext, e: unknown): StorageDiagnosis {
  const problems: string[] = [];
  for (const dir of ['/etc', ctx.libDir, ctx.os.homeDir()]) {
    try {
      const p = ctx.os.fs.storageProblem(dir);
      if (p && !problems.includes(p)) problems.push(p);
    } catch { /* no diagnosis */ }
  }
  const code = storageCode(e);
  return { hint: problems.length ? problems.join('; ') : undefined, retryable: problems.length > 0 || code !== undefined };
}

/** `msg` with the storage hint appended, when there is one and it is not already said. */
export function withStorageHint(msg: string, d: StorageDiagnosis): string {
  return d.hint && !msg.includes(d.hint) ? `${msg} (${d.hint})` : msg;
}
