/** `-help` (also `-usage`, `-?`, no command at all): the usage (provisioning-and-os.md §1.2). No config is read. */
import { writeSync } from 'node:fs';

/** The one usage line listing every command and flag. */
export const USAGE_LINE =
  'Usage: waagent [-verbose] [-force] [-help] [-configuration-path:<path>] ' +
  '-deprovision[+user]|-register-service|-version|-daemon|-start|-run-exthandlers|-show-configuration' +
  '|-serialconsole|-setup-firewall=<ip>|-provision[:<ovf-env.xml>]';

const COMMANDS: [string, string][] = [
  ['-daemon', 'run the agent daemon: provisioning, health reports, goal-state polling and the enabled duties'],
  ['-start', 'start the daemon detached from this terminal and return'],
  ['-provision[:<path>]', 'provision once from the DVD (or from the given ovf-env.xml) and exit'],
  ['-deprovision', 'remove machine-specific data before capturing an image (asks first; -force skips)'],
  ['-deprovision+user', 'the same, and delete the provisioned user account'],
  ['-register-service', 'register the agent with the init system, then restart it'],
  ['-run-exthandlers', 'goal-state polling alone, without provisioning (the daemon runs it itself)'],
  ['-show-configuration', 'print every configuration option with its effective value'],
  ['-serialconsole', 'add console=ttyS0 earlyprintk=ttyS0 to the boot configuration (GRUB) and regenerate it'],
  ['-setup-firewall=<ip>', 'create the wire-server firewall rules (only root may reach <ip>) once and exit'],
  ['-version', 'print the agent, runtime and OS versions'],
  ['-help', 'print this text'],
];

const FLAGS: [string, string][] = [
  ['-verbose', 'VERBOSE log level on stdout and in the log file'],
  ['-force', 'do not ask for confirmation (deprovision)'],
  ['-configuration-path:<path>', 'read this configuration file instead of the default one'],
  ['--log-file=<path>', 'log to this file instead of /var/log/waagent.log'],
];

/** The full help text: blank line, usage line, blank line, then one line per command and flag. */
export function helpText(): string {
  const w = Math.max(...[...COMMANDS, ...FLAGS].map(([c]) => c.length)) + 2;
  const rows = (l: [string, string][]) => l.map(([c, d]) => `  ${c.padEnd(w)}${d}\n`).join('');
  return `\n${USAGE_LINE}\n\nCommands (the leading - is optional; --x and /x work too):\n${rows(COMMANDS)}\nFlags:\n${rows(FLAGS)}\n`;
}

/** The short usage for errors: blank line, usage line, blank line. */
export function usageText(): string {
  return `\n${USAGE_LINE}\n\n`;
}

/** Prints the help on stdout; exit code 0. */
export function runHelp(): number {
  writeSync(1, helpText());
  return 0;
}
