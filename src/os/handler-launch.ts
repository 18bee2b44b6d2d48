/**
 * How an extension handler's command is started (extensions.md §6.2, §6.5, §6.7): the launch strategy, chosen once
 * per OS object — a systemd transient scope (`systemd-run --scope`) when PID 1 is systemd and a probe at first use
 * succeeds, otherwise a direct child — and the one place that spawns a handler process: new session (its own process
 * group), stdin `/dev/null`, stdout/stderr to the given file descriptors (never pipes: handlers leave background
 * children holding them), completion = the exit of the direct child, SIGKILL to the process group on timeout.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import type { LinuxOS } from './linux';
import { log } from '../core/log';

export interface HandlerUnit {
  /** `install|enable|disable|update|uninstall`. */
  operation: string;
  /** `<N>` (SC) or `<N>.<X>` (MC). */
  name: string;
}

export interface HandlerLauncher {
  readonly kind: 'scope' | 'direct';
  /** The argv that runs `/bin/sh -c <fullCommand>` this way. */
  argv(fullCommand: string, unit: HandlerUnit): string[];
}

/** Direct child of the agent (§6.7 Ours 1 and 4): processes share the agent service's lifetime. */
export const directLauncher: HandlerLauncher = {
  kind: 'direct',
  argv: (fullCommand) => ['/bin/sh', '-c', fullCommand],
};

/** Characters systemd accepts in unit names; anything else (never seen in real handler names) becomes `_`. */
const unitSafe = (s: string): string => s.replace(/[^A-Za-z0-9_.:]/g, '_');

/** The slice of a handler: `azure-vmextensions-<name>.slice` with every `-` of the name replaced by `_` (§6.7). */
export function handlerSlice(name: string): string { return `azure-vmextensions-${unitSafe(name.replace(/-/g, '_'))}.slice`; }

/**
 * A transient scope per command, unit `<operation>_<uuid4>` in the handler's slice, accounting off (HEAD's
 * properties). The scope keeps the command and its background work alive across a restart of the agent service
 * (WALA issue #749, CustomScript issue #142). `--quiet` keeps systemd-run's own line out of the command's output.
 */
export const scopeLauncher: HandlerLauncher = {
  kind: 'scope',
  argv: (fullCommand, unit) => [
    'systemd-run', '--quiet', '--property=CPUAccounting=no', '--property=MemoryAccounting=no',
    `--unit=${unitSafe(unit.operation)}_${randomUUID()}`, '--scope', `--slice=${handlerSlice(unit.name)}`,
    '/bin/sh', '-c', fullCommand,
  ],
};

/**
 * Decides the strategy (§6.7 Ours 2–4): scopes when PID 1 is systemd (`/run/systemd/system` exists, as
 * sd_booted(3) checks), `systemd-run` is installed, and `systemd-run --scope --quiet --unit=waagent-probe_<uuid>
 * /bin/true` succeeds; otherwise direct launch, logged once.
 */
export async function chooseHandlerLauncher(os: LinuxOS): Promise<HandlerLauncher> {
  if (!os.fs.stat('/run/systemd/system')?.isDirectory()) {
    log.info('Extension commands run as direct children of the agent (no systemd): they share the agent\'s lifetime');
    return directLauncher;
  }
  if (!os.which('systemd-run')) {
    log.info('Extension commands run as direct children of the agent (systemd-run not found): they share the agent\'s lifetime');
    return directLauncher;
  }
  const r = await os.run(['systemd-run', '--scope', '--quiet', `--unit=waagent-probe_${randomUUID()}`, '/bin/true'], { timeoutMs: 30_000 });
  if (r.code !== 0) {
    log.info(`Extension commands run as direct children of the agent (systemd-run probe failed: ${(r.stderr || r.spawnError || `exit ${r.code}`).trim()}): they share the agent's lifetime`);
    return directLauncher;
  }
  log.info('Extension commands run in transient systemd scopes (azure-vmextensions-<name>.slice)');
  return scopeLauncher;
}

const chosen = new WeakMap<LinuxOS, Promise<HandlerLauncher>>();

/** The strategy of this OS object, probed once (the first call) and then reused. */
export function handlerLauncher(os: LinuxOS): Promise<HandlerLauncher> {
  let p = chosen.get(os);
  if (!p) { p = chooseHandlerLauncher(os); chosen.set(os, p); }
  return p;
}

/** Sets the strategy of an OS object (tests; a daemon that already knows). */
export function setHandlerLauncher(os: LinuxOS, launcher: HandlerLauncher): void {
  chosen.set(os, Promise.resolve(launcher));
}

/** How long to wait for the exit after the timeout's SIGKILL before giving up on the process. */
const KILL_GRACE_MS = 10_000;

export interface SpawnToFilesOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Open file descriptors for the child's stdout and stderr (regular files). */
  stdoutFd: number;
  stderrFd: number;
  timeoutMs: number;
  /** Aborting stops waiting (the process is left alone, unreferenced): the agent is shutting down. */
  signal?: AbortSignal;
}

export interface SpawnToFilesResult {
  /** Exit status; the negative signal number when killed by a signal (Python's convention, §6.6); null if not run. */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  aborted: boolean;
  spawnError?: string;
  pid?: number;
  durationMs: number;
}

/**
 * Runs `argv` in a new session with stdin `/dev/null` and stdout/stderr on the given descriptors, and resolves at
 * the exit of the direct child — never waiting for the descriptors to close (§6.2). On timeout the whole process
 * group gets SIGKILL (no SIGTERM first, §6.5); processes that left the group (a new session) survive by design. After
 * a normal exit the group is never signalled (§6.8).
 */
export function spawnToFiles(argv: string[], o: SpawnToFilesOptions): Promise<SpawnToFilesResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let done = false; let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      if (done) return;
      child?.unref();
      finish({ exitCode: null, signal: null, aborted: true });
    };
    const finish = (r: Omit<SpawnToFilesResult, 'timedOut' | 'durationMs' | 'aborted'> & { aborted?: boolean }): void => {
      if (done) return; done = true;
      if (timer) clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      resolve({ timedOut, aborted: false, durationMs: Date.now() - t0, pid: child?.pid, ...r });
    };
    let child: ReturnType<typeof spawn> | undefined;
    if (o.signal?.aborted) { finish({ exitCode: null, signal: null, aborted: true, spawnError: 'aborted before start' }); return; }
    try {
      child = spawn(argv[0], argv.slice(1), {
        cwd: o.cwd, env: o.env, detached: true, shell: false,
        stdio: ['ignore', o.stdoutFd, o.stderrFd],
      });
    } catch (e) {
      finish({ exitCode: null, signal: null, spawnError: (e as Error).message });
      return;
    }
    child.on('error', (e) => finish({ exitCode: null, signal: null, spawnError: e.message }));
    child.on('exit', (code, sig) => {
      const exitCode = code ?? (sig ? -(osConstants.signals[sig as keyof typeof osConstants.signals] ?? 0) : null);
      finish({ exitCode, signal: sig ?? null });
    });
    timer = setTimeout(() => {
      timedOut = true;
      try { if (child?.pid) process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
      // A process stuck in uninterruptible sleep may not die at once: never hold the agent on it.
      timer = setTimeout(() => { child?.unref(); finish({ exitCode: null, signal: 'SIGKILL' }); }, KILL_GRACE_MS);
    }, o.timeoutMs);
    o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
