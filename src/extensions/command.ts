/**
 * Running one handler command (extensions.md §6): the full command line from the manifest (§6.1), the environment
 * with its exact variable names (§6.3), output into unlinked files and the composed tail (§6.4), per-operation
 * timeouts with a process-group kill (§6.5), exit status → result and the agent's error (§6.6), the launch strategy
 * (systemd scope or direct child, chosen once: os/handler-launch.ts, §6.7), and one command at a time VM-wide (§6.8).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AgentContext } from '../context';
import type { HostFs } from '../os/os';
import { errorText } from '../core/log';
import { handlerLauncher, spawnToFiles } from '../os/handler-launch';
import { ExtensionError, ExtErrorCode } from './errors';
import { OPERATION_ERROR_CODES, type HandlerOperation } from './handler-files';
import { handlerLogger } from './handler-log';
import { pyJson, decodeBackslashReplace } from './py-json';

// ---- timeouts (§6.5) -----------------------------------------------------------------------------------------------

/** HEAD's fixed timeouts (no configuration key). */
export const DEFAULT_HANDLER_TIMEOUTS_MS: Readonly<Record<HandlerOperation, number>> = Object.freeze({
  install: 900_000, enable: 300_000, disable: 900_000, update: 900_000, uninstall: 300_000,
});
let timeouts: Record<HandlerOperation, number> = { ...DEFAULT_HANDLER_TIMEOUTS_MS };
/** The timeout of an operation (ms). */
export function handlerTimeoutMs(op: HandlerOperation): number { return timeouts[op]; }
/** Replaces the timeout table (tests, through the same seam as the runner; `undefined` restores HEAD's). */
export function setHandlerTimeouts(t?: Partial<Record<HandlerOperation, number>>): void {
  timeouts = { ...DEFAULT_HANDLER_TIMEOUTS_MS, ...(t ?? {}) };
}

// ---- environment (§6.3) --------------------------------------------------------------------------------------------

export interface HandlerEnvArgs {
  operation: HandlerOperation;
  /** `<H>` of the instance whose command runs (old directory for old-version commands). */
  handlerDir: string;
  /** That instance's version string. */
  version: string;
  /** WireServer address, host only (D24). */
  wireAddress: string;
  /** seqNo of the extension the command is for; 0 when there is none. */
  seqNo: number;
  /** `<X>` for MC commands that concern one extension. */
  extensionName?: string;
  /** install/enable: the old version's uninstall result during an update; `NOT_RUN` otherwise. */
  uninstallExitCode?: string;
  /** update only. */
  update?: {
    toVersion: string;
    fromVersion: string;
    /** SC: the old version's disable result (`NOT_RUN` when none ran). */
    disableExitCode?: string;
    /** MC: one element per extension of the goal state's handler. */
    disableExitCodes?: { extensionName: string; exitCode: string }[];
  };
  /** Advertise extension telemetry (§10.2); off until implemented (§10.3). */
  telemetry?: boolean;
}

/** The variables the agent adds for a command, exact names and values (§6.3). */
export function handlerCommandEnv(a: HandlerEnvArgs): Record<string, string> {
  const env: Record<string, string> = {
    AZURE_GUEST_AGENT_EXTENSION_PATH: a.handlerDir,
    AZURE_GUEST_AGENT_EXTENSION_VERSION: a.version,
    AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS: a.wireAddress,
    ConfigSequenceNumber: String(a.seqNo),
  };
  if (a.extensionName !== undefined) env.ConfigExtensionName = a.extensionName;
  if (a.telemetry) env.AZURE_GUEST_AGENT_EXTENSION_SUPPORTED_FEATURES = pyJson([{ Key: 'ExtensionTelemetryPipeline', Value: '1.0' }]);
  if (a.operation === 'install' || a.operation === 'enable') env.AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE = a.uninstallExitCode ?? 'NOT_RUN';
  if (a.operation === 'update') {
    if (!a.update) throw new ExtensionError('[ExtensionError] update command without update arguments', ExtErrorCode.PluginUpdateProcessingFailed);
    env.VERSION = a.update.toVersion;
    env.AZURE_GUEST_AGENT_UPDATING_FROM_VERSION = a.update.fromVersion;
    if (a.update.disableExitCodes) {
      env.AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODES_MULTIPLE_EXTENSIONS = pyJson(a.update.disableExitCodes.map((x) => ({ extensionName: x.extensionName, exitCode: x.exitCode })));
    } else {
      env.AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE = a.update.disableExitCode ?? 'NOT_RUN';
    }
  }
  return env;
}

