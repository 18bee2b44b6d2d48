/**
 * The fabric simulator: a WireServer, a HostGAPlugin, a status-blob store and (optionally) IMDS, speaking
 * fabric-protocol.md from a Scenario, recording every request, checking the agent's reports strictly and injecting
 * the scenario's faults. Used by the integration tests on loopback (random ports) and by the throwaway VM (inside
 * its network namespace on 127.0.0.1:80 and :32526, through run-simulator.ts).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { appendFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { ExtensionPackageSpec, Fault, RequestKind, Scenario } from './scenario';
import {
  configPath, extensionsConfigXml, goalStateXml, hostingEnvironmentXml, sharedConfigXml, versionsXml, manifestXml,
  storagePackagePath, ARTIFACTS_PROFILE_PATH,
} from './documents';
import { checkHealthReport, checkRoleProperties, type Expected, type ParsedHealth, type ParsedRoleProperties } from './reports';
import { BlobStore } from './blobstore';
import { certificatesXml, encryptProtectedSettings, envelopePkcs7, makePfx } from './certgen';

/** The scenario's PKCS#12, made once per set of certificates (forge's PKCS#12 is slow; the fabric answers fast). */
const pfxCache = new Map<string, Buffer>();
function pfxFor(sc: { certificates: { certPem: string; keyPem?: string }[] }): Buffer {
  const items = sc.certificates.map((c) => ({ certPem: c.certPem, keyPem: c.keyPem }));
  const key = JSON.stringify(items);
  let pfx = pfxCache.get(key);
  if (!pfx) { pfx = makePfx(items, {}); pfxCache.set(key, pfx); }
  return pfx;
}

export interface Recorded {
  seq: number;
  /** Wall-clock time the request arrived (ms since epoch). */
  time: number;
  listener: 'wire' | 'hostplugin' | 'imds';
  kind: RequestKind;
  /** 1-based count of requests of this kind so far. */
  attempt: number;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Status answered (0 when the connection was dropped). */
  status: number;
  fault?: string;
  error?: string;
}

export interface Summary {
  firstRequestAt?: number;
  /** Accepted NotReady reports (time, substatus, description). */
  notReady: { at: number; subStatus?: string; description?: string }[];
  /** Time of the first accepted Ready report. */
  readyAt?: number;
  readyCount: number;
  counts: Partial<Record<RequestKind, number>>;
  failures: { seq: number; kind: RequestKind; error: string }[];
  healthReports: (ParsedHealth & { at: number })[];
  roleProperties: (ParsedRoleProperties & { at: number })[];
  incarnation: number;
  statusUploads: number;
  latestStatus?: unknown;
}

export interface SimulatorOptions {
  host?: string;
  port?: number;
  hostPluginPort?: number;
  /** Listen for IMDS too (when imdsPort is given; 0 = random). */
  imdsHost?: string;
  imdsPort?: number;
  /** Append every request to <logDir>/requests.jsonl and keep <logDir>/summary.json current. */
  logDir?: string;
}

