/**
 * Wire server endpoint discovery (fabric-protocol.md §1.2–1.3, DECISIONS.md D10, D14): the cached
 * `<lib>/WireServerEndpoint` (`host` or `host:port`), the host route to 168.63.129.16 in /proc/net/route, DHCP
 * option 245 in the lease files of dhclient (ISC and OpenBSD), NetworkManager's dhclient backend and systemd-networkd,
 * the raw DHCP probe (fabric/dhcp.ts, run by the link) and finally the well-known 168.63.129.16. Every path goes through the root prefix (HostFs).
 */
import * as fs from 'node:fs';
import type { HostFs } from '../os/os';
import { log } from '../core/log';

export const KNOWN_WIRE_SERVER = '168.63.129.16';
/** 168.63.129.16 in the little-endian hex of /proc/net/route's Destination column. */
const ROUTE_HEX = '10813FA8';
export const ENDPOINT_FILE = 'WireServerEndpoint';
export const PROTOCOL_FILE = 'Protocol';

export interface Endpoint {
  host: string;
  /** Wire server port; absent = 80. Never applies to the host plugin (D24). */
  port?: number;
}

/** How an endpoint candidate was found (for logs). */
export type EndpointSource = 'cache' | 'route' | 'lease' | 'dhcp' | 'default';

/** Parses `host` or `host:port` (IPv4 or a name; `[v6]:port` too). Empty/garbage → undefined. */
export function parseEndpoint(text: string | undefined): Endpoint | undefined {
  const s = text?.trim();
  if (!s || /\s/.test(s)) return undefined;
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(s);
  const m = v6 ?? /^([A-Za-z0-9.-]+)(?::(\d+))?$/.exec(s);
  if (!m) return undefined;
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return port === undefined ? { host: m[1] } : { host: m[1], port };
}

/** `host` or `host:port` as the endpoint file holds it. */
export function formatEndpoint(ep: Endpoint): string {
  const h = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  return ep.port === undefined ? h : `${h}:${ep.port}`;
}

/** `http://host[:port]` of the wire server. */
export function wireBaseUrl(ep: Endpoint): string {
  return `http://${formatEndpoint(ep)}`;
}

/**
 * Reads `<lib>/WireServerEndpoint`; missing, empty, unparsable or unreadable (a directory, a FIFO, a symlink, too
 * large, EACCES, EIO) → undefined, with a warning for the unreadable cases. Never throws, never blocks.
 */
export function readCachedEndpoint(hostFs: HostFs, libDir: string): Endpoint | undefined {
  const file = `${libDir}/${ENDPOINT_FILE}`;
  try {
    return parseEndpoint(hostFs.readText(file, 4096));
  } catch (e) {
    log.warn(`Ignoring the cached endpoint ${file}: ${(e as Error).message}`);
    return undefined;
  }
}

/** Records a verified endpoint: `<lib>/WireServerEndpoint` (no newline) and `<lib>/Protocol` = `WireProtocol`, 0600. */
export function saveEndpoint(hostFs: HostFs, libDir: string, ep: Endpoint): void {
  hostFs.mkdir(libDir, 0o700);
  hostFs.write(`${libDir}/${ENDPOINT_FILE}`, formatEndpoint(ep), { mode: 0o600 });
  hostFs.write(`${libDir}/${PROTOCOL_FILE}`, 'WireProtocol', { mode: 0o600 });
}

/** True when /proc/net/route holds a route to 168.63.129.16 (§1.2 step 3). */
export function routeHasWireServer(routeText: string | undefined): boolean {
  return !!routeText && routeText.split('\n').some((l) => l.toUpperCase().includes(ROUTE_HEX));
}

function hexIp(parts: string[]): string | undefined {
  if (parts.length !== 4) return undefined;
  const n = parts.map((p) => parseInt(p, 16));
  return n.every((x) => Number.isInteger(x) && x >= 0 && x <= 255) ? n.join('.') : undefined;
}

/**
 * Option 245 from dhclient lease text (ISC `option unknown-245`, OpenBSD `option option-245`): the last lease block
 * that is not expired wins; `expire never` never expires; an unparsable expiry counts as expired (§1.3).
 */
export function endpointFromDhclientLeases(text: string, now: Date = new Date()): string | undefined {
  let answer: string | undefined;
  let candidate: string | undefined;
  let expired = true;
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (/^lease\b/.test(l)) { candidate = undefined; expired = true; }
    if (/\bexpire\b/.test(l)) {
      if (l.includes('never')) expired = false;
      else {
        const m = /expire\s+\d+\s+(\d{4})\/(\d{1,2})\/(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})/.exec(l);
        expired = m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) <= now.getTime() : true;
      }
    }
    const opt = /option\s+(?:unknown|option)-245\s+([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\s*;/.exec(l);
    if (opt) candidate = hexIp(opt.slice(1, 5));
    if (l.includes('}')) {
      if (candidate && !expired) answer = candidate;
      candidate = undefined;
    }
  }
  return answer;
}

