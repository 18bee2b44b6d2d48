/**
 * Standalone fabric simulator (used inside the throwaway VM's network namespace):
 *   node build/test/fabric/run-simulator.js --scenario s.json --log-dir DIR [--host 127.0.0.1] [--port 80]
 *        [--host-plugin-port 32526] [--imds-host H --imds-port P]
 * Keeps DIR/requests.jsonl and DIR/summary.json current while it runs, writes DIR/ready once listening, and writes
 * the final log on SIGTERM/SIGINT, then exits 0. SIGHUP re-reads the scenario file; SIGUSR2 raises the incarnation. Exit 1 with a message on a bad scenario or a port it cannot bind.
 * It may run as PID 1 of a PID namespace (orphans left there stay zombies until the namespace ends).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSimulator } from './simulator';
import type { Scenario } from './scenario';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const scenarioFile = arg('--scenario');
  const logDir = arg('--log-dir');
  if (!scenarioFile || !logDir) {
    process.stderr.write('usage: run-simulator --scenario FILE --log-dir DIR [--host H] [--port P] [--host-plugin-port P] [--imds-host H --imds-port P]\n');
    process.exit(2);
  }
  const scenario = JSON.parse(readFileSync(scenarioFile, 'utf8')) as Scenario;
  const imdsPort = arg('--imds-port');
  const sim = await startSimulator(scenario, {
    host: arg('--host') ?? '127.0.0.1',
    port: Number(arg('--port') ?? 80),
    hostPluginPort: Number(arg('--host-plugin-port') ?? 32526),
    imdsHost: arg('--imds-host'),
    imdsPort: imdsPort === undefined ? undefined : Number(imdsPort),
    logDir,
  });
  const stop = (): void => {
    try { sim.writeLogs(logDir); } finally { void sim.close().finally(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref(); }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Control from outside the namespace: SIGHUP re-reads the scenario file, SIGUSR2 raises the incarnation.
  process.on('SIGHUP', () => {
    try { sim.setScenario(JSON.parse(readFileSync(scenarioFile, 'utf8')) as Scenario); sim.writeLogs(logDir); } catch (e) { process.stderr.write(`run-simulator: scenario reload failed: ${(e as Error).message}\n`); }
  });
  process.on('SIGUSR2', () => { sim.bumpIncarnation(); sim.writeLogs(logDir); });
  writeFileSync(join(logDir, 'ready'), JSON.stringify({ pid: process.pid, url: sim.url, hostPluginPort: sim.hostPluginPort, imdsPort: sim.imdsPort }));
}

main().catch((e: unknown) => {
  process.stderr.write(`run-simulator: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
