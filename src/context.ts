/**
 * What every part of the agent is given: the configuration, the OS object (root prefix + command runner inside it),
 * and the logger. Built once by the command that runs (cli/*), passed down; data flows one way.
 */
import type { Config } from './config/config';
import type { Logger } from './core/log';
import type { LinuxOS } from './os/linux';

export interface AgentContext {
  conf: Config;
  os: LinuxOS;
  log: Logger;
  /** Agent path of Lib.Dir (normally /var/lib/waagent). */
  libDir: string;
}