/** Option 245 from a systemd-networkd lease file (`OPTION_245=a83f8110`); no expiry check (§1.3). */
export function endpointFromNetworkdLease(text: string): string | undefined {
  const m = /^OPTION_245=([0-9a-fA-F]{8})\s*$/m.exec(text);
  return m ? hexIp(m[1].match(/../g) ?? []) : undefined;
}

/**
 * Reads a procfs file (its size is reported as 0, so the capped reader of core/files would stop after one byte);
 * missing or unreadable → undefined. At most 1 MiB is kept.
 */
function readProcFile(hostFs: HostFs, abs: string): string | undefined {
  try {
    return fs.readFileSync(hostFs.p(abs), 'utf8').slice(0, 1024 * 1024);
  } catch {
    return undefined;
  }
}

/** Lease locations: directory, file-name filter, format. */
const LEASE_DIRS: { dir: string; match: RegExp; kind: 'dhclient' | 'networkd' }[] = [
  { dir: '/var/lib/dhcp', match: /^dhclient.*\.leases?$/, kind: 'dhclient' },
  { dir: '/var/lib/dhclient', match: /^dhclient.*\.leases?$/, kind: 'dhclient' },
  { dir: '/var/lib/NetworkManager', match: /^dhclient.*\.lease$/, kind: 'dhclient' },
  { dir: '/var/db', match: /^dhclient\.leases\..+$/, kind: 'dhclient' },
  { dir: '/run/systemd/netif/leases', match: /^[^.].*$/, kind: 'networkd' },
];

/**
 * Searches every known lease file for option 245; files are read in ascending modification time (ties by name), so
 * the newest file that yields an address wins. Unreadable files are skipped.
 */
export function endpointFromLeases(hostFs: HostFs, now: Date = new Date()): string | undefined {
  const files: { path: string; mtime: number; kind: 'dhclient' | 'networkd' }[] = [];
  for (const d of LEASE_DIRS) {
    for (const name of hostFs.readdir(d.dir)) {
      if (!d.match.test(name)) continue;
      const p = `${d.dir}/${name}`;
      const st = hostFs.stat(p);
      if (st?.isFile()) files.push({ path: p, mtime: st.mtimeMs, kind: d.kind });
    }
  }
  files.sort((a, b) => a.mtime - b.mtime || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  let answer: string | undefined;
  for (const f of files) {
    let text: string | undefined;
    try { text = hostFs.readText(f.path, 4 * 1024 * 1024); } catch { continue; }
    if (!text) continue;
    const ip = f.kind === 'networkd' ? endpointFromNetworkdLease(text) : endpointFromDhclientLeases(text, now);
    if (ip) answer = ip;
  }
  return answer;
}

export interface DiscoveryOptions {
  /** `Protocol.EndpointDiscovery` (default `dhcp`). */
  method?: string;
  /** Ignore the cached file and the lease files (a previous probe of them failed, §1.2 step 4). */
  skipCache?: boolean;
  now?: Date;
}

/**
 * Picks the endpoint to try next, in order: the cached `WireServerEndpoint` (written after a past success, and the
 * test override of D14), the route to 168.63.129.16, the DHCP lease files, and finally 168.63.129.16 (`default`: the
 * caller tries the raw DHCP probe first, fabric/dhcp.ts, since it is asynchronous and needs root). Never throws; the
 * caller verifies the answer with `?comp=versions`.
 */
export function discoverEndpoint(hostFs: HostFs, libDir: string, opts: DiscoveryOptions = {}): { endpoint: Endpoint; source: EndpointSource } {
  if (!opts.skipCache) {
    const cached = readCachedEndpoint(hostFs, libDir);
    if (cached) return { endpoint: cached, source: 'cache' };
  }
  if ((opts.method ?? 'dhcp') !== 'dhcp') return { endpoint: { host: KNOWN_WIRE_SERVER }, source: 'default' };
  if (routeHasWireServer(readProcFile(hostFs, '/proc/net/route'))) return { endpoint: { host: KNOWN_WIRE_SERVER }, source: 'route' };
  if (!opts.skipCache) {
    const lease = endpointFromLeases(hostFs, opts.now);
    if (lease) return { endpoint: { host: lease }, source: 'lease' };
  }
  return { endpoint: { host: KNOWN_WIRE_SERVER }, source: 'default' };
}
