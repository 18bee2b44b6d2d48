/**
 * `-setup-firewall`: not implemented yet (another part of the project writes it). Says so on stderr and fails (exit 1) rather
 * than pretending to work.
 */
import type { CliOptions } from './args';

/** Prints `setup-firewall is not implemented yet` on stderr; exit code 1. */
export async function runSetupFirewall(_opts: CliOptions, _ip: string): Promise<number> {
  process.stderr.write('setup-firewall is not implemented yet\n');
  return 1;
}
