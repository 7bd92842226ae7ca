import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadAuthoritySigner } from '../../shared/authority-keys.js';
import type { Signer } from '../../shared/signing.js';

/**
 * Child processes for the benchmark: timed one-shot commands (snapctl, virsh) and
 * long-running ones (the worker), always started from an argv array, never a shell.
 */

/** The checkout this script belongs to, found from source (scripts/bench) and from dist/scripts/bench alike. */
export const PROJECT_ROOT = findProjectRoot(dirname(fileURLToPath(import.meta.url)));
export const SNAPCTL_MAIN = join(PROJECT_ROOT, 'dist', 'bot', 'cli', 'snapctl.js');
export const WORKER_MAIN = join(PROJECT_ROOT, 'dist', 'worker', 'main.js');

function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${start}`);
  }
}

/**
 * Children run outside the checkout, so that a developer's `.env` there (which snapctl
 * and the worker read from their working directory) cannot change what is measured.
 */
const CHILD_CWD = tmpdir();

/** The environment every child gets: only what it needs, so the caller's REDIS_URL never leaks in. */
export function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' };
}

export interface TimedRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** From spawn to the process's exit with its pipes closed. */
  wallMs: number;
}

/** Runs `file args` to completion and times it end to end. */
export function timeCommand(file: string, args: readonly string[], env: Record<string, string>, timeoutMs = 300_000): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, { env, cwd: CHILD_CWD, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, wallMs: performance.now() - started });
    });
  });
}

export interface LongRunningProcess {
  child: ChildProcess;
  pid: number;
  /** The last few KiB of stdout and stderr, for error messages. */
  tail(): string;
  /** Resolves once `text` has appeared in the output. */
  waitFor(text: string, timeoutMs: number): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `node script` and keeps only the tail of its output (a worker logs a line per job). */
export function startNodeProcess(script: string, env: Record<string, string>): LongRunningProcess {
  const child = spawn(process.execPath, [script], { env, cwd: CHILD_CWD, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${script}`);
  const pid = child.pid;
  let tail = '';
  let seen = '';
  const watchers = new Set<() => void>();
  const append = (chunk: Buffer) => {
    const text = chunk.toString();
    tail = (tail + text).slice(-8192);
    if (watchers.size > 0) seen += text;
    for (const watcher of watchers) watcher();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    pid,
    tail: () => tail,
    waitFor(text, timeoutMs) {
      return new Promise<void>((resolve, reject) => {
        seen = tail;
        const finish = (error?: Error) => {
          clearTimeout(timer);
          watchers.delete(check);
          if (error) reject(error);
          else resolve();
        };
        const check = () => {
          if (seen.includes(text)) finish();
        };
        const timer = setTimeout(() => finish(new Error(`timed out waiting for "${text}" from ${script}:\n${tail}`)), timeoutMs);
        void exited.then(() => {
          if (watchers.has(check)) finish(new Error(`${script} exited before "${text}":\n${tail}`));
        });
        watchers.add(check);
        check();
      });
    },
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Memory figures of a live process from /proc/PID/status, in bytes. */
export interface ProcessMemory {
  /** Resident set. */
  rss: number;
  /** Peak resident set so far. */
  hwm: number;
  /** Resident anonymous memory: the JS heap, malloc, buffers. */
  anon: number;
  /** Resident file-backed pages: the node binary and shared libraries (shared with other node processes). */
  file: number;
}

export function processMemory(pid: number): ProcessMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) * 1024 : Number.NaN;
  };
  return { rss: field('VmRSS'), hwm: field('VmHWM'), anon: field('RssAnon'), file: field('RssFile') };
}

/** "0.84 1.20 2.03" (1, 5 and 15 minutes). */
export function loadAverage(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The checkout's control-process key (data/authority.key): the workers the bench starts here trust its public half. */
export function benchAuthority(): Signer {
  return loadAuthoritySigner({ SNAPBOT_DATA_DIR: join(PROJECT_ROOT, 'data') });
}
