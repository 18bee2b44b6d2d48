/**
 * The command line (provisioning-and-os.md §1.1, DECISIONS.md D15/D26): WALinuxAgent's own grammar — each argument
 * is matched, in a fixed order, against `^[-/]*<word>` (so `-daemon`, `--daemon`, `/daemon`, `daemon` and even
 * `-daemonize` select the daemon), the last command wins, flags may appear anywhere — followed by minimist for our
 * few conventional `--long=value` options. Pure: no I/O except the injected existence check of the config file.
 */
import minimist from 'minimist';

export type Command =
  | 'help' | 'version' | 'daemon' | 'start' | 'register-service' | 'run-exthandlers' | 'deprovision'
  | 'deprovision+user' | 'show-configuration' | 'serialconsole' | 'setup-firewall' | 'provision';

export interface CliOptions {
  command: Command;
  /** `-verbose`: VERBOSE on stdout and in the log file. */
  verbose: boolean;
  /** `-force`: no deprovision confirmation. */
  force: boolean;
  /** `-debug`, `-full`: accepted (WALinuxAgent HEAD), no effect. */
  debug: boolean;
  full: boolean;
  /** `-configuration-path:<path>`; undefined = the distro default. */
  configPath?: string;
  /** `-provision:<path>`: ovf-env.xml to provision from instead of the DVD. */
  ovfPath?: string;
  /** `-setup-firewall=<ip>`: the wire server address. */
  firewallIp?: string;
  /** `--log-file=<path>`: replaces /var/log/waagent.log (tests, diagnostics). */
  logFile?: string;
  /** The arguments as given (the daemon passes the config path on to its child). */
  argv: string[];
}

export type ParseResult =
  | { ok: true; opts: CliOptions }
  /** exitCode 2: malformed arguments (usage on stderr); 1: the configuration file does not exist (D26). */
  | { ok: false; exitCode: 1 | 2; message: string };

interface Rule {
  re: RegExp;
  /** True for command words (the last one wins); false for flags. */
  command: boolean;
  apply(o: CliOptions, m: RegExpExecArray): void;
}

const cmd = (re: RegExp, c: Command): Rule => ({ re, command: true, apply: (o) => { o.command = c; } });
const flag = (re: RegExp, f: 'verbose' | 'force' | 'debug' | 'full'): Rule => ({ re, command: false, apply: (o) => { o[f] = true; } });

/** Rules 2–7 of §1.1 in order (rule 1, configuration-path, is handled first because it can fail). */
const RULES: Rule[] = [
  cmd(/^[-/]*deprovision\+user/, 'deprovision+user'),
  cmd(/^[-/]*deprovision/, 'deprovision'),
  cmd(/^[-/]*daemon/, 'daemon'),
  cmd(/^[-/]*start/, 'start'),
  cmd(/^[-/]*register-service/, 'register-service'),
  cmd(/^[-/]*run-exthandlers/, 'run-exthandlers'),
  cmd(/^[-/]*version/, 'version'),
  cmd(/^[-/]*serialconsole/, 'serialconsole'),
  { re: /^[-/]*setup-firewall=([\d.]{7,})/, command: true, apply: (o, m) => { o.command = 'setup-firewall'; o.firewallIp = m[1]; } },
  // Ours: one-shot provisioning, optionally from a file instead of the DVD.
  { re: /^[-/]*provision(?::(.+))?$/, command: true, apply: (o, m) => { o.command = 'provision'; o.ovfPath = m[1]; } },
  flag(/^[-/]*verbose/, 'verbose'),
  flag(/^[-/]*force/, 'force'),
  flag(/^[-/]*debug/, 'debug'),
  flag(/^[-/]*full/, 'full'),
  cmd(/^[-/]*show-configuration/, 'show-configuration'),
  cmd(/^[-/]*(help|usage|\?)/, 'help'),
];

function matchRule(a: string): { rule: Rule; m: RegExpExecArray } | undefined {
  for (const rule of RULES) {
    const m = rule.re.exec(a);
    if (m) return { rule, m };
  }
  return undefined;
}

/** Our conventional long options (parsed by minimist once the WALinuxAgent words are taken out). */
const LONG_OPTIONS = ['log-file'];
const LONG_RE = new RegExp(`^--(${LONG_OPTIONS.join('|')})(=|$)`);

/**
 * Parses the arguments (without node and script). `configExists` checks the `-configuration-path:` file (D26:
 * missing → exit 1 with `Error: Configuration file <path> does not exist`).
 */
export function parseArgs(args: readonly string[], configExists: (path: string) => boolean): ParseResult {
  const o: CliOptions = { command: 'help', verbose: false, force: false, debug: false, full: false, argv: [...args] };
  const long: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '') continue; // HEAD: empty arguments are ignored
    const cp = /^[-/]*configuration-path:([\w/.\-_]+)/.exec(a);
    if (cp) {
      if (!configExists(cp[1])) return { ok: false, exitCode: 1, message: `Error: Configuration file ${cp[1]} does not exist` };
      o.configPath = cp[1];
      continue;
    }
    const hit = matchRule(a);
    if (hit) {
      if (hit.rule.command) { o.firewallIp = undefined; o.ovfPath = undefined; }
      hit.rule.apply(o, hit.m);
      continue;
    }
    if (LONG_RE.test(a)) {
      long.push(a);
      // `--log-file <path>`: the value is the next argument.
      if (!a.includes('=') && i + 1 < args.length) long.push(args[++i]);
      continue;
    }
    return { ok: false, exitCode: 2, message: `Unknown argument: ${a}` };
  }
  if (long.length) {
    const m = minimist(long, { string: LONG_OPTIONS });
    const lf = m['log-file'];
    const value = Array.isArray(lf) ? lf[lf.length - 1] : lf;
    if (typeof value !== 'string' || value === '') return { ok: false, exitCode: 2, message: '--log-file needs a path (--log-file=<path>)' };
    o.logFile = value;
  }
  return { ok: true, opts: o };
}

/**
 * The arguments the daemon gives its `-run-exthandlers` child and `-start` gives the daemon: the command word, then
 * the flags and the configuration path as the user gave them.
 */
export function childArgs(opts: CliOptions, command: '-daemon' | '-run-exthandlers'): string[] {
  const out: string[] = [command];
  if (opts.verbose) out.push('-verbose');
  if (opts.configPath) out.push(`-configuration-path:${opts.configPath}`);
  if (opts.logFile) out.push(`--log-file=${opts.logFile}`);
  return out;
}
