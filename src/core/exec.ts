/**
 * The one place where the agent runs a program: argv arrays only (never a shell), a timeout that kills the whole
 * process group (and returns within a bounded time after it even when an escaped grandchild holds the pipes), captured
 * output, the exit status, controlled environment, and redaction of secrets in what is
 * logged. Everything above takes a `Runner`, so tests can record or replay commands.
 */
import { spawn } from 'node:child_process';
import { log } from './log';

export interface ExecOptions {
  /** Bytes written to the child's stdin (then closed). Use it for secrets instead of argv. */
  input?: string | Buffer;
  /** Kill the process group after this many ms (default 5 minutes). */
  timeoutMs?: number;
  /** Extra environment variables (merged over the runner's base environment). */
  env?: Record<string, string>;
  cwd?: string;
  /** Strings to redact from the logged argv and output, besides the logger's registered secrets. */
  secrets?: string[];
  /** Log the command at INFO rather than VERBOSE. */
  loud?: boolean;
  /** Do not log the output (e.g. it carries secret material). */
  quietOutput?: boolean;
  /** Resolve when the program exits (after at most 1 s more for its output) instead of waiting until every holder
   *  of its stdout/stderr closes them: a script that leaves a background process behind (CustomData) must not hold
   *  the caller until the timeout. */
  resolveOnExit?: boolean;
}

export interface ExecResult {
  argv: string[];
  /** Exit code; -1 when the program could not be started or was killed. */
  code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when spawning failed (e.g. ENOENT: program not installed). */
  spawnError?: string;
}

export type Runner = (argv: string[], opts?: ExecOptions) => Promise<ExecResult>;

export class CommandError extends Error {
  constructor(public readonly result: ExecResult, what?: string) {
    super(`${what ?? `Command ${result.argv[0]}`} failed: ${describe(result)}`);
    this.name = 'CommandError';
  }
}

function describe(r: ExecResult): string {
  if (r.spawnError) return r.spawnError;
  if (r.timedOut) return 'timed out';
  const out = (r.stdout + r.stderr).trim().slice(0, 2000);
  return `exit code ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}${out ? `, output: ${out}` : ''}`;
}

const DEFAULT_TIMEOUT_MS = 5 * 60 * 1000;
const MAX_CAPTURE = 4 * 1024 * 1024;
/** After a timeout kill, how long to wait for the pipes to close before returning anyway. */
const KILL_WAIT_MS = 2000;

function redactAll(text: string, secrets: string[] | undefined): string {
  let t = log.redact(text);
  for (const s of secrets ?? []) if (s && t.includes(s)) t = t.split(s).join('*****');
  return t;
}

/** Counts of commands run by this process (benchmarks and notes report it). */
export const execStats = { count: 0 };

/**
 * Creates the real runner. `baseEnv` is the environment every child gets (the daemon's, plus OPENSSL_FIPS=1 when
 * OS.EnableFIPS=y).
 */
export function createRunner(baseEnv: NodeJS.ProcessEnv = process.env): Runner {
  return (argv, opts = {}) => new Promise<ExecResult>((resolve) => {
    if (argv.length === 0 || !argv[0]) throw new Error('empty argv');
    execStats.count++;
    const shown = redactAll(argv.map((a) => (/[\s'"]/.test(a) || a === '' ? JSON.stringify(a) : a)).join(' '), opts.secrets);
    if (opts.loud) log.info(`Run: ${shown}`); else log.verbose(`Run: ${shown}`);
    const out: Buffer[] = []; const err: Buffer[] = []; let outLen = 0; let errLen = 0;
    let timedOut = false; let done = false;
    const finish = (r: Omit<ExecResult, 'argv' | 'stdout' | 'stderr' | 'timedOut'>) => {
      if (done) return; done = true;
      clearTimeout(timer);
      const res: ExecResult = { argv, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut, ...r };
      if (!opts.quietOutput && (res.code !== 0 || res.stdout || res.stderr)) {
        log.verbose(`Result of ${argv[0]}: ${redactAll(describe(res), opts.secrets)}`);
      }
      resolve(res);
    };
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(argv[0], argv.slice(1), {
        shell: false, detached: true, cwd: opts.cwd,
        env: { ...baseEnv, ...(opts.env ?? {}) },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (e) {
      finish({ code: -1, signal: null, spawnError: (e as Error).message });
      return;
    }
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    child.on('exit', (code, signal) => { exited = { code, signal }; });
    const timer = setTimeout(() => {
      timedOut = true;
      try { if (child.pid) process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
      // A grandchild that left the process group (setsid, a daemon) may still hold the pipes, so 'close' may never
      // come: after a bounded wait the pipes are dropped and the call returns.
      const bound = setTimeout(() => {
        child.stdout?.destroy(); child.stderr?.destroy();
        finish({ code: exited?.code ?? -1, signal: exited?.signal ?? 'SIGKILL' });
      }, KILL_WAIT_MS);
      bound.unref();
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.stdout!.on('data', (d: Buffer) => { if (outLen < MAX_CAPTURE) { out.push(d); outLen += d.length; } });
    child.stderr!.on('data', (d: Buffer) => { if (errLen < MAX_CAPTURE) { err.push(d); errLen += d.length; } });
    child.on('error', (e) => finish({ code: -1, signal: null, spawnError: `${argv[0]}: ${e.message}` }));
    child.on('close', (code, signal) => finish({ code: code ?? -1, signal: signal ?? null }));
    if (opts.resolveOnExit) {
      child.on('exit', (code, signal) => {
        const drain = setTimeout(() => {
          child.stdout?.destroy(); child.stderr?.destroy();
          finish({ code: code ?? -1, signal: signal ?? null });
        }, 1000);
        drain.unref();
      });
    }
    child.stdin!.on('error', () => { /* child closed stdin early */ });
    if (opts.input !== undefined) child.stdin!.end(opts.input); else child.stdin!.end();
  });
}

/** Runs and throws CommandError unless the exit code is 0. */
export async function runOk(run: Runner, argv: string[], opts?: ExecOptions, what?: string): Promise<ExecResult> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new CommandError({ ...r, stdout: redactAll(r.stdout, opts?.secrets), stderr: redactAll(r.stderr, opts?.secrets) }, what);
  return r;
}

/** A runner for tests: records every call and answers from a handler (default: success, empty output). */
export function recordingRunner(handler?: (argv: string[], opts: ExecOptions) => Partial<ExecResult> | undefined): Runner & { calls: { argv: string[]; opts: ExecOptions }[] } {
  const calls: { argv: string[]; opts: ExecOptions }[] = [];
  const fn = (async (argv: string[], opts: ExecOptions = {}) => {
    calls.push({ argv, opts });
    const r = handler?.(argv, opts) ?? {};
    return { argv, code: 0, signal: null, stdout: '', stderr: '', timedOut: false, ...r };
  }) as Runner & { calls: { argv: string[]; opts: ExecOptions }[] };
  fn.calls = calls;
  return fn;
}
