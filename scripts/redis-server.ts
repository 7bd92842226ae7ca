import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
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
  /**
   * Require this password (`requirepass`). It goes into a 0600 config file,
   * `configFile` (default `redis.conf` in `dir`), never onto the command line, which
   * every local user can read in `ps`.
   */
  password?: string;
  configFile?: string;
}

export interface RedisServerHandle {
  /** With the password, when there is one: keep it out of logs (redactRedisUrl). */
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

/** Only the owner may read or enter: the managed Redis's data and password. */
const PRIVATE_DIR_MODE = 0o700;
const PRIVATE_FILE_MODE = 0o600;

export interface ManagedRedisPassword {
  password: string;
  file: string;
  /** True when this call made it (the first start in this data directory). */
  created: boolean;
  /** Paths whose permissions this call narrowed (left readable by an older version). */
  tightened: string[];
}

/**
 * The managed Redis's password: read from `file` (in the data directory), or made on
 * first use — 32 random bytes, base64url — in a 0600 file under a 0700 directory. Every
 * later start, and every restart by the supervisor, reads the same one, so the clients
 * that read it (snapctl, `npm run worker` in the same folder) keep working.
 */
export function loadOrCreateRedisPassword(file: string): ManagedRedisPassword {
  const dir = dirname(file);
  const tightened = [...makePrivateDir(dir)];
  let existing = '';
  try {
    existing = readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SnapbotError('REDIS_UNAVAILABLE', `Cannot read the managed Redis password ${file}: ${(error as Error).message}`, { cause: error });
    }
  }
  if (existing) {
    if (narrowMode(file, PRIVATE_FILE_MODE)) tightened.push(file);
    return { password: existing, file, created: false, tightened };
  }
  const password = randomBytes(32).toString('base64url');
  writePrivateFile(file, `${password}\n`);
  return { password, file, created: true, tightened };
}

/** Creates `dir` as 0700, or narrows an existing one of ours that others can read. Returns the paths narrowed. */
export function makePrivateDir(dir: string): string[] {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  return narrowMode(dir, PRIVATE_DIR_MODE) ? [dir] : [];
}

/** chmod to `mode` when the path is ours and others have any access to it; true when it did. */
function narrowMode(path: string, mode: number): boolean {
  const stat = statSync(path);
  if ((stat.mode & 0o077) === 0) return false;
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) return false;
  chmodSync(path, mode);
  return true;
}

/** Writes `content` to `path` as a 0600 file, atomically (a temporary file renamed over it). */
function writePrivateFile(path: string, content: string): void {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, content, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
  chmodSync(temporary, PRIVATE_FILE_MODE); // whatever the umask
  renameSync(temporary, path);
}

/** A value for redis.conf, quoted (redis reads "…" with backslash escapes). */
function confString(value: string): string {
  return `"${value.replace(/[\\"]/g, (char) => `\\${char}`).replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}

export async function startRedisServer(options: RedisServerOptions): Promise<RedisServerHandle> {
  mkdirSync(options.dir, { recursive: true });
  const configArgs: string[] = [];
  if (options.password !== undefined) {
    makePrivateDir(options.dir);
    const configFile = options.configFile ?? join(options.dir, 'redis.conf');
    writePrivateFile(
      configFile,
      `# Written by snapbot on every start of this Redis; edits are overwritten.\nrequirepass ${confString(options.password)}\n`,
    );
    // A config file must come first on redis-server's command line.
    configArgs.push(configFile);
  }
  const args = [
    ...configArgs,
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
  const url = redisUrlFor(options.port, options.password);
  await Promise.race([waitForPing(options.port, options.readyTimeoutMs ?? 10_000, options.password), exited]);
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

function redisUrlFor(port: number, password: string | undefined): string {
  const url = new URL(`redis://127.0.0.1:${port}`);
  if (password !== undefined) url.password = password;
  return url.toString();
}

async function waitForPing(port: number, timeoutMs: number, password: string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Redis({
      port,
      host: '127.0.0.1',
      ...(password !== undefined ? { password } : {}),
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
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
