/**
 * The per-handler log (extensions.md §6.4, §2.1, D19): every agent log line at INFO or above about a handler goes to
 * the agent log and to `<E>/<N>/CommandExecution.log` (`CommandExecution_<X>.log` for MC), prefixed `[<N>-<V>]`
 * (`[<N>.<X>-<V>]`). Lines pass through the logger's redaction (protected settings, SAS signatures, registered
 * secrets). The file is opened per line with O_APPEND (like the agent log, so logrotate and extensions may touch it)
 * and kept below 10 MiB.
 */
import * as fs from 'node:fs';
import type { HostFs } from '../os/os';
import { log, Level, escapeNonAscii } from '../core/log';
import { writeFileAtomic } from '../core/files';
import { commandExecutionLogPath } from './handler-files';

/** Cap of CommandExecution.log (§6.4). */
export const COMMAND_LOG_MAX_BYTES = 10 * 1024 * 1024;
/**
 * What is kept when the cap is passed. HEAD keeps the last 10 MiB (from the first line break in that window); Ours
 * keeps the last 9 MiB, so a full file is not rewritten at every following line.
 */
export const COMMAND_LOG_KEEP_BYTES = 9 * 1024 * 1024;

export interface HandlerLogger {
  /** `[<N>-<V>]` or `[<N>.<X>-<V>]`. */
  readonly prefix: string;
  verbose(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

const NAMES = ['VERBOSE', 'INFO', 'WARNING', 'ERROR'];

/** Appends one line to a CommandExecution log (real path), trimming it first when it passed the cap. Never throws. */
export function appendCapped(realFile: string, line: string, maxBytes = COMMAND_LOG_MAX_BYTES, keepBytes = COMMAND_LOG_KEEP_BYTES): void {
  try {
    const st = fs.statSync(realFile, { throwIfNoEntry: false });
    if (st && st.size + Buffer.byteLength(line) > maxBytes) {
      const fd = fs.openSync(realFile, 'r');
      let tail: Buffer;
      try {
        const len = Math.min(keepBytes, st.size);
        tail = Buffer.alloc(len);
        fs.readSync(fd, tail, 0, len, st.size - len);
      } finally { fs.closeSync(fd); }
      const nl = tail.indexOf(0x0a);
      writeFileAtomic(realFile, nl >= 0 ? tail.subarray(nl + 1) : Buffer.alloc(0), { mode: st.mode & 0o777 });
    }
    const fd = fs.openSync(realFile, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOCTTY | fs.constants.O_NOFOLLOW, 0o644);
    try { fs.writeSync(fd, line); } finally { fs.closeSync(fd); }
  } catch { /* a broken handler log must never break the agent */ }
}

/**
 * A logger for one handler: lines go to the agent log with the prefix, and (INFO and above) to the handler's
 * CommandExecution log in `logDir` (= `<E>/<N>`, created 0755 if missing).
 */
export function handlerLogger(a: { fs: HostFs; logDir: string; name: string; version: string; extensionName?: string }): HandlerLogger {
  const prefix = `[${a.name}${a.extensionName ? `.${a.extensionName}` : ''}-${a.version}]`;
  const file = commandExecutionLogPath(a.logDir, a.extensionName);
  const write = (level: Level, msg: string): void => {
    log.log(level, `${prefix} ${msg}`);
    if (level < Level.INFO) return;
    try { if (!a.fs.stat(a.logDir)?.isDirectory()) a.fs.mkdir(a.logDir, 0o755); } catch { return; }
    appendCapped(a.fs.p(file), `${new Date().toISOString()} ${NAMES[level]} ${prefix} ${escapeNonAscii(log.redact(msg))}\n`);
  };
  return {
    prefix,
    verbose: (m) => write(Level.VERBOSE, m),
    info: (m) => write(Level.INFO, m),
    warn: (m) => write(Level.WARNING, m),
    error: (m) => write(Level.ERROR, m),
  };
}
