import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The compiled entry points (`npm test` builds first), run as real processes. */
export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SNAPCTL = fileURLToPath(new URL('../../dist/bot/cli/snapctl.js', import.meta.url));
export const WORKER_MAIN = fileURLToPath(new URL('../../dist/worker/main.js', import.meta.url));
export const START_MAIN = fileURLToPath(new URL('../../dist/scripts/start.js', import.meta.url));

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Runs snapctl with `args` and the given environment; resolves when it exits. */
export function runSnapctl(args: string[], env: Record<string, string>): Promise<CommandResult> {
  return runNode(SNAPCTL, args, env);
}

export function runNode(script: string, args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<CommandResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', LOG_LEVEL: 'warn', ...env },
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, durationMs: Date.now() - started });
    });
  });
}

/** Parses the one JSON object that `snapctl --json` prints. */
export function parseJsonOutput(result: CommandResult): Record<string, unknown> {
  const lines = result.stdout.trim().split('\n');
  if (lines.length !== 1) throw new Error(`expected one JSON line, got:\n${result.stdout}\nstderr:\n${result.stderr}`);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

export interface SpawnedProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves once `text` has appeared in the process's stderr/stdout. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` and waits for exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts a long-running node process (worker, npm start) and keeps its output for assertions. */
export function spawnNode(script: string, env: Record<string, string>, options: { cwd?: string } = {}): SpawnedProcess {
  const child = spawn(process.execPath, [script], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
    cwd: options.cwd ?? PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    waitFor(text, timeoutMs = 30_000) {
      const matches = () => (typeof text === 'string' ? output.includes(text) : text.test(output));
      return new Promise<void>((resolve, reject) => {
        if (matches()) return resolve();
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${String(text)}; output so far:\n${output}`));
        }, timeoutMs);
        const check = () => {
          if (!matches()) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve();
        };
        listeners.add(check);
        void exited.then(() => {
          if (!matches() && listeners.has(check)) {
            clearTimeout(timer);
            listeners.delete(check);
            reject(new Error(`process exited before ${String(text)}; output:\n${output}`));
          }
        });
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}
