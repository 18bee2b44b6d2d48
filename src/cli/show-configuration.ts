/**
 * `-show-configuration` (provisioning-and-os.md §1.2): every known option, `<Key> = <value>`, sorted by key in byte
 * order, after code defaults and the file are merged. Log lines go to stderr so that stdout is only the table.
 */
import { writeSync } from 'node:fs';
import type { CliOptions } from './args';
import type { Config } from '../config/config';
import { setupAgent } from './setup';
import { redactProxyCredentials } from '../core/proxy-auth';

/** The lines `-show-configuration` prints. */
export function configurationText(conf: Config): string {
  // D30: a proxy password never shows, not even in the operator's own configuration dump
  return conf.effective().map(([k, v]) => `${k} = ${k === 'HttpProxy.Host' ? redactProxyCredentials(String(v)) : v}\n`).join('');
}

/** Runs the start-up (§1.4) and prints the configuration; 0, or throws on a configuration error. */
export async function runShowConfiguration(opts: CliOptions): Promise<number> {
  const ctx = await setupAgent(opts, { logToStderr: true });
  writeSync(1, configurationText(ctx.conf));
  return 0;
}
