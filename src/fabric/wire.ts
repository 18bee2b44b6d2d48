/**
 * The wire client (fabric-protocol.md §2, §3.2, §4.9): versions check, goal state with incarnation tracking and the
 * missing-RoleInstance re-request, the full goal state (HostingEnvironmentConfig, SharedConfig, ExtensionsConfig,
 * Certificates) fetched only when the incarnation changes and saved under Lib.Dir with WALinuxAgent's names, health and
 * role-properties posts, and the status-blob upload (host plugin first, then direct). One instance per endpoint.
 */
import type { HostFs } from '../os/os';
import { log, errorText } from '../core/log';
import { httpRequest, bodyText, type HttpResponse, type ProxyConfig } from '../core/http';
import { withRetry, isSuccess, HttpStatusError, ResourceGoneError, InvalidContainerError, realClock, type Clock, type RetryOptions } from '../core/retry';
import { AGENT_NAME } from '../version';
import type { GoalStateIds, HealthReport } from './types';
import { type Endpoint, wireBaseUrl } from './endpoint';
import {
  parseVersions, supportsWireVersion, parseGoalState, parseHostingEnv, parseSharedConfig, parseCertificatesDoc,
  parseExtensionsConfig, WIRE_PROTOCOL_VERSION,
  type GoalStateDoc, type HostingEnvDoc, type SharedConfigDoc, type ExtensionsConfigDoc, type StatusBlobType,
} from './documents';
import { healthXml, rolePropertiesXml } from './reports';
import type { TransportPair } from '../crypto/transport';
import { CERT_CIPHERS, decryptCertificates, writeCertificateFiles, type TenantCertificate } from '../crypto/certificates';

/** Production host plugin port (D24). */
export const HOST_PLUGIN_PORT = 32526;
const HGAP_API_VERSION = '2015-09-01';
const STORAGE_API_VERSION = '2014-02-14';

/** The fabric answered in a way the agent cannot use (unsupported version, goal state never ready, ...). */
export class ProtocolError extends Error {
  constructor(msg: string) { super(msg); this.name = 'ProtocolError'; }
}

export interface WireClientOptions {
  endpoint: Endpoint;
  hostFs: HostFs;
  /** Agent path of Lib.Dir. */
  libDir: string;
  transport: TransportPair;
  /** Host plugin port. FOR TESTS ONLY (the simulator's random port); production always uses 32526 (D24). */
  hostPluginPort?: number;
  /** Proxy settings for storage traffic (direct status upload). */
  proxy?: ProxyConfig;
  clock?: Clock;
  signal?: AbortSignal;
  /** Wall-clock budget of each retried request (default 60 s). */
  budgetMs?: number;
  /** Pause between re-requests of a goal state without RoleInstance (default 500 ms). */
  notReadyDelayMs?: number;
}

/** The full goal state the agent holds. */
export interface GoalState {
  doc: GoalStateDoc;
  ids: GoalStateIds;
  hostingEnv?: HostingEnvDoc;
  sharedConfig?: SharedConfigDoc;
  extensionsConfig?: ExtensionsConfigDoc;
  /** Tenant certificates written to Lib.Dir for this goal state (thumbprints, key presence). */
  certificates: { thumbprint: string; hasPrivateKey: boolean }[];
  /** False when the Certificates document could not be fetched or decrypted with either cipher. */
  certificatesOk: boolean;
}