/** Variables only our own runtime (Node IPC, the test runner) puts into the agent's environment (§6.3 Ours). */
const RUNTIME_ONLY = ['NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE', 'NODE_UNIQUE_ID', 'NODE_TEST_CONTEXT'];

/** The child's environment: the agent's own environment merged over the added variables (the inherited value wins). */
export function childEnvironment(added: Record<string, string>, agentEnv: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const inherited: NodeJS.ProcessEnv = { ...agentEnv };
  for (const k of RUNTIME_ONLY) delete inherited[k];
  return { ...added, ...inherited };
}

// ---- command line (§6.1) -------------------------------------------------------------------------------------------

/** `<H>/<command without its leading slashes>`: the full command as HEAD builds it and as messages show it. */
export function fullCommand(handlerDir: string, commandLine: string): string {
  return `${handlerDir.replace(/\/+$/, '')}/${commandLine.replace(/^\/+/, '')}`;
}

/**
 * The string given to `/bin/sh -c`. TRUST BOUNDARY: the manifest's command comes from `HandlerManifest.json` inside
 * the package the platform published (downloaded from its storage, the very code that then runs as root), not from
 * the wire's goal-state XML; §6.1 requires shell semantics for it (published manifests carry arguments and extra
 * spaces), so it is passed unchanged. The directory part is built from goal-state data (handler name) and the
 * manifest version: whenever it holds a character outside a plain path's alphabet (never the case for real
 * `Publisher.Type-1.2.3` names) it is single-quoted, so goal-state data can never become shell syntax.
 */
