/**
 * The Instance Metadata Service (fabric-protocol.md §2.11, DECISIONS.md D12): `Metadata: true`, never through a
 * proxy, bounded retries. Used for SSH public keys that neither the OVF nor the tenant certificates yield.
 */
import { httpRequest, bodyText } from '../core/http';
import { withRetry, isSuccess, HttpStatusError, realClock, type Clock } from '../core/retry';

export const IMDS_BASE_URL = 'http://169.254.169.254';

/** IMDS answered something that is not the expected JSON. */
export class ImdsError extends Error {
  constructor(msg: string) { super(`IMDS: ${msg}`); this.name = 'ImdsError'; }
}

export interface ImdsPublicKey { keyData: string; path: string }

const IMDS_RETRY_CODES: ReadonlySet<number> = new Set([404, 410, 429, 500, 502, 503, 504]);

export class ImdsClient {
  /**
   * @param baseUrl FOR TESTS ONLY (a loopback server); production always uses http://169.254.169.254.
   */
  constructor(private readonly baseUrl: string = IMDS_BASE_URL, private readonly opts: { clock?: Clock; maxAttempts?: number; budgetMs?: number; signal?: AbortSignal } = {}) {}

  /** GETs a JSON document under /metadata with bounded retries (default 5 attempts, 60 s); throws on failure. */
  async getJson(pathAndQuery: string): Promise<unknown> {
    const url = `${this.baseUrl}${pathAndQuery}`;
    const res = await withRetry(() => httpRequest({ url, headers: { Metadata: 'true' }, useProxy: false, signal: this.opts.signal }), {
      what: `IMDS ${pathAndQuery.split('?')[0]}`, retryCodes: IMDS_RETRY_CODES, maxAttempts: this.opts.maxAttempts ?? 5,
      retryDelayMs: 1000, budgetMs: this.opts.budgetMs ?? 60_000, clock: this.opts.clock ?? realClock, signal: this.opts.signal,
    });
    if (!isSuccess(res.status)) throw new HttpStatusError(`IMDS ${pathAndQuery}`, res.status, bodyText(res));
    try {
      return JSON.parse(bodyText(res));
    } catch {
      throw new ImdsError(`${pathAndQuery}: response is not JSON`);
    }
  }

  /** The VM's SSH public keys (`compute/publicKeys`): `[{keyData, path}]`; entries without keyData are dropped. */
  async getPublicKeys(): Promise<ImdsPublicKey[]> {
    return publicKeysFrom(await this.getJson('/metadata/instance/compute/publicKeys?api-version=2021-02-01'));
  }
}

/** The typed public keys of a parsed `compute/publicKeys` answer; not an array → `ImdsError`. */
export function publicKeysFrom(v: unknown): ImdsPublicKey[] {
  if (!Array.isArray(v)) throw new ImdsError('publicKeys is not an array');
  return v
    .filter((k): k is { keyData: unknown; path?: unknown } => typeof k === 'object' && k !== null)
    .filter((k) => typeof k.keyData === 'string' && k.keyData.trim() !== '')
    .map((k) => ({ keyData: (k.keyData as string).trim(), path: typeof k.path === 'string' ? k.path : '' }));
}

/** `publicKeysFrom` of a JSON text (the fuzz target of the IMDS reader); not JSON → `ImdsError`. */
export function parsePublicKeysJson(text: string): ImdsPublicKey[] {
  let v: unknown;
  try { v = JSON.parse(text); } catch { throw new ImdsError('response is not JSON'); }
  return publicKeysFrom(v);
}

/** Convenience: the public keys from the production IMDS. */
export function getPublicKeys(): Promise<ImdsPublicKey[]> {
  return new ImdsClient().getPublicKeys();
}