export interface Simulator {
  /** Base URL of the WireServer, e.g. http://127.0.0.1:80. */
  url: string;
  port: number;
  hostPluginPort: number;
  imdsPort?: number;
  requests: Recorded[];
  blobs: BlobStore;
  summary(): Summary;
  setScenario(s: Scenario): void;
  bumpIncarnation(): number;
  /** Resolves when `pred(summary)` holds (checked after each request), or rejects after timeoutMs. */
  waitFor(pred: (s: Summary) => boolean, timeoutMs: number): Promise<Summary>;
  /** Writes requests.jsonl and summary.json to `dir`. */
  writeLogs(dir: string): void;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function readBody(req: http.IncomingMessage, max = 16 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > max) { reject(new Error('body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

/** Classifies a request on the wire listener. */
function wireKind(method: string, u: URL): RequestKind {
  const comp = u.searchParams.get('comp');
  const p = u.pathname;
  if (p === '/' && comp === 'versions') return 'versions';
  if (p === '/HealthService') return 'healthService';
  if (p.startsWith('/blobs/')) return 'blob';
  if (p.startsWith('/storage/manifests/')) return 'extManifest';
  if (p.startsWith('/storage/packages/')) return 'extPackage';
  if (p === ARTIFACTS_PROFILE_PATH) return 'artifactsProfile';
  if (p === '/machine' || p === '/machine/') {
    if (method === 'GET' && comp === 'goalstate') return 'goalstate';
    if (method === 'POST' && comp === 'health') return 'health';
    if (method === 'POST' && comp === 'roleProperties') return 'roleProperties';
    if (method === 'POST' && comp === 'telemetrydata') return 'telemetry';
  }
  if (p.startsWith('/machine/') && method === 'GET') {
    if (comp === 'certificates') return 'certificates';
    if (comp === 'config') {
      const t = u.searchParams.get('type');
      if (t === 'hostingEnvironmentConfig' || t === 'sharedConfig' || t === 'extensionsConfig' || t === 'fullConfig') return t;
    }
  }
  return 'unknown';
}

function hostPluginKind(method: string, u: URL): RequestKind {
  switch (u.pathname) {
    case '/versions': return 'hgVersions';
    case '/health': return 'hgHealth';
    case '/status': return method === 'PUT' ? 'hgStatus' : 'unknown';
    case '/vmSettings': return 'hgVmSettings';
    case '/extensionArtifact': return 'hgArtifact';
  }
  return 'unknown';
}

/** Starts the simulator for `scenario`; see SimulatorOptions for listeners. Rejects if a port cannot be bound. */
export async function startSimulator(scenario: Scenario, opts: SimulatorOptions = {}): Promise<Simulator> {
  let sc = scenario;
  let incarnation = sc.incarnation;
  const served = new Set<string>([String(incarnation)]);
  const requests: Recorded[] = [];
  const counts: Partial<Record<RequestKind, number>> = {};
  const failures: Summary['failures'] = [];
  const healthReports: Summary['healthReports'] = [];
  const roleProperties: Summary['roleProperties'] = [];
  const notReady: Summary['notReady'] = [];
  let readyAt: number | undefined;
  let readyCount = 0;
  const blobs = new BlobStore();
  const waiters = new Set<() => void>();
  const host = opts.host ?? '127.0.0.1';
  let base = '';
  let seq = 0;

  if (opts.logDir) mkdirSync(opts.logDir, { recursive: true });

  const expected = (): Expected => ({ incarnations: [...served], containerId: sc.ids.containerId, instanceId: sc.ids.instanceId });
  const blobPath = (): string => `/blobs/status/${encodeURIComponent(sc.ids.instanceName)}.status`;
  const blobUrl = (): string => `${base}${blobPath()}?sv=2018-03-28&sr=b&sp=w&sig=SIMULATED`;

  const summary = (): Summary => ({
    firstRequestAt: requests[0]?.time,
    notReady: [...notReady],
    readyAt,
    readyCount,
    counts: { ...counts },
    failures: [...failures],
    healthReports: [...healthReports],
    roleProperties: [...roleProperties],
    incarnation,
    statusUploads: blobs.uploads,
    latestStatus: blobs.latestStatus?.json,
  });

  const bump = (): number => {
    incarnation++;
    served.add(String(incarnation));
    return incarnation;
  };

  const fail = (rec: Recorded, error: string): void => {
    rec.error = error;
    failures.push({ seq: rec.seq, kind: rec.kind, error });
  };

  /** Protected settings encrypted once per (certificate, plaintext): the ciphertext changes only with the plaintext. */
  const encrypted = new Map<string, string>();
  const encrypt = (plain: unknown, thumbprint: string | undefined): { data: string; thumbprint: string } => {
    const cert = (thumbprint ? sc.certificates.find((c) => c.thumbprint === thumbprint) : undefined) ?? sc.certificates[0];
    if (!cert) throw new Error('protectedSettingsPlain needs a tenant certificate in the scenario');
    const key = `${cert.thumbprint}\n${JSON.stringify(plain)}`;
    let data = encrypted.get(key);
    if (!data) { data = encryptProtectedSettings(plain, cert.certPem); encrypted.set(key, data); }
    return { data, thumbprint: cert.thumbprint };
  };
  const zips = new WeakMap<ExtensionPackageSpec, Buffer>();
  const zipOf = (p: ExtensionPackageSpec): Buffer => {
    let z = zips.get(p);
    if (!z) { z = Buffer.from(p.zipBase64, 'base64'); zips.set(p, z); }
    return z;
  };

  /** The simulated storage account: extension manifests, packages, the artifacts profile (by URL path). */
  function storageAnswer(pathname: string): Answer {
    if (pathname === ARTIFACTS_PROFILE_PATH) {
      if (sc.artifactsProfile === undefined) return { status: 404, body: 'BlobNotFound' };
      const body = typeof sc.artifactsProfile === 'string' ? sc.artifactsProfile : JSON.stringify(sc.artifactsProfile);
      return { status: 200, body, headers: { 'Content-Type': 'application/json' } };
    }
    const pkgs = sc.extensionPackages ?? [];
    let m = /^\/storage\/manifests\/m(\d+)\/([^/]+)\.xml$/.exec(pathname);
    if (m) {
      const name = decodeURIComponent(m[2]).toLowerCase();
      const mine = pkgs.filter((p) => p.name.toLowerCase() === name);
      if (!mine.length) return { status: 404, body: 'BlobNotFound' };
      return {
        status: 200, headers: { 'Content-Type': 'application/xml' },
        body: manifestXml(mine.map((p) => ({
          version: p.version, internal: p.internal,
          uris: Array.from({ length: Math.max(1, p.mirrors ?? 1) }, (_, i) => base + storagePackagePath(p.name, p.version, i)),
        }))),
      };
    }
    m = /^\/storage\/packages\/m(\d+)\/([^/]+)\.zip$/.exec(pathname);
    if (m) {
      const mirror = Number(m[1]);
      const p = pkgs.find((x) => storagePackagePath(x.name, x.version, mirror) === pathname && mirror < Math.max(1, x.mirrors ?? 1));
      if (!p) return { status: 404, body: 'BlobNotFound' };
      return { status: 200, body: zipOf(p), headers: { 'Content-Type': 'application/octet-stream' } };
    }
    return { status: 404, body: 'BlobNotFound' };
  }

  function findFault(kind: RequestKind, attempt: number, path: string): Fault | undefined {
    return sc.faults.find((f) => (f.kind === '*' || f.kind === kind) && (!f.attempts || f.attempts.includes(attempt)) &&
      (f.pathIncludes === undefined || path.includes(f.pathIncludes)));
  }

  function afterRequest(rec: Recorded): void {
    for (const t of sc.incarnationTriggers) {
      if (t.afterKind === rec.kind && t.count === rec.attempt) bump();
    }
    if (opts.logDir) {
      try {
        appendFileSync(join(opts.logDir, 'requests.jsonl'), JSON.stringify(rec) + '\n');
        writeFileSync(join(opts.logDir, 'summary.json.tmp'), JSON.stringify(summary(), null, 1));
        renameSync(join(opts.logDir, 'summary.json.tmp'), join(opts.logDir, 'summary.json'));
      } catch { /* logging must never break the simulator */ }
    }
    for (const w of [...waiters]) w();
  }

  type Answer = { status: number; body?: string | Buffer; headers?: Record<string, string> };

  async function handleWire(kind: RequestKind, req: http.IncomingMessage, u: URL, body: Buffer, rec: Recorded, fault?: Fault): Promise<Answer> {
    const xml = (s: string): Answer => ({ status: 200, body: s, headers: { 'Content-Type': 'text/xml; charset=utf-8' } });
    if (u.pathname.startsWith('/machine') && kind !== 'unknown' && req.headers['x-ms-version'] !== '2012-11-30') {
      fail(rec, `missing or wrong x-ms-version '${req.headers['x-ms-version'] ?? ''}'`);
      return { status: 400, body: 'x-ms-version required' };
    }
    const inc = Number(u.searchParams.get('incarnation') ?? incarnation);
    switch (kind) {
      case 'versions': return xml(versionsXml());
      case 'goalstate': return xml(goalStateXml(sc, incarnation, base));
      case 'hostingEnvironmentConfig': return xml(hostingEnvironmentXml(sc, inc));
      case 'sharedConfig': return xml(sharedConfigXml(sc, inc));
      case 'fullConfig': return xml(`<FullConfig version="1.0.0.0" goalStateIncarnation="${inc}" />\n`);
      case 'extensionsConfig':
        if (!sc.withExtensionsConfig) return { status: 404 };
        return xml(extensionsConfigXml(sc, inc, blobUrl(), { base, encrypt }));
      case 'certificates': {
        const certB64 = req.headers['x-ms-guest-agent-public-x509-cert'];
        const cipher = req.headers['x-ms-cipher-name'];
        if (typeof certB64 !== 'string' || !certB64) {
          fail(rec, 'certificates request without x-ms-guest-agent-public-x509-cert');
          return { status: 400, body: 'x-ms-guest-agent-public-x509-cert required' };
        }
        if (cipher !== 'AES128_CBC' && cipher !== 'DES_EDE3_CBC') {
          fail(rec, `certificates request with cipher '${cipher ?? ''}'`);
          return { status: 400, body: 'x-ms-cipher-name must be AES128_CBC or DES_EDE3_CBC' };
        }
        let pem: string;
        try {
          if (/\s/.test(certB64)) throw new Error('certificate header must be one line of base64');
          const x = new X509Certificate(Buffer.from(certB64, 'base64'));
          pem = x.toString();
        } catch (e) {
          fail(rec, `bad transport certificate: ${(e as Error).message}`);
          return { status: 400, body: 'bad certificate' };
        }
        const pfx = pfxFor(sc);
        const env = envelopePkcs7(pfx, pem, cipher);
        if (fault?.truncateBlob) {
          rec.fault = 'truncateBlob';
          return xml(certificatesXml(env.subarray(0, Math.floor(env.length / 2)), String(inc)));
        }
        return xml(certificatesXml(env, String(inc)));
      }
      case 'health': {
        const r = checkHealthReport(body.toString('utf8'), expected());
        if (!r.ok) { fail(rec, `malformed health report: ${r.error}`); return { status: 400, body: r.error }; }
        const at = rec.time;
        healthReports.push({ ...r.value, at });
        if (r.value.state === 'Ready') { readyCount++; if (readyAt === undefined) readyAt = at; }
        else notReady.push({ at, subStatus: r.value.subStatus, description: r.value.description });
        return { status: 200, headers: { 'x-ms-latest-goal-state-incarnation-number': String(incarnation) } };
      }
      case 'roleProperties': {
        const r = checkRoleProperties(body.toString('utf8'), expected());
        if (!r.ok) { fail(rec, `malformed role properties: ${r.error}`); return { status: 400, body: r.error }; }
        roleProperties.push({ ...r.value, at: rec.time });
        return { status: 202 };
      }
      case 'telemetry':
      case 'healthService':
        return { status: 200 };
      case 'blob': return handleBlob(req, u, body, rec);
      case 'extManifest':
      case 'extPackage':
      case 'artifactsProfile':
        if (req.method !== 'GET') return { status: 405 };
        return storageAnswer(u.pathname);
      default: return { status: 404, body: 'not found' };
    }
  }

  function handleBlob(req: http.IncomingMessage, u: URL, body: Buffer, rec: Recorded): Answer {
    if (req.method === 'GET') {
      const b = blobs.get(u.pathname);
      return b ? { status: 200, body: b } : { status: 404 };
    }
    if (req.method !== 'PUT') return { status: 405 };
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(',') : v;
    const r = blobs.put({ name: u.pathname, query: u.searchParams, headers, body });
    if (r.error) fail(rec, `blob: ${r.error}`);
    return { status: r.status, body: r.error };
  }

  function handleHostPlugin(kind: RequestKind, req: http.IncomingMessage, body: Buffer, rec: Recorded): Answer {
    const idsOk = (): boolean => req.headers['x-ms-containerid'] === sc.ids.containerId && req.headers['x-ms-host-config-name'] === sc.ids.configName;
    switch (kind) {
      case 'hgVersions': return { status: 200, body: JSON.stringify(['2015-09-01', '2012-11-30']), headers: { 'Content-Type': 'application/json' } };
      case 'hgHealth': return { status: 200 };
      case 'hgVmSettings': return { status: sc.vmSettingsStatus, body: sc.vmSettingsStatus === 404 ? 'vmSettings not supported' : 'simulated' };
      case 'hgArtifact': {
        if (req.headers['x-ms-version'] !== '2015-09-01') { fail(rec, 'hgArtifact without x-ms-version 2015-09-01'); return { status: 400, body: 'x-ms-version required' }; }
        if (!idsOk()) return { status: 400, body: 'InvalidContainerConfiguration' };
        const loc = req.headers['x-ms-artifact-location'];
        if (typeof loc !== 'string' || !loc) { fail(rec, 'hgArtifact without x-ms-artifact-location'); return { status: 400, body: 'x-ms-artifact-location required' }; }
        let target: URL;
        try { target = new URL(loc); } catch { fail(rec, 'hgArtifact x-ms-artifact-location is not a URL'); return { status: 400 }; }
        if (target.origin !== new URL(base).origin) return { status: 502, body: 'upstream: artifact not in this storage account' };
        const a = storageAnswer(target.pathname);
        return a.status === 404 ? { status: 502, body: `upstream 404: ${a.body ?? ''}` } : a;
      }
      case 'hgStatus': {
        if (!idsOk()) return { status: 400, body: 'InvalidContainerConfiguration' };
        if (req.headers['x-ms-version'] !== '2015-09-01') { fail(rec, 'hgStatus without x-ms-version 2015-09-01'); return { status: 400 }; }
        let env: { content?: string; headers?: { headerName: string; headerValue: string }[]; requestUri?: string };
        try { env = JSON.parse(body.toString('utf8')); } catch { fail(rec, 'hgStatus body is not JSON'); return { status: 400 }; }
        if (!env || typeof env.requestUri !== 'string' || !Array.isArray(env.headers)) {
          fail(rec, 'hgStatus envelope lacks requestUri or headers');
          return { status: 400 };
        }
        let target: URL;
        try { target = new URL(env.requestUri); } catch { fail(rec, 'hgStatus requestUri is not a URL'); return { status: 400 }; }
        if (target.pathname !== blobPath()) { fail(rec, `hgStatus requestUri ${target.pathname} is not the status blob`); return { status: 400 }; }
        const headers: Record<string, string | undefined> = {};
        for (const h of env.headers) headers[String(h.headerName).toLowerCase()] = String(h.headerValue);
        const content = env.content === undefined ? Buffer.alloc(0) : Buffer.from(env.content, 'base64');
        if (headers['content-length'] !== undefined && Number(headers['content-length']) !== content.length) {
          fail(rec, `hgStatus Content-Length ${headers['content-length']} != content ${content.length}`);
          return { status: 400 };
        }
        const r = blobs.put({ name: target.pathname, query: target.searchParams, headers, body: content });
        if (r.error) { fail(rec, `hgStatus → blob: ${r.error}`); return { status: 502, body: r.error }; }
        return { status: 200 };
      }
      default: return { status: 404 };
    }
  }

  function handleImds(req: http.IncomingMessage, u: URL): Answer {
    if (String(req.headers['metadata'] ?? '').toLowerCase() !== 'true') return { status: 400, body: 'Bad request. Required metadata header not specified' };
    const json = (v: unknown): Answer => ({ status: 200, body: JSON.stringify(v), headers: { 'Content-Type': 'application/json' } });
    if (u.pathname === '/metadata/instance/compute/publicKeys') return json(sc.imdsPublicKeys);
    if (u.pathname === '/metadata/instance/compute') return json({ name: sc.ids.instanceName, location: 'simulated', vmId: sc.ids.containerId, publicKeys: sc.imdsPublicKeys, osType: 'Linux' });
    if (u.pathname === '/metadata/instance') return json({ compute: { name: sc.ids.instanceName, publicKeys: sc.imdsPublicKeys }, network: { interface: [] } });
    return { status: 404 };
  }

  function makeServer(listener: Recorded['listener']): http.Server {
    return http.createServer((req, res) => {
      void (async () => {
        const time = Date.now();
        const u = new URL(req.url ?? '/', 'http://simulator');
        const method = req.method ?? 'GET';
        let body: Buffer;
        try { body = await readBody(req); } catch { res.destroy(); return; }
        const kind: RequestKind = listener === 'wire' ? wireKind(method, u) : listener === 'hostplugin' ? hostPluginKind(method, u) : 'imds';
        const attempt = (counts[kind] = (counts[kind] ?? 0) + 1);
        const rec: Recorded = {
          seq: ++seq, time, listener, kind, attempt, method, path: req.url ?? '/', headers: { ...req.headers },
          body: body.length > 65536 ? body.subarray(0, 65536).toString('utf8') + '…' : body.toString('utf8'), status: 0,
        };
        requests.push(rec);
        const artifact = kind === 'hgArtifact' ? String(req.headers['x-ms-artifact-location'] ?? '') : '';
        const fault = findFault(kind, attempt, artifact ? `${rec.path} ${artifact}` : rec.path);
        try {
          if (fault?.stallMs) await sleep(fault.stallMs);
          if (fault?.drop) { rec.fault = 'drop'; res.socket?.destroy(); return; }
          if (fault?.status) {
            rec.fault = `status ${fault.status}`;
            rec.status = fault.status;
            const h: Record<string, string> = {};
            if (fault.retryAfter !== undefined) h['Retry-After'] = String(fault.retryAfter);
            res.writeHead(fault.status, h).end(fault.body ?? `simulated fault ${fault.status}`);
            return;
          }
          let ans: Answer;
          if (fault?.malformed) {
            rec.fault = 'malformed';
            ans = { status: 200, body: '<GoalState><Incarnation>1</Incarn', headers: { 'Content-Type': 'text/xml' } };
          } else if (listener === 'wire') ans = await handleWire(kind, req, u, body, rec, fault);
          else if (listener === 'hostplugin') ans = handleHostPlugin(kind, req, body, rec);
          else ans = handleImds(req, u);
          let payload = ans.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(ans.body) ? ans.body : Buffer.from(ans.body);
          rec.status = ans.status;
          if (fault?.replaceBody !== undefined) { rec.fault = 'replaceBody'; rec.status = ans.status = 200; payload = Buffer.from(fault.replaceBody); }
          if (fault?.corrupt && payload.length) {
            rec.fault = 'corrupt';
            payload = Buffer.from(payload);
            payload[Math.floor(payload.length / 2)] ^= 0xff;
          }
          if (fault?.extraContentLength) {
            rec.fault = `extraContentLength ${fault.extraContentLength}`;
            res.writeHead(ans.status, { ...ans.headers, 'Content-Length': String(payload.length + fault.extraContentLength) });
            res.write(payload);
            setTimeout(() => res.socket?.destroy(), 20);
            return;
          }
          if (fault?.stallMidBodyMs) {
            rec.fault = `stallMidBody ${fault.stallMidBodyMs}ms`;
            res.writeHead(ans.status, { ...ans.headers, 'Content-Length': String(payload.length) });
            res.write(payload.subarray(0, Math.floor(payload.length / 2)));
            await sleep(fault.stallMidBodyMs);
            res.socket?.destroy();
            return;
          }
          if (fault?.truncate) {
            rec.fault = 'truncate';
            res.writeHead(ans.status, { ...ans.headers, 'Content-Length': String(payload.length) });
            res.write(payload.subarray(0, Math.floor(payload.length / 2)));
            setTimeout(() => res.socket?.destroy(), 20);
            return;
          }
          if (fault?.stallMs) rec.fault = `stall ${fault.stallMs}ms`;
          res.writeHead(ans.status, { ...ans.headers, 'Content-Length': String(payload.length) }).end(payload);
        } catch (e) {
          fail(rec, `simulator error: ${(e as Error).stack ?? e}`);
          rec.status = 500;
          if (!res.headersSent) res.writeHead(500).end('simulator error');
        } finally {
          afterRequest(rec);
        }
      })();
    });
  }

  const wire = makeServer('wire');
  const hgap = makeServer('hostplugin');
  const servers = [wire, hgap];
  const port = await listen(wire, host, opts.port ?? 0);
  base = `http://${host}:${port}`;
  let hostPluginPort: number;
  try {
    hostPluginPort = await listen(hgap, host, opts.hostPluginPort ?? 0);
  } catch (e) {
    wire.close();
    throw e;
  }
  let imdsPort: number | undefined;
  if (opts.imdsPort !== undefined) {
    const imds = makeServer('imds');
    servers.push(imds);
    imdsPort = await listen(imds, opts.imdsHost ?? host, opts.imdsPort);
  }

  if (opts.logDir) {
    writeFileSync(join(opts.logDir, 'summary.json'), JSON.stringify(summary(), null, 1));
    writeFileSync(join(opts.logDir, 'requests.jsonl'), '');
  }

  const sim: Simulator = {
    url: base,
    port,
    hostPluginPort,
    imdsPort,
    requests,
    blobs,
    summary,
    setScenario(s: Scenario): void {
      sc = s;
      if (s.incarnation > incarnation) { incarnation = s.incarnation; served.add(String(incarnation)); }
    },
    bumpIncarnation: bump,
    waitFor(pred, timeoutMs): Promise<Summary> {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const s = summary();
          if (pred(s)) { waiters.delete(check); clearTimeout(timer); resolve(s); }
        };
        const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`simulator: condition not met within ${timeoutMs} ms`)); }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    writeLogs(dir: string): void {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'requests.jsonl'), requests.map((r) => JSON.stringify(r)).join('\n') + (requests.length ? '\n' : ''));
      writeFileSync(join(dir, 'summary.json.tmp'), JSON.stringify(summary(), null, 1));
      renameSync(join(dir, 'summary.json.tmp'), join(dir, 'summary.json'));
    },
    close(): Promise<void> {
      return Promise.all(servers.map((s) => new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); }))).then(() => undefined);
    },
  };
  return sim;
}

export { configPath };
