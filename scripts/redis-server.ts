import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { SnapbotError } from '../shared/errors.js';

/**
 * Runs a redis-server child process: the managed Redis of `npm start`, and the private
 * Redis instances that tests and benchmarks start on free ports.
 */
export interface RedisServerOptions {
  port: number;
  /** Working directory for the AOF files. */
  dir: string;
  /** AOF with fsync on every write (production); off for throwaway test instances. */
  durable: boolean;
  redisServerPath?: string;
  /**
   * Run in its own process group, so a Ctrl-C in the terminal does not stop Redis before
   * the worker has finished (the launcher stops it last).
   */
  ownProcessGroup?: boolean;
  /** How long to wait for the server to answer PING. */
  readyTimeoutMs?: number;
}

export interface RedisServerHandle {
  url: string;
  port: number;
  process: ChildProcess;
  /** SIGTERM (redis flushes the AOF and exits), then waits for the process to end. */
  stop(): Promise<void>;
}

export const REDIS_MISSING_HINT =
  'redis-server was not found: install it (apt-get install redis-server) or set REDIS_URL to an existing Redis.';

/** A TCP port that was free a moment ago, on loopback. */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when something accepts connections on 127.0.0.1:port. */
export async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(true));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(false)));
  });
}

export async function startRedisServer(options: RedisServerOptions): Promise<RedisServerHandle> {
  mkdirSync(options.dir, { recursive: true });
  const args = [
    '--port', String(options.port),
    '--bind', '127.0.0.1',
    '--protected-mode', 'yes',
    '--dir', options.dir,
    '--daemonize', 'no',
    '--save', '',
    '--maxmemory-policy', 'noeviction',
    '--appendonly', options.durable ? 'yes' : 'no',
    '--appendfsync', 'always',
    '--logfile', '',
  ]; // prettier-ignore
  const child = spawn(options.redisServerPath ?? 'redis-server', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownProcessGroup ?? false,
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'ENOENT' ? new SnapbotError('REDIS_UNAVAILABLE', REDIS_MISSING_HINT) : error);
    });
    child.once('exit', (code, signal) => {
      reject(new SnapbotError('REDIS_UNAVAILABLE', `redis-server exited (${signal ?? code}) before it was ready:\n${output.trim()}`));
    });
  });
  exited.catch(() => undefined);
  const url = `redis://127.0.0.1:${options.port}`;
  await Promise.race([waitForPing(options.port, options.readyTimeoutMs ?? 10_000), exited]);
  return {
    url,
    port: options.port,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function waitForPing(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      return;
    } catch {
      if (Date.now() > deadline) throw new SnapbotError('REDIS_UNAVAILABLE', `redis-server on port ${port} did not answer within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      client.disconnect();
    }
  }
}
