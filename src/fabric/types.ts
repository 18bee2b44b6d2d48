/**
 * The contract between the fabric layer and its users (provisioning, daemon, extensions): typed goal-state values and
 * the link through which reports are sent. Nothing outside src/fabric speaks HTTP to the fabric.
 */

/** A health report (fabric-protocol.md §2.7). */
export type HealthReport =
  | { state: 'Ready' }
  | { state: 'NotReady'; subStatus: string; description: string };

/** The goal state's identity, as the reports need it (fabric-protocol.md §2.2). */
export interface GoalStateIds {
  incarnation: string;
  containerId: string;
  instanceId: string;
  configName: string;
}

/**
 * A live conversation with the fabric, started in the background by the daemon so that provisioning never waits for
 * it unless it needs something only the fabric has (certificates for a key given by fingerprint).
 */
export interface FabricLink {
  /** Resolves once the wire server answered, the goal state is held and its certificates are written to Lib.Dir.
   *  Rejects only if `close()` is called first. */
  connected(): Promise<GoalStateIds>;
  /** Whether `connected()` has resolved already. */
  readonly isConnected: boolean;
  /** Queues a health report: sent in the background with retries (DECISIONS.md D6); a newer report replaces a
   *  pending older one. */
  reportHealth(report: HealthReport): void;
  /** Resolves when the most recent report queued so far has been accepted by the fabric. */
  healthAccepted(): Promise<void>;
  /** Queues the role-properties report (SSH host key thumbprint), sent once Ready has been accepted (D5). Failures
   *  are only logged. */
  reportRoleProperties(thumbprint: string): void;
  /** Stops background work (tests, shutdown). */
  close(): void;
}
