/**
 * The agent's logger: one process-wide instance, several appenders (log file, stdout, /dev/console), UTC ISO 8601
 * timestamps, levels, and a redaction layer through which every line passes, so that a secret registered with
 * `addSecret` (a password, a private key, protected settings) never reaches any appender.
 */
import * as fs from 'node:fs';

export enum Level { VERBOSE = 0, INFO = 1, WARNING = 2, ERROR = 3 }
const LEVEL_NAMES = ['VERBOSE', 'INFO', 'WARNING', 'ERROR'];

/**
 * One destination of log lines. `kind` lets callers find appenders of a sort (e.g. deprovisioning drops every
 * `file` appender, §4.1 step 6); `target` is the stream a `stream` appender writes to.
 */
export interface Appender {
  level: Level;
  /** Writes one formatted line (ending in a newline); `level` is the line's level. */
  write(line: string, level?: Level): void;
  close?(): void;
  kind?: 'file' | 'console' | 'stream' | 'memory';
  target?: unknown;
}

const REDACTED = '*****';
/** Patterns that are secret whatever their value: XML password elements, PEM private keys, protected settings. */
const SECRET_PATTERNS: RegExp[] = [
  /(<(?:\w+:)?UserPassword>)[\s\S]*?(<\/(?:\w+:)?UserPassword>)/g,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /("protectedSettings"\s*:\s*")[^"]*(")/g,
  // SAS tokens in storage URLs (provisioning-and-os.md §10.10), also inside XML (`&amp;`) and JSON (`\u0026`) text
  /((?:[?&]|&amp;|\\u0026)sig=)[^&\s"'<\\]*()/gi,
];

export class Logger {
  private appenders: Appender[] = [];
  private secrets = new Set<string>();
  /** Component name printed in each line (e.g. `Daemon`, `ExtHandler`). */
  prefix = 'Daemon';

  /** Registers a secret: every later line has each occurrence replaced by `*****`. Short strings (< 3) are ignored. */
  addSecret(secret: string | undefined | null): void {
    if (secret && secret.length >= 3) this.secrets.add(secret);
  }

  /** Applies the redaction rules to a string (also used by the command runner for argv and output). */
  redact(text: string): string {
    let out = text;
    for (const re of SECRET_PATTERNS) {
      out = out.replace(re, (m, a?: string, b?: string) => (typeof a === 'string' && typeof b === 'string' && !m.startsWith('-----') ? `${a}${REDACTED}${b}` : REDACTED));
    }
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
    return out;
  }

  addAppender(a: Appender): void { this.appenders.push(a); }
  removeAppender(a: Appender): void {
    this.appenders = this.appenders.filter((x) => x !== a);
    a.close?.();
  }
  /** Removes (and closes) every appender for which `pred` is true; returns how many were removed. */
  removeAppendersWhere(pred: (a: Appender) => boolean): number {
    const gone = this.appenders.filter(pred);
    for (const a of gone) this.removeAppender(a);
    return gone.length;
  }
  /** Whether some appender satisfies `pred`. */
  hasAppender(pred: (a: Appender) => boolean): boolean { return this.appenders.some(pred); }
  clearAppenders(): void { for (const a of this.appenders) a.close?.(); this.appenders = []; }
  get minLevel(): Level { return this.appenders.reduce((m, a) => Math.min(m, a.level), Level.ERROR + 1); }

  log(level: Level, msg: string): void {
    if (this.appenders.length === 0 || level < this.minLevel) return;
    const line = `${new Date().toISOString()} ${LEVEL_NAMES[level]} ${this.prefix} ${escapeNonAscii(this.redact(msg))}\n`;
    for (const a of this.appenders) if (level >= a.level) {
      try { a.write(line, level); } catch { /* a broken appender must never break the agent */ }
    }
  }
  verbose(msg: string): void { this.log(Level.VERBOSE, msg); }
  info(msg: string): void { this.log(Level.INFO, msg); }
  warn(msg: string): void { this.log(Level.WARNING, msg); }
  error(msg: string): void { this.log(Level.ERROR, msg); }
}

/**
 * The log file appender: opened (created 0644), appended to and closed for every line, as WALinuxAgent does, so that
 * logrotate may move the file at any time (no copytruncate, no signal) and a deleted file is re-created. Opened with
 * O_NOFOLLOW: a symbolic link planted at the log's path (by whoever can write its directory) is never followed, so the
 * agent cannot be made to append to another file as root; lines are then dropped.
 */
export function fileAppender(path: string, level: Level): Appender {
  return {
    level,
    kind: 'file',
    write(line) {
      const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOCTTY | fs.constants.O_NOFOLLOW, 0o644);
      try { fs.writeSync(fd, line); } finally { fs.closeSync(fd); }
    },
  };
}

/** syslog priorities of our levels (sd-daemon(3) prefixes): VERBOSE debug, INFO info, WARNING warning, ERROR err. */
const JOURNAL_PRIORITY = [7, 6, 4, 3];

/**
 * Whether `fd` is the systemd journal's stream (systemd.exec(5), `$JOURNAL_STREAM` = `<device>:<inode>` of the
 * stream systemd connected to stdout/stderr): then lines carry a `<priority>` prefix that journald turns into the
 * entry's priority, so `journalctl -p warning` shows the agent's warnings and errors.
 */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]) && st.ino === BigInt(m[2]);
  } catch { return false; }
}

/** Writes to a stream (stdout, stderr); to the journal with each line's priority prefix (see isJournalStream). */
export function streamAppender(stream: NodeJS.WritableStream & { fd?: number }, level: Level): Appender {
  const fd0 = (stream as { fd?: number }).fd;
  const journal = typeof fd0 === 'number' && isJournalStream(fd0);
  return {
    level,
    kind: 'stream',
    target: stream,
    write(line, lineLevel) {
      let text = line;
      if (journal) {
        const prio = `<${JOURNAL_PRIORITY[lineLevel ?? Level.INFO] ?? 6}>`;
        // Every physical line is its own journal entry: each gets the prefix.
        text = line.replace(/[^\n]*\n/g, (l) => prio + l);
      }
      const fd = (stream as { fd?: number }).fd;
      if (typeof fd === 'number') fs.writeSync(fd, text); else stream.write(text);
    },
  };
}

/** Collects lines in memory (tests). */
export function memoryAppender(level: Level = Level.VERBOSE): Appender & { lines: string[] } {
  const lines: string[] = [];
  return { level, kind: 'memory', lines, write(line) { lines.push(line); } };
}

/**
 * Writes every non-ASCII UTF-16 code unit as `\uXXXX` (lower-case hex; characters outside the BMP become their
 * surrogate pair, as in JSON), so that log lines are pure ASCII (§10.10). Backslashes already in the text are left
 * alone, for readability; `unescapeNonAscii` reverses the escaping exactly unless the original text itself contained
 * a literal `\uXXXX` sequence.
 */
export function escapeNonAscii(text: string): string {
  return text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The inverse of `escapeNonAscii` (for reading log lines back). */
export function unescapeNonAscii(text: string): string {
  return text.replace(/\\u([0-9a-fA-F]{4})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** The process-wide logger. */
export const log = new Logger();

/** Message of any thrown value. */
export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
