/**
 * Throttling of a repeated warning (fabric-protocol.md §5.3: a goal-state update that keeps failing is logged "the first
 * 3 errors, then one summary every 6 h"): `failure()` says whether to warn now and with which text; suppressed ones
 * should go to the verbose level. `success()` ends the streak and returns how many failures it had.
 */
export class WarnThrottle {
  private streak = 0;
  private suppressed = 0;
  private lastWarnAt = 0;

  constructor(private readonly now: () => number, private readonly first = 3, private readonly periodMs = 6 * 3600_000) {}

  /** A failure: the text to warn with, or undefined when this one is suppressed. */
  failure(msg: string): string | undefined {
    this.streak++;
    const t = this.now();
    if (this.streak <= this.first) {
      this.lastWarnAt = t;
      return this.streak === this.first ? `${msg} (failed ${this.first} times in a row; further failures are summarised every ${Math.round(this.periodMs / 3600_000)} h)` : msg;
    }
    this.suppressed++;
    if (t - this.lastWarnAt < this.periodMs) return undefined;
    const n = this.suppressed;
    this.suppressed = 0;
    this.lastWarnAt = t;
    return `${msg} (still failing: ${n} failures since the last warning, ${this.streak} in a row)`;
  }

  /** A success: returns the length of the failure streak it ends (0 when there was none). */
  success(): number {
    const n = this.streak;
    this.streak = 0;
    this.suppressed = 0;
    return n;
  }
}
