import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * virsh as a process: argv arrays (never a shell), a time limit after which the whole
 * process group is killed, a minimal environment. The adapter (virsh.ts) takes a
 * `VirshRunner`, so tests can put a fake executable or a function in its place.
 */

/** One virsh invocation: the arguments after the executable, and how long it may take. */
export interface VirshRunRequest {
  args: readonly string[];
  timeoutMs: number;
}

/** How one virsh invocation ended. Runners never throw for a failed virsh. */
export interface VirshRunResult {
  /** Undefined when virsh never started or died by a signal. */
  exitCode: number | undefined;
  /** The signal that ended virsh ("SIGKILL", …), if one did. */
  signal: string | undefined;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** True when the runner killed virsh because it passed `timeoutMs`. */
  timedOut: boolean;
  /** Set when virsh could not be started at all (ENOENT, EACCES, …). */
  spawnError?: { code: string | undefined; message: string };
}

/** Runs virsh; injectable so tests can assert the exact command line without a process. */
export type VirshRunner = (request: VirshRunRequest) => Promise<VirshRunResult>;

/**
 * The whole environment virsh gets: PATH, the C locale, and HOME and XDG_RUNTIME_DIR when
 * set (virsh reads its client config under HOME, and finds a `qemu:///session` daemon's
 * socket under XDG_RUNTIME_DIR). Nothing else of the worker's: not DISCORD_TOKEN or
 * REDIS_URL (`npm start` gives the worker both), and not LIBVIRT_DEFAULT_URI either,
 * since every call names its URI with `--connect`.
 */
export function virshEnvironment(source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = { PATH: source.PATH || DEFAULT_PATH, LC_ALL: 'C', LANG: 'C', LANGUAGE: '' };
  for (const name of ['HOME', 'XDG_RUNTIME_DIR'] as const) {
    const value = source[name];
    if (value) env[name] = value;
  }
  return env;
}

/**
 * The real runner: starts `virshPath` with the given arguments (no shell) in its own
 * process group, with only `env` (default: `virshEnvironment()`) under the C locale so
 * that error texts are the English ones `classifyVirshError` knows, and kills the whole
 * group with SIGKILL when the time is up (virsh may have children, e.g. ssh for remote
 * URIs, that would otherwise keep the output pipes open).
 */
export function createVirshRunner(virshPath: string, env: Record<string, string> = virshEnvironment()): VirshRunner {
  // node:child_process rather than execa: this is the worker's only process, and execa's
  // ~100 modules cost the worker ~15 MiB of memory for nothing it needs here.
  return ({ args, timeoutMs }) =>
    new Promise<VirshRunResult>((resolve) => {
      const started = performance.now();
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let timedOut = false;
      let spawnError: VirshRunResult['spawnError'];
      const child = spawn(virshPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
      const pid = child.pid;
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(pid, () => child.kill('SIGKILL'));
      }, timeoutMs);
      if (pid !== undefined) {
        liveGroups.add(pid);
        watchForExit();
      }
      child.once('error', (error: NodeJS.ErrnoException) => {
        // Not started at all (ENOENT, EACCES, …); 'close' still follows.
        spawnError = { code: error.code, message: error.message };
      });
      // 'close': the process has exited and both pipes are drained.
      child.once('close', (exitCode, signal) => {
        clearTimeout(timer);
        if (pid !== undefined) liveGroups.delete(pid);
        resolve({
          exitCode: spawnError || signal !== null ? undefined : (exitCode ?? undefined),
          signal: signal ?? undefined,
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
          durationMs: Math.round(performance.now() - started),
          timedOut,
          ...(spawnError && !timedOut ? { spawnError } : {}),
        });
      });
    });
}

/** A virsh that runs until stopped (`event --loop`): its output line by line, and its end. */
export interface LongRunningVirsh {
  onLine(listener: (line: string) => void): void;
  onExit(listener: (stderr: string) => void): void;
  stop(): void;
}

/**
 * Starts virsh for as long as the worker runs (no time limit), in its own process group
 * like every other virsh, killed with the worker. Standard error is kept (the last 4 KiB)
 * for the exit listener.
 */
export function startLongRunningVirsh(virshPath: string, args: readonly string[], env: Record<string, string> = virshEnvironment()): LongRunningVirsh {
  const child = spawn(virshPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
  const pid = child.pid;
  if (pid !== undefined) {
    liveGroups.add(pid);
    watchForExit();
  }
  const lineListeners: Array<(line: string) => void> = [];
  const exitListeners: Array<(stderr: string) => void> = [];
  let pending = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    pending += chunk;
    let end: number;
    while ((end = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      for (const listener of lineListeners) listener(line);
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4096)));
  child.once('error', (error: NodeJS.ErrnoException) => (stderr += `cannot start ${virshPath}: ${error.message}`));
  child.once('close', () => {
    if (pid !== undefined) liveGroups.delete(pid);
    for (const listener of exitListeners) listener(stderr);
  });
  return {
    onLine: (listener) => void lineListeners.push(listener),
    onExit: (listener) => void exitListeners.push(listener),
    stop: () => killGroup(pid, () => child.kill('SIGKILL')),
  };
}

// virsh runs detached (its own process group), so the worker's exit would not take it
// along; kill whatever is still running when the worker exits.
const liveGroups = new Set<number>();
let exitWatch = false;

function watchForExit(): void {
  if (exitWatch) return;
  exitWatch = true;
  process.once('exit', () => {
    for (const pid of liveGroups) killGroup(pid, () => undefined);
  });
}

function killGroup(pid: number | undefined, fallback: () => void): void {
  if (pid === undefined) return fallback();
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    fallback();
  }
}