const xDate = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export class WireClient {
  readonly endpoint: Endpoint;
  readonly baseUrl: string;
  readonly hostPluginBase: string;
  private readonly o: WireClientOptions;
  private readonly clock: Clock;
  private held: GoalState | undefined;
  private hgapOk: boolean | undefined;
  /** The last goal-state document received and its parse. */
  private lastGoalState: { xml: string; doc: GoalStateDoc } | undefined;
  private hgapCheckedAt = 0;
  private gsLock: Promise<unknown> = Promise.resolve();

  constructor(opts: WireClientOptions) {
    this.o = opts;
    this.endpoint = opts.endpoint;
    this.baseUrl = wireBaseUrl(opts.endpoint);
    const h = opts.endpoint.host.includes(':') ? `[${opts.endpoint.host}]` : opts.endpoint.host;
    this.hostPluginBase = `http://${h}:${opts.hostPluginPort ?? HOST_PLUGIN_PORT}`;
    this.clock = opts.clock ?? realClock;
  }

  /** The host file system (root prefix) and the agent path of Lib.Dir, for artifact downloads (src/fabric/artifacts). */
  get hostFs(): HostFs { return this.o.hostFs; }
  get libDir(): string { return this.o.libDir; }
  /** Proxy settings for storage traffic (direct artifact downloads; never the host plugin). */
  get proxy(): ProxyConfig | undefined { return this.o.proxy; }
  /** The clock and abort signal retries use. */
  get retryClock(): Clock { return this.clock; }
  get signal(): AbortSignal | undefined { return this.o.signal; }

  /** The goal state currently held (after `updateGoalState`). */
  get goalState(): GoalState | undefined { return this.held; }

  private retryOpts(what: string, extra?: Partial<RetryOptions>): RetryOptions {
    return {
      what, clock: this.clock, signal: this.o.signal, budgetMs: this.o.budgetMs ?? 60_000,
      onRetry: (n, ms, why) => log.verbose(`${what}: attempt ${n} failed (${why}); retrying in ${ms} ms`),
      ...extra,
    };
  }

  /** GET/POST with retries; returns the response of a success, throws otherwise (see `withRetry`). */
  private async call(what: string, method: string, url: string, headers: Record<string, string>, body?: string | Buffer,
    extra?: Partial<RetryOptions>, useProxy = false): Promise<HttpResponse> {
    const res = await withRetry(() => httpRequest({ method, url, headers, body, signal: this.o.signal, useProxy }, this.o.proxy), this.retryOpts(what, extra));
    if (!isSuccess(res.status)) throw new HttpStatusError(what, res.status, bodyText(res));
    return res;
  }

  private wireHeaders(extra?: Record<string, string>): Record<string, string> {
    return { 'x-ms-agent-name': AGENT_NAME, 'x-ms-version': WIRE_PROTOCOL_VERSION, ...extra };
  }

  /** `GET /?comp=versions`: resolves when the fabric speaks 2012-11-30, throws `ProtocolError` when it does not. */
  async checkVersions(): Promise<void> {
    const res = await this.call('versions', 'GET', `${this.baseUrl}/?comp=versions`, {});
    const v = parseVersions(bodyText(res));
    if (!supportsWireVersion(v)) {
      throw new ProtocolError(`wire server does not support ${WIRE_PROTOCOL_VERSION} (preferred ${v.preferred ?? 'none'}, supported ${v.supported.join(', ') || 'none'})`);
    }
  }

  /**
   * `GET /machine/?comp=goalstate`, re-requested up to 6 times 0.5 s apart while it lacks a RoleInstance (§2.2).
   * Returns the parsed document and its text; throws `ProtocolError` if it never becomes ready.
   */
  async fetchGoalStateDoc(): Promise<{ doc: GoalStateDoc; xml: string }> {
    for (let i = 1; ; i++) {
      const res = await this.call('goal state', 'GET', `${this.baseUrl}/machine/?comp=goalstate`, this.wireHeaders());
      const xml = bodyText(res);
      // The steady state: the same document every poll. Parse only what changed (the parse is a third of a poll's CPU).
      const doc = xml === this.lastGoalState?.xml ? this.lastGoalState.doc : parseGoalState(xml);
      this.lastGoalState = { xml, doc };
      if (doc.roleInstanceId) return { doc, xml };
      if (i >= 6) throw new ProtocolError(`goal state ${doc.incarnation} has no RoleInstance after ${i} requests`);
      log.verbose(`goal state ${doc.incarnation} has no RoleInstance yet; asking again`);
      await this.clock.sleep(this.o.notReadyDelayMs ?? 500, this.o.signal);
    }
  }

  private save(name: string, text: string): void {
    this.o.hostFs.mkdir(this.o.libDir, 0o700);
    this.o.hostFs.write(`${this.o.libDir}/${name}`, text, { mode: 0o600 });
  }

  /**
   * Reads the goal state; when its incarnation differs from the one held (or `force`), fetches the sub-documents
   * whose URL changed, writes them to Lib.Dir (GoalState.<n>.xml, HostingEnvironmentConfig.xml, SharedConfig.xml,
   * ExtensionsConfig.<n>.xml, Certificates.*, <THUMBPRINT>.crt/.prv, Incarnation) and holds the new goal state.
   * The ContainerId and ConfigName are refreshed on every call. If a sub-document fails, the previous goal state stays
   * in force and the error is thrown (§2.10). Certificates failing with both ciphers are logged, not thrown (§3.2).
   */
  updateGoalState(force = false): Promise<{ goalState: GoalState; changed: boolean }> {
    // one update at a time: the poller, the health reporter and the status upload may all ask for one
    const run = this.gsLock.then(() => this.doUpdateGoalState(force));
    this.gsLock = run.catch(() => undefined);
    return run;
  }

  private async doUpdateGoalState(force: boolean): Promise<{ goalState: GoalState; changed: boolean }> {
    const { doc, xml } = await this.fetchGoalStateDoc();
    const ids: GoalStateIds = { incarnation: doc.incarnation, containerId: doc.containerId, instanceId: doc.roleInstanceId ?? '', configName: doc.configName ?? '' };
    const prev = this.held;
    if (prev && !force && prev.doc.incarnation === doc.incarnation) {
      if (prev.ids.containerId !== ids.containerId || prev.ids.configName !== ids.configName) {
        log.info(`Container changed without a new incarnation: ${prev.ids.containerId} → ${ids.containerId}`);
        this.hgapOk = undefined;
      }
      this.held = { ...prev, doc, ids };
      return { goalState: this.held, changed: false };
    }
    log.info(`Fetching goal state incarnation ${doc.incarnation}`);
    const reuse = (k: keyof GoalStateDoc): boolean => !force && !!prev && prev.doc[k] === doc[k];
    const next: GoalState = { doc, ids, certificates: prev?.certificates ?? [], certificatesOk: prev?.certificatesOk ?? true };
    const pending: [string, string][] = [[`GoalState.${doc.incarnation}.xml`, xml]];

    // The sub-documents are independent: fetch them side by side (one round trip instead of four). A document whose
    // URL did not change is kept from the previous goal state.
    const subDocument = async <K extends 'hostingEnv' | 'sharedConfig' | 'extensionsConfig'>(
      key: K, uriKey: keyof GoalStateDoc, what: string, file: string, parse: (xml: string) => NonNullable<GoalState[K]>,
    ): Promise<void> => {
      const uri = doc[uriKey];
      if (typeof uri !== 'string' || !uri) return;
      if (reuse(uriKey)) { next[key] = prev?.[key]; return; }
      const t = bodyText(await this.call(what, 'GET', uri, this.wireHeaders()));
      next[key] = parse(t);
      pending.push([file, t]);
    };
    await Promise.all([
      subDocument('hostingEnv', 'hostingEnvUri', 'HostingEnvironmentConfig', 'HostingEnvironmentConfig.xml', parseHostingEnv),
      subDocument('sharedConfig', 'sharedConfigUri', 'SharedConfig', 'SharedConfig.xml', parseSharedConfig),
      subDocument('extensionsConfig', 'extensionsConfigUri', 'ExtensionsConfig', `ExtensionsConfig.${doc.incarnation}.xml`, parseExtensionsConfig),
      (async () => {
        if (!doc.certificatesUri) { next.certificates = []; next.certificatesOk = true; return; }
        if (reuse('certificatesUri')) return;
        const r = await this.fetchCertificates(doc.certificatesUri);
        next.certificates = r.certs.map((c) => ({ thumbprint: c.thumbprint, hasPrivateKey: !!c.keyPem }));
        next.certificatesOk = r.ok;
      })(),
    ]);
    for (const [name, text] of pending) this.save(name, text);
    this.save('Incarnation', doc.incarnation);
    if (prev && prev.ids.containerId !== ids.containerId) this.hgapOk = undefined;
    this.held = next;
    return { goalState: next, changed: true };
  }

  /**
   * Fetches and decrypts the Certificates document, asking with AES128_CBC first, then DES_EDE3_CBC (§3.2), and
   * writes the certificate files. Failure with both ciphers → `{ ok: false }` and a logged error.
   */
  async fetchCertificates(url: string): Promise<{ certs: TenantCertificate[]; ok: boolean }> {
    let lastErr: unknown;
    for (const cipher of CERT_CIPHERS) {
      try {
        const res = await this.call(`Certificates (${cipher})`, 'GET', url, this.wireHeaders({
          'x-ms-cipher-name': cipher, 'x-ms-guest-agent-public-x509-cert': this.o.transport.certHeader,
        }));
        const xml = bodyText(res);
        const doc = parseCertificatesDoc(xml);
        if (!doc.data) {
          log.info(doc.format ? `Certificates document of format ${doc.format}: ignored` : 'No tenant certificates');
          this.save('Certificates.xml', xml);
          return { certs: [], ok: true };
        }
        const certs = decryptCertificates(doc.data, this.o.transport);
        writeCertificateFiles(this.o.hostFs, this.o.libDir, xml, doc.data, certs);
        log.info(`Tenant certificates (${cipher}): ${certs.map((c) => `${c.thumbprint}${c.keyPem ? '+key' : ''}`).join(', ') || 'none'}`);
        return { certs, ok: true };
      } catch (e) {
        if ((e as Error).name === 'AbortError' || e instanceof ResourceGoneError) throw e;
        lastErr = e;
        log.warn(`Certificates with ${cipher} failed: ${errorText(e)}`);
      }
    }
    log.error(`Could not obtain the tenant certificates: ${errorText(lastErr)}; continuing without them`);
    return { certs: [], ok: false };
  }

  private requireIds(): GoalStateIds {
    if (!this.held) throw new ProtocolError('no goal state held yet');
    return this.held.ids;
  }

  /**
   * Posts one health report for the held goal state (one attempt; the caller retries, D6). Throws
   * `ResourceGoneError`/`InvalidContainerError` (refresh the goal state), `HttpStatusError` or a transport error.
   */
  async postHealth(report: HealthReport): Promise<void> {
    const body = healthXml(this.requireIds(), report);
    await this.call('health report', 'POST', `${this.baseUrl}/machine?comp=health`,
      this.wireHeaders({ 'Content-Type': 'text/xml;charset=utf-8' }), body, { maxAttempts: 1 });
  }

  /** Posts the role properties (SSH host key thumbprint) with the standard retries; only 202 counts as success. */
  async postRoleProperties(thumbprint: string): Promise<void> {
    const body = rolePropertiesXml(this.requireIds(), thumbprint);
    const res = await this.call('role properties', 'POST', `${this.baseUrl}/machine?comp=roleProperties`,
      this.wireHeaders({ 'Content-Type': 'text/xml;charset=utf-8' }), body);
    if (res.status !== 202) throw new HttpStatusError('role properties', res.status, bodyText(res));
  }

  /** Host plugin headers (x-ms-version, x-ms-containerid, x-ms-host-config-name of the held goal state) plus `extra`. */
  hostPluginHeaders(extra?: Record<string, string>): Record<string, string> { return this.hgapHeaders(extra); }

  private hgapHeaders(extra?: Record<string, string>): Record<string, string> {
    const ids = this.requireIds();
    return { 'x-ms-version': HGAP_API_VERSION, 'x-ms-containerid': ids.containerId, 'x-ms-host-config-name': ids.configName, ...extra };
  }

  /**
   * Whether the host plugin answers `/versions` with 2015-09-01. A success is cached (until the container changes);
   * a failure is remembered for one minute, then the host plugin is asked again.
   */
  async hostPluginAvailable(): Promise<boolean> {
    if (this.hgapOk) return true;
    if (this.hgapOk === false && this.clock.now() - this.hgapCheckedAt < 60_000) return false;
    this.hgapCheckedAt = this.clock.now();
    try {
      const res = await httpRequest({ url: `${this.hostPluginBase}/versions`, headers: { 'x-ms-containerid': this.requireIds().containerId }, signal: this.o.signal });
      this.hgapOk = res.status === 200 && bodyText(res).includes(HGAP_API_VERSION);
    } catch (e) {
      log.verbose(`host plugin /versions: ${errorText(e)}`);
      this.hgapOk = false;
    }
    if (!this.hgapOk) log.verbose('host plugin not usable; status goes directly to storage');
    return this.hgapOk;
  }

  /**
   * Uploads the status blob (§4.9): via the host plugin first; on 410/InvalidContainerConfiguration the goal state is
   * refreshed and the round ends (throws); on other host plugin failures, directly to the SAS URL. Throws when both
   * fail.
   */
  async uploadStatus(json: string, blob: { url: string; type: StatusBlobType }, now: Date = new Date()): Promise<'hostplugin' | 'direct'> {
    const data = Buffer.from(json, 'utf8');
    let hgapErr: unknown;
    if (await this.hostPluginAvailable()) {
      try {
        await this.putStatusViaHostPlugin(data, blob, now);
        return 'hostplugin';
      } catch (e) {
        if (e instanceof ResourceGoneError || e instanceof InvalidContainerError) {
          log.info(`host plugin says the container is stale (${e.message}); refreshing the goal state`);
          this.hgapOk = undefined;
          await this.updateGoalState().catch((u) => log.warn(`goal state refresh failed: ${errorText(u)}`));
          throw e;
        }
        hgapErr = e;
        log.verbose(`status upload via host plugin failed: ${errorText(e)}; trying directly`);
      }
    }
    try {
      await this.putStatusDirect(data, blob, now);
      return 'direct';
    } catch (e) {
      throw new Error(`status upload failed: ${hgapErr ? `host plugin: ${errorText(hgapErr)}; ` : ''}direct: ${errorText(e)}`);
    }
  }

  private async hgapPut(envelope: { content?: string; headers: { headerName: string; headerValue: string }[]; requestUri: string }): Promise<void> {
    const sorted = envelope.content === undefined
      ? { headers: envelope.headers, requestUri: envelope.requestUri }
      : { content: envelope.content, headers: envelope.headers, requestUri: envelope.requestUri };
    await this.call('status via host plugin', 'PUT', `${this.hostPluginBase}/status`,
      this.hgapHeaders({ 'Content-type': 'application/json' }), JSON.stringify(sorted), { maxAttempts: 2 });
  }

  private async putStatusViaHostPlugin(data: Buffer, blob: { url: string; type: StatusBlobType }, now: Date): Promise<void> {
    const h = (name: string, value: string): { headerName: string; headerValue: string } => ({ headerName: name, headerValue: value });
    const date = xDate(now);
    if (blob.type === 'BlockBlob') {
      await this.hgapPut({
        content: data.toString('base64'),
        headers: [h('Content-Length', String(data.length)), h('x-ms-blob-type', 'BlockBlob'), h('x-ms-date', date), h('x-ms-version', STORAGE_API_VERSION)],
        requestUri: blob.url,
      });
      return;
    }
    const size = Math.ceil(data.length / 512) * 512;
    const padded = Buffer.concat([data, Buffer.alloc(size - data.length, 0x20)]); // spaces, as WALinuxAgent
    await this.hgapPut({
      headers: [h('Content-Length', '0'), h('x-ms-blob-content-length', String(size)), h('x-ms-blob-type', 'PageBlob'), h('x-ms-date', date), h('x-ms-version', STORAGE_API_VERSION)],
      requestUri: blob.url,
    });
    const pageUri = blob.url + (blob.url.includes('?') ? '&comp=page' : '?comp=page');
    for (let start = 0; start < size; start += 4 * 1024 * 1024) {
      const chunk = padded.subarray(start, Math.min(size, start + 4 * 1024 * 1024));
      await this.hgapPut({
        content: chunk.toString('base64'),
        headers: [h('Content-Length', String(chunk.length)), h('x-ms-date', date), h('x-ms-range', `bytes=${start}-${start + chunk.length - 1}`),
          h('x-ms-page-write', 'update'), h('x-ms-version', STORAGE_API_VERSION)],
        requestUri: pageUri,
      });
    }
  }

  private async putStatusDirect(data: Buffer, blob: { url: string; type: StatusBlobType }, now: Date): Promise<void> {
    const date = xDate(now);
    const expect201 = async (what: string, url: string, headers: Record<string, string>, body: Buffer): Promise<void> => {
      const res = await this.call(what, 'PUT', url, headers, body, { maxAttempts: 3 }, true);
      if (res.status !== 201) throw new HttpStatusError(what, res.status, bodyText(res));
    };
    if (blob.type === 'BlockBlob') {
      await expect201('status blob', blob.url, { 'Content-Length': String(data.length), 'x-ms-blob-type': 'BlockBlob', 'x-ms-date': date, 'x-ms-version': STORAGE_API_VERSION }, data);
      return;
    }
    const size = Math.ceil(data.length / 512) * 512;
    await expect201('status page blob (create)', blob.url, {
      'Content-Length': '0', 'x-ms-blob-content-length': String(size), 'x-ms-blob-type': 'PageBlob', 'x-ms-date': date, 'x-ms-version': STORAGE_API_VERSION,
    }, Buffer.alloc(0));
    const pageUri = blob.url + (blob.url.includes('?') ? '&comp=page' : '?comp=page');
    for (let start = 0; start < data.length; start += 4 * 1024 * 1024) {
      const raw = data.subarray(start, Math.min(data.length, start + 4 * 1024 * 1024));
      const chunk = Buffer.concat([raw, Buffer.alloc(Math.ceil(raw.length / 512) * 512 - raw.length)]);
      await expect201('status page blob (page)', pageUri, {
        'Content-Length': String(chunk.length), 'x-ms-range': `bytes=${start}-${start + chunk.length - 1}`, 'x-ms-page-write': 'update',
        'x-ms-date': date, 'x-ms-version': STORAGE_API_VERSION,
      }, chunk);
    }
  }
}
