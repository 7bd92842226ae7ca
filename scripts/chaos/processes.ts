import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The real entry points (dist/worker/main.js, dist/bot/main.js) as child processes, each
 * keeping the tail of its output and a count of the log lines the chaos run reads.
 */

/** The checkout, found from source (scripts/chaos) and from dist/scripts/chaos alike. */
export const PROJECT_ROOT = findProjectRoot(dirname(fileURLToPath(import.meta.url)));
export const WORKER_MAIN = join(PROJECT_ROOT, 'dist', 'worker', 'main.js');
export const CONTROL_MAIN = join(PROJECT_ROOT, 'dist', 'bot', 'main.js');

function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'worker'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no snapbot checkout above ${start}`);
  }
}

export interface NodeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last few KiB of output. */
  tail(): string;
  /** How many output lines contained `text` so far (counted as they arrive). */
  count(text: string): number;
  /** Resolves once `text` has appeared in the output; rejects when the process exits first or after `timeoutMs`. */
  waitFor(text: string, timeoutMs: number): Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM, SIGKILL after `graceMs`; waits for the exit. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `node script` with exactly `env` (plus PATH and HOME) in `cwd`. `counted` are the
 * phrases whose lines are counted (a worker logs one line per job; the whole output is not kept).
 */
export function startNode(script: string, env: Record<string, string>, cwd: string, counted: readonly string[] = []): NodeProcess {
  const child = spawn(process.execPath, [script], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${script}`);
  const pid = child.pid;
  const counts = new Map<string, number>(counted.map((text) => [text, 0]));
  const waiters = new Set<{ text: string; done: () => void }>();
  let tail = '';
  let partial = '';
  const onChunk = (chunk: Buffer) => {
    const text = chunk.toString();
    tail = (tail + text).slice(-16_384);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      for (const phrase of counts.keys()) if (line.includes(phrase)) counts.set(phrase, counts.get(phrase)! + 1);
      for (const waiter of [...waiters]) if (line.includes(waiter.text)) waiter.done();
    }
  };
  child.stdout?.on('data', onChunk);
  child.stderr?.on('data', onChunk);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    pid,
    exited,
    tail: () => tail,
    count: (text) => counts.get(text) ?? 0,
    alive,
    waitFor(text, timeoutMs) {
      if (tail.includes(text)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const waiter = {
          text,
          done: () => {
            clearTimeout(timer);
            waiters.delete(waiter);
            resolve();
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for "${text}" from ${script} (pid ${pid}):\n${tail}`));
        }, timeoutMs);
        waiters.add(waiter);
        void exited.then(({ code, signal }) => {
          if (!waiters.has(waiter)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          reject(new Error(`${script} (pid ${pid}) exited (${signal ?? code}) before "${text}":\n${tail}`));
        });
      });
    },
    async kill() {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 10_000) {
      if (!alive()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every `everyMs` until it returns something truthy; throws `what` after `timeoutMs`. */
export async function until<T>(probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, what: string, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch {
      // Redis away, a file being replaced: try again.
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
