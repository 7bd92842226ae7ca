import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { portInUse } from '../../scripts/redis-server.js';
import { MANAGED_REDIS_URL } from '../../shared/config.js';
import { SnapbotError } from '../../shared/errors.js';
import { connectRedis, failFastRedisOptions } from '../../shared/redis.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { SNAPCTL, spawnNode, START_MAIN, type CommandResult, type SpawnedProcess } from '../helpers/processes.js';
import { FAKE_LIBVIRT_URI } from '../helpers/worker-process.js';

/**
 * Trust issue, finding 1: the managed Redis of `npm start` requires a password, made on
 * first start into data/redis.password (0600, data directory 0700), kept out of
 * redis-server's argv, the same across starts and supervisor restarts; snapctl in the
 * same folder reads it (and its requests reach the control process and the worker
 * `npm start` runs), and without it gets a sentence that says what was refused.
 *
 * Like the other start tests this needs the managed port 6380. `npm start` runs here in
 * a folder of its own, with no SNAPBOT_DATA_DIR: ./data, as in the README's quick start.
 */
const HOST = 'start-password';
const MANAGED_PORT = Number(new URL(MANAGED_REDIS_URL).port);
let checkout: string | undefined;
let fake: FakeVirshHost | undefined;
let launcher: SpawnedProcess | undefined;

afterAll(async () => {
  await launcher?.stop('SIGTERM');
  await fake?.dispose();
  if (checkout) rmSync(checkout, { recursive: true, force: true });
});

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}; output:\n${launcher?.output() ?? ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function startLauncher(cwd: string): SpawnedProcess {
  return spawnNode(
    START_MAIN,
    { HOST_ID: HOST, VIRSH_PATH: fake!.path, LIBVIRT_URI: FAKE_LIBVIRT_URI, HEARTBEAT_INTERVAL_MS: '300', HEARTBEAT_TTL_MS: '1500', LOG_LEVEL: 'info' },
    { cwd },
  );
}

/** snapctl as an operator runs it: in a folder, with no REDIS_URL and no SNAPBOT_DATA_DIR. */
function snapctlIn(cwd: string, args: string[]): Promise<CommandResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SNAPCTL, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, durationMs: Date.now() - started }));
  });
}

/** The pid in the last log line with this message. */
function pidFrom(output: string, message: string): number | undefined {
  const last = output
    .split('\n')
    .filter((line) => line.includes(`"msg":"${message}"`))
    .at(-1);
  return last ? (JSON.parse(last) as { pid?: number }).pid : undefined;
}

