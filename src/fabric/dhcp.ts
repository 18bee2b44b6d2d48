/**
 * The raw DHCP probe for the wire server (fabric-protocol.md §1.4, provisioning-and-os.md §6.2): a DHCPDISCOVER
 * broadcast from 0.0.0.0:68 whose reply carries option 245 (the wire server), option 3 (router) and option 249
 * (classless static routes) for route repair (§6.3). Used only when neither the route table nor a lease names the
 * wire server. The temporary broadcast route (no default route) is added and removed around each attempt; udp/68 is
 * opened in the filter table first (§6.9). Attempts are spread over the caller's discovery rounds (0, 10, 30, 60,
 * 60 s apart, at most 5 per process), so a lease that appears meanwhile is still found at once.
 */
import * as dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import type { LinuxOS } from '../os/linux';
import type { StaticRoute } from '../os/net';
import { log, errorText } from '../core/log';

const COOKIE = Buffer.from([0x63, 0x82, 0x53, 0x63]);
const MIN_REPLY = 246;

/** The 244-byte DHCPDISCOVER of §1.4. */
export function buildDiscover(xid: Buffer, mac: Buffer, broadcast: boolean): Buffer {
  if (xid.length !== 4 || mac.length !== 6) throw new Error('DHCP request: bad transaction id or MAC length');
  const p = Buffer.alloc(244);
  p[0] = 1; p[1] = 1; p[2] = 6;
  xid.copy(p, 4);
  if (broadcast) p[10] = 0x80;
  mac.copy(p, 28);
  COOKIE.copy(p, 236);
  p[240] = 53; p[241] = 1; p[242] = 1;
  p[243] = 255;
  return p;
}

export interface DhcpReply {
  /** Option 245 (the wire server). */
  endpoint?: string;
  /** Option 3 (first router). */
  gateway?: string;
  /** Option 249 routes. */
  routes: StaticRoute[];
}

const ip4 = (b: Buffer, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

/** Option 249: `[prefix bits][ceil(bits/8) network octets][4 gateway octets]`…; a truncated entry ends the list. */
export function parseStaticRoutes(data: Buffer): StaticRoute[] {
  const out: StaticRoute[] = [];
  let i = 0;
  while (i < data.length) {
    const bits = data[i];
    const n = Math.ceil(bits / 8);
    if (bits > 32 || i + 1 + n + 4 > data.length) break;
    const net = Buffer.alloc(4);
    data.copy(net, 0, i + 1, i + 1 + n);
    out.push({ network: ip4(net, 0), prefix: bits, gateway: ip4(data, i + 1 + n) });
    i += 1 + n + 4;
  }
  return out;
}

/**
 * Validates a reply against the request (length ≥ 246, transaction id, MAC, cookie) and parses its options; undefined
 * when it is not an answer to this request. Never throws on hostile input.
 */
export function parseReply(reply: Buffer, request: Buffer): DhcpReply | undefined {
  if (reply.length < MIN_REPLY) return undefined;
  if (!reply.subarray(4, 8).equals(request.subarray(4, 8))) return undefined;
  if (!reply.subarray(28, 34).equals(request.subarray(28, 34))) return undefined;
  if (!reply.subarray(236, 240).equals(COOKIE)) return undefined;
  const out: DhcpReply = { routes: [] };
  let i = 240;
  while (i < reply.length) {
    const code = reply[i];
    if (code === 255) break;
    if (code === 0) { i++; continue; }
    if (i + 1 >= reply.length) break;
    const len = reply[i + 1];
    const data = reply.subarray(i + 2, i + 2 + len);
    if (data.length < len) break;
    if (code === 245 && len === 4) out.endpoint = ip4(data, 0);
    else if (code === 3 && len >= 4 && len % 4 === 0) out.gateway = ip4(data, 0);
    else if (code === 249) out.routes = parseStaticRoutes(data);
    i += 2 + len;
  }
  return out;
}

/** One send/receive on 0.0.0.0:68 → 255.255.255.255:67: the first valid reply, or undefined after `timeoutMs`. */
export function exchange(request: Buffer, timeoutMs: number, port = { client: 68, server: 67, to: '255.255.255.255' }): Promise<DhcpReply | undefined> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    let done = false;
    const finish = (v: DhcpReply | undefined, e?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try { sock.close(); } catch { /* closed */ }
      if (e) reject(e); else resolve(v);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    sock.on('error', (e) => finish(undefined, e));
    sock.on('message', (msg) => {
      if (msg.length > 1024) msg = msg.subarray(0, 1024);
      const r = parseReply(msg, request);
      if (r) finish(r);
    });
    sock.bind({ port: port.client, address: '0.0.0.0', exclusive: true }, () => {
      try { sock.setBroadcast(true); } catch (e) { finish(undefined, e as Error); return; }
      sock.send(request, port.server, port.to, (e) => { if (e) finish(undefined, e); });
    });
  });
}

