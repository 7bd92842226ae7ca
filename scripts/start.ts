#!/usr/bin/env node
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDotEnv, managedRedisPasswordFile, MANAGED_REDIS_URL } from '../shared/config.js';
import { loadAuthoritySigner } from '../shared/authority-keys.js';
import { SnapbotError } from '../shared/errors.js';
import { createLogger } from '../shared/logger.js';
import { redactRedisUrl } from '../shared/redis.js';
import { loadOrCreateRedisPassword, portInUse, startRedisServer, type RedisServerHandle } from './redis-server.js';
import { WORKER_ENVIRONMENT, WORKER_NODE_FLAGS } from './worker-node-flags.js';

/**
 * `npm start`: everything for a single KVM host in one command. When REDIS_URL is unset
 * it runs a managed redis-server (AOF, fsync always, noeviction, data under ./data,
 * loopback only, a password made on first start in ./data/redis.password); then the
 * worker for the local libvirt, and the control process (`npm run bot`: policy, approvals,
 * job signing, snapctl's requests; Discord too when DISCORD_TOKEN is set). A
 * managed Redis that dies is restarted (with backoff) on the same port, data and
 * password. Ctrl-C or SIGTERM stops them in order: bot and worker first (running virsh
 * calls finish), Redis last.
 */
const logger = createLogger('snapbot');
const distRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));
const MANAGED_REDIS_PORT = Number(new URL(MANAGED_REDIS_URL).port);

/** A managed redis-server that dies is started again after this long, doubling up to the cap. */
const REDIS_RESTART_FIRST_MS = 500;
const REDIS_RESTART_CAP_MS = 30_000;
/** A server that stayed up this long counts as healthy again: its next restart waits the shortest time. */
const REDIS_HEALTHY_AFTER_MS = 60_000;

async function main(): Promise<void> {
  loadDotEnv();
  let redis: RedisServerHandle | undefined;
  let stopping = false;
  const env = { ...process.env };
  // Sentinels or a Cluster say where Redis is as REDIS_URL does: no managed Redis then.
  if (!env.REDIS_URL && !env.REDIS_SENTINELS && !env.REDIS_CLUSTER_NODES) {
    if (await portInUse(MANAGED_REDIS_PORT)) {
      throw new SnapbotError(
        'REDIS_UNAVAILABLE',
        `Port ${MANAGED_REDIS_PORT} (the managed Redis) is already in use. Stop what listens there, or set REDIS_URL to use an existing Redis.`,
      );
    }
    const dataDir = resolve(process.env.SNAPBOT_DATA_DIR || 'data');
    const dir = resolve(dataDir, 'redis');
    // Any local user could otherwise reach a loopback Redis: it requires a password, kept
    // 0600 in the data directory (0700), the same one across starts and restarts.
    const secret = loadOrCreateRedisPassword(managedRedisPasswordFile(dataDir));
    if (secret.created) logger.info({ file: secret.file }, 'managed Redis password created');
    if (secret.tightened.length > 0) logger.warn({ paths: secret.tightened }, 'other users could read these; made them private to this user');
    const serverOptions = { port: MANAGED_REDIS_PORT, dir, durable: true, ownProcessGroup: true, password: secret.password };
    redis = await startRedisServer(serverOptions);
    // The children get the URL with the password (their environment is theirs to read only).
    env.REDIS_URL = redis.url;
    logger.info({ url: redactRedisUrl(redis.url), dir, pid: redis.process.pid }, 'managed redis-server started');

    // If the managed Redis dies, start it again on the same port and data (its AOF keeps
    // every job); the worker and the bot reconnect by themselves meanwhile.
    let failures = 0;
    const supervise = (handle: RedisServerHandle) => {
      const startedAt = Date.now();
      handle.process.once('exit', (code, signal) => {
        if (stopping) return;
        if (Date.now() - startedAt >= REDIS_HEALTHY_AFTER_MS) failures = 0;
        void (async () => {
          for (;;) {
            const delayMs = Math.min(REDIS_RESTART_FIRST_MS * 2 ** failures, REDIS_RESTART_CAP_MS);
            failures += 1;
            logger.error({ code, signal, restartInMs: delayMs, restarts: failures }, 'managed redis-server exited; restarting it');
            await new Promise((done) => setTimeout(done, delayMs));
            if (stopping) return;
            try {
              const next = await startRedisServer(serverOptions);
              if (stopping) {
                await next.stop();
                return;
              }
              redis = next;
              logger.info({ url: redactRedisUrl(next.url), pid: next.process.pid, restarts: failures }, 'managed redis-server restarted');
              supervise(next);
              return;
            } catch (error) {
              logger.error({ err: error }, 'managed redis-server did not start again');
            }
          }
        })();
      });
    };
    supervise(redis);
  }

  const children: Array<{ name: string; process: ChildProcess }> = [];
  const launch = (name: string, script: string, overrides: Record<string, string> = {}, nodeFlags: readonly string[] = []) => {
    // Own process group: a Ctrl-C in the terminal reaches only this launcher, which then
    // stops the children once and in order (a worker signalled twice would not wait for virsh).
    const child = spawn(process.execPath, [...nodeFlags, resolve(distRoot, script)], { env: { ...env, ...overrides }, stdio: 'inherit', detached: true });
    children.push({ name, process: child });
    return child;
  };

  const stopAll = async (exitCode: number) => {
    if (stopping) return;
    stopping = true;
    await Promise.all(
      children.map(
        ({ process: child }) =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      ),
    );
    if (redis) {
      await redis.stop();
      logger.info('managed redis-server stopped');
    }
    process.exit(exitCode);
  };

  // The control process's key, made now if it is the first start, so that the worker
  // (which trusts only that key's jobs) never starts before it exists.
  const authority = loadAuthoritySigner({ SNAPBOT_DATA_DIR: env.SNAPBOT_DATA_DIR || 'data', SNAPBOT_SIGNING_KEY: env.SNAPBOT_SIGNING_KEY || undefined });
  env.SNAPBOT_AUTHORITY_KEY ||= authority.publicKeyPem();
  launch('bot', 'bot/main.js');
  // Two processes cannot serve one port: with METRICS_PORT=N the control process takes N, the worker N + 1.
  const metricsPort = Number.parseInt(env.METRICS_PORT ?? '', 10);
  launch('worker', 'worker/main.js', { ...WORKER_ENVIRONMENT, ...(Number.isInteger(metricsPort) && metricsPort > 0 && metricsPort < 65535 ? { METRICS_PORT: String(metricsPort + 1) } : {}) }, WORKER_NODE_FLAGS);
  if (Number.isInteger(metricsPort) && metricsPort > 0) logger.info({ bot: metricsPort, worker: metricsPort + 1 }, 'metrics: the control process and the worker each on their own port');
  if (!env.DISCORD_TOKEN) logger.info('DISCORD_TOKEN unset: the control process serves snapctl only (no Discord)');
  for (const { name, process: child } of children) {
    child.on('exit', (code, signal) => {
      if (stopping) return;
      logger.error({ name, code, signal }, `${name} exited; stopping everything`);
      void stopAll(code === 0 ? 1 : (code ?? 1));
    });
  }
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));
}

main().catch((error: unknown) => {
  const message = error instanceof SnapbotError ? `${error.code}: ${error.message}` : String(error);
  process.stderr.write(`snapbot: ${message}\n`);
  process.exit(1);
});
