/**
 * `LBProbeResponder` (DECISIONS.md D28): while the goal state lists `Machine/LBProbePorts/Port`, answer every TCP
 * connection on that port (on the primary interface's IPv4 address) with `HTTP/1.1 200 OK`, body `OK`; the listener
 * moves when a new goal state changes the port and closes when the port goes away or the daemon stops. The first probe
 * is logged, then at most one line an hour.
 */
import * as net from 'node:net';
import type { Duty, DutyEnv } from '../duties';
import type { AgentContext } from '../../context';
import type { GoalState } from '../../fabric/wire';
import { errorText } from '../../core/log';

const LOG_EVERY_MS = 3600_000;

/** The probe answer (D28). */
export function probeResponse(now = new Date()): string {
  return `HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/html\r\nDate: ${now.toUTCString()}\r\nConnection: close\r\n\r\nOK`;
}

class LbProbeResponder implements Duty {
  readonly name = 'LB probe responder';
  private server: net.Server | undefined;
  private bound: { port: number; host: string } | undefined;
  private count = 0;
  private lastLog = 0;
  /** Serialises listener changes (a goal state may arrive while the previous listener is still closing). */
  private chain: Promise<void> = Promise.resolve();

  enabled(ctx: AgentContext): boolean { return ctx.conf.bool('LBProbeResponder'); }

  onGoalState(gs: GoalState, env: DutyEnv): void {
    const port = gs.doc.lbProbePorts[0];
    this.chain = this.chain.then(() => this.moveTo(port, env)).catch((e) => env.ctx.log.warn(`LB probe responder: ${errorText(e)}`));
  }

  private async moveTo(port: number | undefined, env: DutyEnv): Promise<void> {
    const { ctx } = env;
    if (env.signal.aborted) return;
    const ifname = ctx.os.net.primaryInterface();
    const host = (ifname && ctx.os.net.ipv4Of(ifname)) || '0.0.0.0';
    if (this.bound && port === this.bound.port && host === this.bound.host) return;
    await this.close();
    if (port === undefined) { ctx.log.verbose('LB probe responder: no LBProbePorts in the goal state; not listening'); return; }
    const server = net.createServer((sock) => this.answer(sock, env));
    server.on('error', (e) => ctx.log.warn(`LB probe responder on ${host}:${port}: ${errorText(e)}`));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host }, () => { server.removeListener('error', reject); resolve(); });
    });
    this.server = server;
    this.bound = { port, host };
    ctx.log.info(`LB probe responder listening on ${host}:${port}`);
  }

  private answer(sock: net.Socket, env: DutyEnv): void {
    this.count++;
    const now = Date.now();
    if (this.count === 1 || now - this.lastLog >= LOG_EVERY_MS) {
      this.lastLog = now;
      env.ctx.log.info(`LB probe from ${sock.remoteAddress ?? '?'} answered (${this.count} so far)`);
    }
    sock.setTimeout(10_000, () => sock.destroy());
    sock.on('error', () => sock.destroy());
    let sent = false;
    const reply = (): void => { if (sent) return; sent = true; clearTimeout(t); sock.end(probeResponse()); };
    // Answer once the request arrived (or after a short wait for probes that send nothing).
    const t = setTimeout(reply, 200);
    sock.once('data', reply);
  }

  private async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    this.bound = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  async stop(): Promise<void> { await this.chain; await this.close(); }
}

export function lbProbeDuty(): Duty { return new LbProbeResponder(); }
