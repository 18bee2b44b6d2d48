/**
 * `-serialconsole`: not implemented yet (another part of the project writes it). Says so on stderr and fails (exit 1) rather
 * than pretending to work.
 */
import type { CliOptions } from './args';

/** Prints `serialconsole is not implemented yet` on stderr; exit code 1. */
export async function runSerialConsole(_opts: CliOptions): Promise<number> {
  process.stderr.write('serialconsole is not implemented yet\n');
  return 1;
}