export function shellCommand(realHandlerDir: string, commandLine: string): string {
  const dir = realHandlerDir.replace(/\/+$/, '');
  const safeDir = /^[A-Za-z0-9_./+:@%,=-]+$/.test(dir) ? dir : `'${dir.replace(/'/g, `'\\''`)}'`;
  return `${safeDir}/${commandLine.replace(/^\/+/, '')}`;
}

// ---- output (§6.4) -------------------------------------------------------------------------------------------------

/** Characters kept per stream and in the composed text (HEAD's TELEMETRY_MESSAGE_MAX_LEN). */
export const OUTPUT_MAX_CHARS = 3200;

/** Reads the last `maxBytes` of an open file (from byte 0 if shorter), skipping a cut character at the start. */
export function readTail(fd: number, maxBytes = OUTPUT_MAX_CHARS): string {
  const size = fs.fstatSync(fd).size;
  const len = Math.min(size, maxBytes);
  const buf = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const r = fs.readSync(fd, buf, got, len - got, size - len + got);
    if (r === 0) break;
    got += r;
  }
  let b = buf.subarray(0, got);
  if (size > len) { let k = 0; while (k < 3 && k < b.length && (b[k] & 0xc0) === 0x80) k++; b = b.subarray(k); }
  return decodeBackslashReplace(b);
}

/**
 * `[stdout]\n<out>\n\n[stderr]\n<err>` in at most 3200 characters, HEAD's `format_stdout_stderr`: both whole if they
 * fit, else 1590 each, a short stream giving its rest to the other, each trimmed to its **end**.
 */
export function composeOutput(stdout: string, stderr: string): string {
  const out = Array.from(stdout); const err = Array.from(stderr);
  const template = (o: string[], e: string[]): string => `[stdout]\n${o.join('')}\n\n[stderr]\n${e.join('')}`;
  const each = Math.floor((OUTPUT_MAX_CHARS - 26 + 6) / 2);
  const tail = (a: string[], n: number): string[] => (n <= 0 ? a : a.slice(-n));
  if (out.length + err.length < OUTPUT_MAX_CHARS) return template(out, err);
  if (out.length < each) return template(out, tail(err, Math.min(each + (each - out.length), err.length)));
  if (err.length < each) return template(tail(out, Math.min(each + (each - err.length), out.length)), err);
  return template(tail(out, each), tail(err, each));
}

// ---- exit status → result (§6.6) -----------------------------------------------------------------------------------

/** The mount point holding `dir` when it is mounted `noexec` (from `/proc/mounts`), else undefined. */
export function noexecMountOf(hostFs: HostFs, dir: string): string | undefined {
  let text: string | undefined;
  try { text = hostFs.readText('/proc/mounts', 4 * 1024 * 1024); } catch { return undefined; }
  let best: { mp: string; noexec: boolean } | undefined;
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(' ');
    if (f.length < 4) continue;
    const mp = f[1].replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    const inside = mp === '/' || dir === mp || dir.startsWith(`${mp}/`);
    if (inside && (!best || mp.length >= best.mp.length)) best = { mp, noexec: f[3].split(',').includes('noexec') };
  }
  return best?.noexec ? best.mp : undefined;
}

// ---- running (§6.2, §6.8) ------------------------------------------------------------------------------------------

export interface RunHandlerCommandOptions {
  ctx: AgentContext;
  /** `<H>` (agent path) of the instance whose command runs; the working directory. */
  handlerDir: string;
  /** The manifest's command string (§6.1). */
  commandLine: string;
  operation: HandlerOperation;
  /** The variables the agent adds (`handlerCommandEnv`); the agent's own environment is merged over them. */
  env: Record<string, string>;
  /** Default: the operation's timeout (`handlerTimeoutMs`). */
  timeoutMs?: number;
  /** The handler's log folder `<E>/<N>` (D19): CommandExecution.log goes there. */
  logDir: string;
  name: string;
  version: string;
  /** `<X>` of an MC extension (log file and scope name). */
  extensionName?: string;
  /** Abort = the agent is shutting down: stop waiting, leave the process alone. */
  signal?: AbortSignal;
  /** The agent's environment (default `process.env`). */
  agentEnv?: NodeJS.ProcessEnv;
}

export interface HandlerCommandResult {
  /** Exit status; negative signal number when killed by a signal; null when it did not run or was not waited for. */
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  /** The composed output tail (§6.4), redaction applied. */
  output: string;
  /** `<H>/<command>` as messages show it. */
  fullCommand: string;
  /** Spawn or setup failure text. */
  launchError?: string;
  /** The agent stopped waiting (abort). */
  aborted?: boolean;
  /** The operation's failure as the handler status reports it (§6.6, §8.5); undefined on success. */
  error?: ExtensionError;
  /** The result value `0`, `<exit status>`, `1011` or the launch-failure code, as §5.4/§6.3 pass it on. */
  resultCode: string;
}

let queue: Promise<unknown> = Promise.resolve();
/** Commands currently running in this process (0 or 1; tests and benchmarks read it). */
export const commandStats = { running: 0, maxConcurrent: 0, count: 0 };

/** Runs `fn` after every previously queued command has finished (§6.8: one command at a time, VM-wide). */
function serialised<T>(fn: () => Promise<T>): Promise<T> {
  const next = queue.then(fn, fn);
  queue = next.catch(() => undefined);
  return next;
}

function openCapture(realDir: string, what: string): number {
  const p = path.join(realDir, `.waagent-${what}-${randomBytes(6).toString('hex')}`);
  const fd = fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try { fs.unlinkSync(p); } catch (e) { fs.closeSync(fd); throw e; }
  return fd;
}

/**
 * Runs one handler command and waits for the exit of the shell (not for its output to close). Never throws for a
 * command's failure: the result carries `error` (an ExtensionError with the §6.6 code and message) instead.
 */
export function runHandlerCommand(o: RunHandlerCommandOptions): Promise<HandlerCommandResult> {
  return serialised(() => runNow(o));
}

async function runNow(o: RunHandlerCommandOptions): Promise<HandlerCommandResult> {
  const hostFs = o.ctx.os.fs;
  const hlog = handlerLogger({ fs: hostFs, logDir: o.logDir, name: o.name, version: o.version, extensionName: o.extensionName });
  const full = fullCommand(o.handlerDir, o.commandLine);
  const code = OPERATION_ERROR_CODES[o.operation];
  const timeoutMs = o.timeoutMs ?? handlerTimeoutMs(o.operation);
  const realDir = hostFs.p(o.handlerDir);
  const launchFailed = (why: string, durationMs = 0): HandlerCommandResult => {
    const message = `[ExtensionError] Failed to launch '${full}': ${why}`;
    hlog.error(message);
    return { exitCode: null, timedOut: false, durationMs, output: '', fullCommand: full, launchError: why, error: new ExtensionError(message, code), resultCode: String(code) };
  };

  let outFd: number | undefined; let errFd: number | undefined;
  commandStats.running++; commandStats.count++;
  commandStats.maxConcurrent = Math.max(commandStats.maxConcurrent, commandStats.running);
  try {
    try {
      outFd = openCapture(realDir, 'stdout');
      errFd = openCapture(realDir, 'stderr');
    } catch (e) { return launchFailed(errorText(e)); }
    const launcher = await handlerLauncher(o.ctx.os);
    const argv = launcher.argv(shellCommand(realDir, o.commandLine), { operation: o.operation, name: o.extensionName ? `${o.name}.${o.extensionName}` : o.name });
    hlog.info(`Executing command: ${full} with environment variables: ${pyJson(o.env)}`);
    const r = await spawnToFiles(argv, {
      cwd: realDir, env: childEnvironment(o.env, o.agentEnv), stdoutFd: outFd, stderrFd: errFd, timeoutMs, signal: o.signal,
    });
    if (r.spawnError !== undefined && !r.aborted) return launchFailed(r.spawnError, r.durationMs);
    let output: string;
    try { output = composeOutput(readTail(outFd), readTail(errFd)); } catch (e) { output = composeOutput('', `Cannot read stdout/stderr: ${errorText(e)}`); }
    output = o.ctx.log.redact(output);
    const base = { exitCode: r.exitCode, timedOut: r.timedOut, durationMs: r.durationMs, output, fullCommand: full };
    if (r.aborted) {
      hlog.warn(`Stopped waiting for ${o.operation} (the agent is stopping); the command is left running`);
      return { ...base, aborted: true, error: new ExtensionError(`[ExtensionError] ${o.operation} interrupted: the agent is stopping`, code), resultCode: String(code) };
    }
    hlog.info(`Command: ${o.commandLine}\n${output.split('\n').filter((l) => l.trim() !== '').join('\n')}`);
    if (r.timedOut) {
      const message = `[ExtensionError] Timeout(${Math.round(timeoutMs / 1000)}): ${full}\n${output}`;
      hlog.error(`${o.operation} timed out after ${Math.round(timeoutMs / 1000)} s; its process group was killed`);
      return { ...base, error: new ExtensionError(message, ExtErrorCode.PluginHandlerScriptTimedout), resultCode: String(ExtErrorCode.PluginHandlerScriptTimedout) };
    }
    if (r.exitCode === 0) {
      hlog.info(`${o.operation} succeeded (${r.durationMs} ms)`);
      return { ...base, resultCode: '0' };
    }
    const noexec = r.exitCode === 126 ? noexecMountOf(hostFs, o.ctx.libDir) : undefined;
    const warning = noexec ? `\nWARNING: ${noexec} is mounted with the noexec flag, which can prevent execution of VM Extensions.` : '';
    const message = `[ExtensionOperationError] Non-zero exit code: ${r.exitCode}, ${full}${warning}\n${output}`;
    hlog.error(`${o.operation} failed with exit code ${r.exitCode}${r.signal ? ` (${r.signal})` : ''}${warning}`);
    return { ...base, error: new ExtensionError(message, code), resultCode: String(r.exitCode) };
  } finally {
    commandStats.running--;
    for (const fd of [outFd, errFd]) if (fd !== undefined) { try { fs.closeSync(fd); } catch { /* ignore */ } }
  }
}
