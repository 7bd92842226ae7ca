import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SnapbotCore } from '../../bot/core/core.js';
import { runJob } from '../../bot/core/dispatch.js';
import { portInUse } from '../../scripts/redis-server.js';
import { loadAuthoritySigner } from '../../shared/authority-keys.js';
import { redisUrlOf } from '../../shared/config.js';
import { createLogger } from '../../shared/logger.js';
import { DEFAULT_PREFIX } from '../../shared/queues.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { spawnNode, START_MAIN, type SpawnedProcess } from '../helpers/processes.js';
import { FAKE_LIBVIRT_URI } from '../helpers/worker-process.js';

/**
 * Issue 10, finding 8: `npm start` restarts its managed redis-server when it dies (same
 * port, same AOF), and the worker it runs carries on. The real launcher with the fake
 * virsh; it needs the managed port 6380, which start.test.ts also touches briefly.
 */
const HOST = 'start-restart';
let dataDir: string | undefined;
let fake: FakeVirshHost | undefined;
let launcher: SpawnedProcess | undefined;
let core: SnapbotCore | undefined;

afterAll(async () => {
  await core?.close();
  await launcher?.stop('SIGTERM');
  await fake?.dispose();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}; output:\n${launcher?.output() ?? ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Date.now() - started;
}

/** The pid in the last log line with this message. */
function pidFrom(output: string, message: string): number | undefined {
  const lines = output.split('\n').filter((line) => line.includes(`"msg":"${message}"`));
  const last = lines.at(-1);
  return last ? (JSON.parse(last) as { pid?: number }).pid : undefined;
}

describe('npm start with a managed Redis that dies', () => {
  it('restarts redis-server on the same port and data, and the worker keeps taking jobs', async () => {
    // start.test.ts holds the port for a moment to test the "port in use" message.
    await until(async () => !(await portInUse(6380)), 'port 6380 to be free', 60_000);
    dataDir = mkdtempSync(join(tmpdir(), 'snapbot-start-restart-'));
    fake = await FakeVirshHost.create();
    const vm = fake.addDomain({ name: 'vm-s' });
    launcher = spawnNode(START_MAIN, {
      SNAPBOT_DATA_DIR: dataDir,
      HOST_ID: HOST,
      VIRSH_PATH: fake.path,
      LIBVIRT_URI: FAKE_LIBVIRT_URI,
      HEARTBEAT_INTERVAL_MS: '300',
      HEARTBEAT_TTL_MS: '1500',
      LOG_LEVEL: 'info',
    });
    await launcher.waitFor('worker ready', 60_000);
    // Redis dies once everything runs (the worker and the control process waiting for a Redis
    // not up yet, as when it dies during start-up, is redis-late-start.test.ts).
    await launcher.waitFor('control process ready', 60_000);
    const firstPid = pidFrom(launcher.output(), 'managed redis-server started');
    expect(firstPid).toBeGreaterThan(0);

    // The managed Redis wants the password npm start made in the data directory.
    const managedUrl = redisUrlOf({ SNAPBOT_DATA_DIR: dataDir });
    // …and signs with the key npm start's control process made there (its worker trusts only that one).
    const signer = loadAuthoritySigner({ SNAPBOT_DATA_DIR: dataDir! });
    core = await SnapbotCore.connect({ signer, redisUrl: managedUrl, prefix: DEFAULT_PREFIX, logger: createLogger('test', 'silent'), redisReconnect: 'forever' });
    const live = core;
    const create = (name: string) => runJob(live, { kind: 'create', host: HOST, vm: vm.name, requestedBy: 'test', name, mode: 'disk-only' }, { timeoutMs: 60_000 });
    expect(await create('before-crash')).toMatchObject({ snapshot: { name: 'before-crash' } });

    process.kill(firstPid!, 'SIGKILL');
    const killedAt = Date.now();
    await launcher.waitFor('managed redis-server restarted', 30_000);
    const restartMs = Date.now() - killedAt;
    const secondPid = pidFrom(launcher.output(), 'managed redis-server restarted');
    expect(secondPid).toBeGreaterThan(0);
    expect(secondPid).not.toBe(firstPid);
    expect(launcher.output()).toMatch(/managed redis-server exited; restarting it/);

    await until(() => launcher!.output().includes('redis reconnected'), 'the worker to reconnect');
    const workerBackMs = Date.now() - killedAt;
    // The test's own core reconnects on its own backoff (up to 2 s); wait for it too.
    await until(async () => (await live.redis.ping().catch(() => null)) === 'PONG', 'the core to reconnect');
    // Same data: the first job's record survived in the AOF; and new jobs run.
    expect(await live.redis.sismember(`${DEFAULT_PREFIX}:hosts`, HOST).catch(() => 0)).toBe(1);
    expect(await create('after-restart')).toMatchObject({ snapshot: { name: 'after-restart' } });
    expect(fake.domain(vm.uuid).snapshots.map((snapshot) => snapshot.name)).toEqual(['before-crash', 'after-restart']);
    // (BullMQ's QueueEvents cannot close while Redis is away: close the core first.)
    await core.close();
    core = undefined;
    // Ctrl-C still stops everything, Redis last.
    expect(await launcher.stop('SIGTERM')).toBe(0);
    expect(launcher.output()).toMatch(/managed redis-server stopped/);
    expect(await portInUse(6380)).toBe(false);
    console.info(`npm start: redis-server restarted ${restartMs} ms after SIGKILL; worker reconnected ${workerBackMs} ms after it`);
  }, 120_000);
});
