/**
 * Start-up shared by every command that reads the configuration (provisioning-and-os.md §1.4), in this order:
 * stdout log appender (INFO, or VERBOSE with -verbose), the configuration file, the log file
 * (/var/log/waagent.log, VERBOSE with -verbose or Logs.Verbose=y), /dev/console while Logs.Console=y and the VM is not
 * provisioned yet, Extension.LogDir (0755), and the OS object with its command runner (OPENSSL_FIPS=1 in the
 * children's environment when OS.EnableFIPS=y, DECISIONS.md D25).
 */
import * as fs from 'node:fs';
import { log, Level, streamAppender, fileAppender, type Appender, type Logger } from '../core/log';
import { createRunner } from '../core/exec';
import { SysRoot } from '../core/sysroot';
import { detectDistro } from '../os/detect';
import { createOs } from '../os/factory';
import { defaultConfigPath, loadConfig, reportProblems } from '../config/load';
import { proxySecrets } from '../core/proxy-auth';
import { exists } from '../core/files';
import type { AgentContext } from '../context';
import type { CliOptions } from './args';

/** The fixed log file (§10.10); `--log-file=` replaces it. */
export const LOG_FILE = '/var/log/waagent.log';

export interface SetupOptions {
  /** Send log lines meant for the terminal to stderr instead of stdout (commands whose stdout is data). */
  logToStderr?: boolean;
}

let consoleAppender: Appender | undefined;
let logFile: Appender | undefined;
let terminalOnStderr = false;

/** Whether setupAgent sent the terminal log lines to stderr (then errors need not be printed there twice). */
export function logsOnStderr(): boolean { return terminalOnStderr; }

/**
 * An appender for /dev/console, opened with O_NOCTTY so that the daemon never acquires the console as its controlling
 * terminal. A serial console is slow (115200 baud: ~9 ms for a 100-character line), so lines are queued and written
 * in the thread pool, never on the main thread; the queue is bounded (lines beyond 500 pending are dropped, the log
 * file has them all). Lines that cannot be written are dropped.
 */
export function devConsoleAppender(path = '/dev/console', level: Level = Level.INFO): Appender {
  const queue: string[] = [];
  let fd: number | undefined;
  let busy = false;
  let closed = false;
  const pump = (): void => {
    if (busy || closed || queue.length === 0) return;
    busy = true;
    const done = (): void => { busy = false; pump(); };
    const write = (): void => {
      const chunk = queue.splice(0, queue.length).join('');
      fs.write(fd as number, chunk, (err) => { if (err) { try { fs.closeSync(fd as number); } catch { /* ignore */ } fd = undefined; } done(); });
    };
    if (fd !== undefined) { write(); return; }
    fs.open(path, fs.constants.O_WRONLY | fs.constants.O_NOCTTY | fs.constants.O_APPEND, (err, opened) => {
      if (err) { queue.length = 0; done(); return; }
      fd = opened; write();
    });
  };
  return {
    level,
    kind: 'console',
    write(line) {
      if (closed) return;
      if (queue.length < 500) queue.push(line);
      pump();
    },
    close() {
      closed = true; queue.length = 0;
      if (fd !== undefined && !busy) { try { fs.closeSync(fd); } catch { /* ignore */ } fd = undefined; }
    },
  };
}

/** The log file appender (opened per line; see `fileAppender`). */
export const logFileAppender = fileAppender;

/** Stops mirroring the log to /dev/console (called once provisioning has completed, Logs.Console). */
export function dropConsoleAppender(): void {
  if (consoleAppender) { log.removeAppender(consoleAppender); consoleAppender = undefined; }
}

/**
 * Stops writing the log file (deprovisioning, §4.1 step 6: /var/log/waagent.log was deleted and must not be
 * re-created), leaving stdout and /dev/console as they are. Removes the appender `setupAgent` added and any other
 * `file` appender of `logger` (a context's own logger). Never fails.
 */
export function dropFileAppender(logger: Logger = log): void {
  if (logFile) { log.removeAppender(logFile); logFile = undefined; }
  logger.removeAppendersWhere((a) => a.kind === 'file');
}

/**
 * Runs the start-up side effects and returns the context every command is given. Errors (missing, unreadable or
 * empty configuration file; Extension.LogDir existing as a file) are thrown; the caller reports
 * `Failed to run '<command>': <details>` and exits 1.
 */
export async function setupAgent(opts: CliOptions, setup: SetupOptions = {}): Promise<AgentContext> {
  const root = new SysRoot('/');
  log.clearAppenders();
  consoleAppender = undefined;
  logFile = undefined;
  terminalOnStderr = setup.logToStderr === true;
  log.addAppender(streamAppender(setup.logToStderr ? process.stderr : process.stdout, opts.verbose ? Level.VERBOSE : Level.INFO));

  const distro = detectDistro(root);
  const confPath = opts.configPath ?? defaultConfigPath(distro, (p) => exists(root.path(p)));
  const conf = loadConfig(confPath, root, distro);

  const verboseFile = opts.verbose || conf.bool('Logs.Verbose');
  logFile = logFileAppender(opts.logFile ?? root.path(LOG_FILE), verboseFile ? Level.VERBOSE : Level.INFO);
  log.addAppender(logFile);

  const libDir = conf.s('Lib.Dir');
  if (conf.bool('Logs.Console') && !exists(root.path(`${libDir.replace(/\/+$/, '')}/provisioned`))) {
    consoleAppender = devConsoleAppender(root.path('/dev/console'));
    log.addAppender(consoleAppender);
  }
  // Problems in the file go to every appender, now that they are all there.
  for (const secret of proxySecrets({ host: conf.str('HttpProxy.Host') })) log.addSecret(secret); // D30
  reportProblems(conf, log);

  ensureExtensionLogDir(root.path(conf.s('Extension.LogDir')));

  const env: NodeJS.ProcessEnv = { ...process.env };
  if (conf.bool('OS.EnableFIPS')) {
    // D25: the commands we run (and the extension worker and extensions, which inherit our environment) see it;
    // Node's own crypto is not switched into FIPS mode.
    process.env.OPENSSL_FIPS = '1';
    env.OPENSSL_FIPS = '1';
  }
  const os = createOs(distro, root, createRunner(env), conf);
  log.verbose(`Configuration ${confPath}; distro ${distro.id} ${distro.version}`);
  return { conf, os, log, libDir };
}

/**
 * Creates Extension.LogDir (mode 0755) when missing. A file in its place is an error; a directory that cannot be
 * created (not root) is logged and left for later.
 */
export function ensureExtensionLogDir(dir: string): void {
  let st: fs.Stats | undefined;
  try { st = fs.statSync(dir); } catch { st = undefined; }
  if (st) {
    if (!st.isDirectory()) throw new Error(`Extension.LogDir ${dir} exists and is not a directory`);
    return;
  }
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    fs.chmodSync(dir, 0o755);
  } catch (e) {
    log.warn(`Cannot create the extension log directory ${dir}: ${(e as Error).message}`);
  }
}