/** Pauses after the 1st…5th failed attempt (§6.2 step 8). */
export const PROBE_DELAYS_MS = [0, 10_000, 30_000, 60_000, 60_000];

export interface ProbeResult extends DhcpReply { iface: string }

/** The probe's state in this process: how many attempts failed, when the next may start, the last good answer. */
class ProbeState {
  probes = 0;
  failed = 0;
  nextAt = 0;
  last: ProbeResult | undefined;
}
const state = new ProbeState();

/** The last successful probe of this process (route repair, §6.3 and §6.4 use its gateway and routes). */
export function lastProbe(): ProbeResult | undefined { return state.last; }

/** Whether the probe can run here: the real root, as root, on an OS that has it. */
export function probeAvailable(os: LinuxOS): boolean {
  return os.root.isReal && process.geteuid?.() === 0 && process.platform === 'linux';
}

export interface ProbeOptions {
  timeoutMs?: number;
  delaysMs?: number[];
  now?: () => number;
  /** Ports and destination of the exchange (tests: a server on loopback). */
  port?: { client: number; server: number; to: string };
}

/**
 * One probe attempt if one is due (at most 5 per process, spaced by PROBE_DELAYS_MS). Resolves to the answer (with
 * routes configured, §6.3), or undefined: no attempt due, no interface, no reply, no option 245. Never throws.
 */
export async function probeOnce(os: LinuxOS, o: ProbeOptions = {}): Promise<ProbeResult | undefined> {
  try {
    return await probeAttempt(os, o);
  } catch (e) {
    log.warn(`DHCP probe failed: ${errorText(e)}`);
    return undefined;
  }
}

async function probeAttempt(os: LinuxOS, o: ProbeOptions): Promise<ProbeResult | undefined> {
  const now = o.now ?? Date.now;
  const delays = o.delaysMs ?? PROBE_DELAYS_MS;
  if (state.failed >= delays.length || now() < state.nextAt) return undefined;
  const iface = os.net.primaryInterface();
  const mac = iface ? os.net.macOf(iface) : undefined;
  if (!iface || !mac) {
    log.warn(`DHCP probe: no usable interface (${iface ?? 'none'})`);
    state.failed = delays.length;
    return undefined;
  }
  const request = buildDiscover(randomBytes(4), mac, state.probes++ > 0);
  let added = false;
  let reply: DhcpReply | undefined;
  // §6.2 step 3: on the distros flagged for it the DHCP client gives up port 68 during the probe.
  const client = os.dhcpClientProbeControl(iface);
  let stopped = false;
  try {
    if (!os.net.hasDefaultRoute()) added = await os.net.addBroadcastRoute(iface);
    if (client) { stopped = true; await runEach(os, client.stop, 'stop the DHCP client'); }
    await os.net.allowDhcpReplies();
    log.info(`DHCP probe on ${iface} (attempt ${state.failed + 1}/${delays.length})`);
    reply = await exchange(request, o.timeoutMs ?? 10_000, o.port);
  } catch (e) {
    log.warn(`DHCP probe failed: ${errorText(e)}`);
  } finally {
    if (stopped && client) await runEach(os, client.start, 'start the DHCP client');
    if (added) await os.net.removeBroadcastRoute(iface);
  }
  if (!reply?.endpoint) {
    log.warn(`DHCP probe: ${reply ? 'the reply has no option 245' : 'no reply'}`);
    state.nextAt = now() + delays[state.failed];
    state.failed++;
    return undefined;
  }
  const result: ProbeResult = { ...reply, iface };
  state.last = result;
  log.info(`DHCP probe: wire server ${reply.endpoint}${reply.gateway ? `, router ${reply.gateway}` : ''}${reply.routes.length ? `, ${reply.routes.length} static route(s)` : ''}`);
  const added2 = await os.net.configureRoutes(iface, reply.gateway, reply.routes);
  if (added2.length) log.info(`Routes added: ${added2.join('; ')}`);
  return result;
}

/** Runs each command (argv) in order; a failure is logged and the probe goes on (REF: chk_err=False). */
async function runEach(os: LinuxOS, cmds: string[][], what: string): Promise<void> {
  for (const argv of cmds) {
    const r = await os.run(argv);
    if (r.code !== 0) log.warn(`DHCP probe: cannot ${what} (${argv.join(' ')}): ${(r.stdout + r.stderr).trim() || r.spawnError || `exit ${r.code}`}`);
  }
}

/** Resets the per-process state (tests). */
export function resetProbeState(): void { Object.assign(state, new ProbeState()); }