async function pingWith(options: { password?: string }): Promise<string> {
  const client = new Redis({ host: '127.0.0.1', port: MANAGED_PORT, ...options, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let refusal: Error | undefined;
  client.on('error', (error: Error) => (refusal ??= error));
  try {
    await client.connect();
    return await client.ping();
  } catch (error) {
    return (refusal ?? (error as Error)).message;
  } finally {
    client.disconnect();
  }
}

describe('npm start: the managed Redis has a password', () => {
  it('makes it on first start (0600, out of argv), refuses clients without it, serves snapctl in the same folder, keeps it across restarts', async () => {
    await until(async () => !(await portInUse(MANAGED_PORT)), `port ${MANAGED_PORT} to be free`, 90_000);
    checkout = mkdtempSync(join(tmpdir(), 'snapbot-start-password-'));
    fake = await FakeVirshHost.create();
    fake.addDomain({ name: 'vm-p' });

    launcher = startLauncher(checkout);
    await launcher.waitFor('worker ready', 60_000);

    // The file: 32 random bytes as base64url, owner-only, in an owner-only data directory.
    const dataDir = join(checkout, 'data');
    const passwordFile = join(dataDir, 'redis.password');
    const password = readFileSync(passwordFile, 'utf8').trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(passwordFile).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dataDir, 'redis', 'redis.conf')).mode & 0o777).toBe(0o600);
    expect(launcher.output()).toMatch(/managed Redis password created/);
    // Nowhere in the logs, nor in the command line every local user sees in ps.
    expect(launcher.output()).not.toContain(password);
    const redisPid = pidFrom(launcher.output(), 'managed redis-server started');
    expect(redisPid).toBeGreaterThan(0);
    expect(readFileSync(`/proc/${redisPid}/cmdline`, 'utf8')).not.toContain(password);

    // Without the password Redis says NOAUTH; with it, PONG; a wrong one, WRONGPASS.
    expect(await pingWith({})).toMatch(/^NOAUTH/);
    expect(await pingWith({ password })).toBe('PONG');
    expect(await pingWith({ password: 'not-it' })).toMatch(/^WRONGPASS/);
    // What snapbot's clients make of a refusal: the sentence, not "Connection is closed.".
    const refused = await connectRedis(MANAGED_REDIS_URL, failFastRedisOptions(MANAGED_REDIS_URL)).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(SnapbotError);
    expect(refused).toMatchObject({
      code: 'REDIS_UNAVAILABLE',
      message: expect.stringMatching(/^Redis at redis:\/\/127\.0\.0\.1:6380 refused the password \(none was given\) \(REDIS_URL \/ data\/redis\.password\): NOAUTH/),
    });

    // snapctl in the same folder finds the managed Redis and its password by itself.
    await until(async () => {
      const result = await snapctlIn(checkout!, ['hosts', '--json']);
      return result.code === 0 && (JSON.parse(result.stdout) as { hosts: Array<{ hostId: string; online: boolean }> }).hosts.some((h) => h.hostId === HOST && h.online);
    }, 'snapctl hosts to show the worker online');
    // Elsewhere (no data/redis.password there) it is told what was refused, not a stack.
    const elsewhere = mkdtempSync(join(tmpdir(), 'snapbot-elsewhere-'));
    try {
      mkdirSync(join(elsewhere, 'data'));
      const denied = await snapctlIn(elsewhere, ['hosts', '--json']);
      expect(denied.code).not.toBe(0);
      expect(JSON.parse(denied.stdout)).toMatchObject({ ok: false, code: 'REDIS_UNAVAILABLE', message: expect.stringContaining('refused the password') });
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }

    // The supervisor restarts a dead redis-server with the same password.
    process.kill(redisPid!, 'SIGKILL');
    await launcher.waitFor('managed redis-server restarted', 30_000);
    const restartedPid = pidFrom(launcher.output(), 'managed redis-server restarted');
    expect(restartedPid).not.toBe(redisPid);
    expect(await pingWith({})).toMatch(/^NOAUTH/);
    expect(await pingWith({ password })).toBe('PONG');
    await until(() => /"what":"worker".*"msg":"redis reconnected"/.test(launcher!.output()), 'the worker to reconnect');
    await until(() => /"what":"core".*"msg":"redis reconnected"/.test(launcher!.output()), 'the control process to reconnect');
    // All three parts work with the same password after the restart: snapctl's signed
    // request, the control process, the worker.
    const created = await snapctlIn(checkout, ['create', '--vm', 'vm-p', '--name', 'after-redis-restart', '--json']);
    expect(created.code, `${created.stdout}${created.stderr}`).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ ok: true, snapshot: { name: 'after-redis-restart' } });

    // A second `npm start` reads the same file: same password, not made again.
    expect(await launcher.stop('SIGTERM')).toBe(0);
    await until(async () => !(await portInUse(MANAGED_PORT)), 'the managed Redis to stop');
    launcher = startLauncher(checkout);
    await launcher.waitFor('worker ready', 60_000);
    expect(launcher.output()).not.toMatch(/managed Redis password created/);
    expect(readFileSync(passwordFile, 'utf8').trim()).toBe(password);
    expect(await pingWith({ password })).toBe('PONG');
    const again = await snapctlIn(checkout, ['hosts', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(launcher.output()).not.toContain(password);

    expect(await launcher.stop('SIGTERM')).toBe(0);
    launcher = undefined;
    expect(await portInUse(MANAGED_PORT)).toBe(false);
  }, 180_000);
});
