/**
 * Gives memory back once the agent has gone quiet (the idle-memory target: anon RSS of the idle daemon ≤ 16 MiB).
 *
 * V8 left alone runs almost no full GC in an idle daemon (one scavenge a minute), so what provisioning and an
 * extension run left behind (garbage, and the heap pages and young generation grown for it) stays resident. After a
 * busy period `settleHeap` runs V8's "last resort" collection once, which also shrinks the young generation and unmaps
 * the pages it emptied. Measured in the VM bed (README, "Memory levers"): idle anon RSS 1 MiB lower right after Ready,
 * 0.5 MiB lower at 120 s; after an extension run, back within the idle range. Cost: 17–45 ms of CPU once per busy
 * period (not per poll).
 */
import { setFlagsFromString, getHeapStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFn = (opts?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;
let gcFn: GcFn | null | undefined;
const LAST_RESORT = Number(process.versions.v8.split('.')[0]) >= 12;

/** The engine's `gc` (exposed on demand; `--expose-gc` on the command line works too), or null where unavailable. */
function engineGc(): GcFn | null {
  if (gcFn !== undefined) return gcFn;
  const g = (globalThis as { gc?: GcFn }).gc;
  if (typeof g === 'function') return (gcFn = g);
  try {
    setFlagsFromString('--expose-gc');
    const f = runInNewContext('gc') as unknown;
    gcFn = typeof f === 'function' ? (f as GcFn) : null;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

/**
 * Runs V8's "last resort" collection (what it does before giving up on an allocation: full GCs until nothing more is
 * freed, with the memory-reducing flag that also shrinks the young generation and unmaps pooled pages). Returns the V8
 * heap committed before and after (bytes), or undefined where GC is not exposed.
 */
export function settleHeap(): { before: number; after: number } | undefined {
  const gc = engineGc();
  if (!gc) return undefined;
  const before = getHeapStatistics().total_heap_size;
  // The options are V8 12+ (the executable's Node 24); V8 11 (Node 20) takes them but then skips the garbage, so it
  // gets the plain full GC.
  if (LAST_RESORT) gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  else gc();
  return { before, after: getHeapStatistics().total_heap_size };
}

/**
 * Decides when to settle: after a busy period (start-up, a new goal state, extension commands), on the first poll that
 * finds nothing new and nothing running. One settle per busy period.
 */
export class QuietTracker {
  private settled = false;

  /** Called after every poll; returns true when this poll is the one to settle after. */
  afterPoll(busy: boolean): boolean {
    if (busy) { this.settled = false; return false; }
    if (this.settled) return false;
    this.settled = true;
    return true;
  }
}
