/**
 * argv → command; nothing else. Command modules are loaded lazily so that `-version` and `-help` load almost
 * nothing. Exit codes (DECISIONS.md D16): 0 success, 1 the command failed, 2 usage error.
 */
import { existsSync, writeSync } from 'node:fs';
import { parseArgs, type CliOptions } from './cli/args';

/** Runs one command line (without node and script) and returns the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const parsed = parseArgs(args, (p) => existsSync(p));
  if (!parsed.ok) {
    const { usageText } = await import('./cli/help');
    writeSync(2, `${parsed.message}\n${usageText()}`);
    return parsed.exitCode;
  }
  const opts = parsed.opts;
  switch (opts.command) {
    case 'help': return (await import('./cli/help')).runHelp();
    case 'version': return (await import('./cli/version')).runVersion();
    case 'start': return (await import('./cli/start')).runStart(opts);
    default: return guarded(opts);
  }
}

/** Commands that read the configuration: any error is logged and printed as `Failed to run '<command>': ...`. */
async function guarded(opts: CliOptions): Promise<number> {
  try {
    switch (opts.command) {
      case 'daemon': return await (await import('./cli/daemon')).runDaemon(opts);
      case 'run-exthandlers': return await (await import('./cli/run-exthandlers')).runExtHandlers(opts);
      case 'deprovision': return await (await import('./cli/deprovision')).runDeprovision(opts, false);
      case 'deprovision+user': return await (await import('./cli/deprovision')).runDeprovision(opts, true);
      case 'provision': return await (await import('./cli/provision')).runProvision(opts, opts.ovfPath);
      case 'register-service': return await (await import('./cli/register-service')).runRegisterService(opts);
      case 'show-configuration': return await (await import('./cli/show-configuration')).runShowConfiguration(opts);
      case 'serialconsole': return await (await import('./cli/serialconsole')).runSerialConsole(opts);
      case 'setup-firewall': return await (await import('./cli/setup-firewall')).runSetupFirewall(opts, opts.firewallIp ?? '');
      default: throw new Error(`unhandled command ${opts.command}`);
    }
  } catch (e) {
    const msg = `Failed to run '${opts.command}': ${e instanceof Error ? e.message : String(e)}`;
    let printed = false;
    try {
      (await import('./core/log')).log.error(msg);
      printed = (await import('./cli/setup')).logsOnStderr();
    } catch { /* logging must not hide the error */ }
    if (!printed) writeSync(2, `${msg}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => { writeSync(2, `Failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`); process.exit(1); },
  );
}
