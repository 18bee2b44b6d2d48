/**
 * Which duties the daemon runs (duties.ts), in start order. Each is loaded lazily, only when its switch is on, so the
 * idle daemon holds the code of what it uses and nothing else.
 */
import type { AgentContext } from '../context';
import type { Duty } from './duties';

interface DutyEntry {
  name: string;
  /** Cheap check of the configuration before loading the module. */
  wanted(ctx: AgentContext): boolean;
  load(): Promise<Duty>;
}

const ENTRIES: DutyEntry[] = [
  { name: 'kernel', wanted: (c) => c.os.resourceDiskFlavor() !== 'openbsd',
    load: async () => (await import('./kernel/duty')).kernelDuty() },
  { name: 'resource disk', wanted: (c) => c.conf.bool('ResourceDisk.Format'),
    load: async () => (await import('./resource-disk/duty')).resourceDiskDuty },
  { name: 'firewall', wanted: (c) => c.conf.bool('OS.EnableFirewall'),
    load: async () => (await import('./network/firewall-duty')).firewallDuty() },
  { name: 'dhcp client monitor', wanted: (c) => (c.conf.str('Protocol.EndpointDiscovery') ?? 'dhcp') === 'dhcp',
    load: async () => (await import('./network/route-monitor')).dhcpClientMonitorDuty() },
  { name: 'persistent-net rules', wanted: (c) => c.os.net.removesPersistentNetRules(),
    load: async () => (await import('./network/route-monitor')).persistentNetRulesDuty() },
  { name: 'host-name monitor', wanted: (c) => c.conf.bool('Provisioning.MonitorHostName'),
    load: async () => (await import('./network/hostname-monitor')).hostnameMonitorDuty() },
  { name: 'JIT users', wanted: () => true,
    load: async () => (await import('./jit-users/duty')).jitUsersDuty() },
  { name: 'RDMA', wanted: (c) => c.conf.bool('OS.EnableRDMA') || c.conf.bool('OS.UpdateRdmaDriver') || c.conf.bool('OS.CheckRdmaDriver'),
    load: async () => (await import('./rdma/duty')).rdmaDuty() },
  { name: 'LB probe responder', wanted: (c) => c.conf.bool('LBProbeResponder'),
    load: async () => (await import('./network/lb-probe')).lbProbeDuty() },
];

/** Loads the duties whose switch is on. A module that fails to load is logged and left out. */
export async function loadDuties(ctx: AgentContext): Promise<Duty[]> {
  const out: Duty[] = [];
  for (const e of ENTRIES) {
    if (!e.wanted(ctx)) continue;
    try { out.push(await e.load()); } catch (err) { ctx.log.error(`${e.name}: cannot load: ${err instanceof Error ? err.message : String(err)}`); }
  }
  return out;
}
