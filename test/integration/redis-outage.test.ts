import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort, startRedisServer, type RedisServerHandle } from '../../scripts/redis-server.js';
import { SnapbotCore } from '../../bot/core/core.js';
import { runJob } from '../../bot/core/dispatch.js';
import { SnapbotError } from '../../shared/errors.js';
import type { JobResult } from '../../shared/jobs.js';
import { createLogger } from '../../shared/logger.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import type { SpawnedProcess } from '../helpers/processes.js';
import { uniquePrefix } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import { testAuthority } from '../helpers/authority.js';

/**
 * Issue 10, finding 8: Redis (AOF, appendfsync always) is SIGKILLed in the middle of a run
 * and started again on the same port and data a few seconds later. The worker keeps
 * consuming, the bot's core (reconnecting forever) keeps working and fails fast while
 * Redis is away, and every job completes exactly once.
 */
const HOST = 'kvm-outage';
const OUTAGE_MS = 3_000;
let dir: string;
let port: number;
let server: RedisServerHandle;
let fake: FakeVirshHost;
let worker: SpawnedProcess | undefined;
let core: SnapbotCore | undefined;

const start = () => startRedisServer({ port, dir, durable: true });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'snapbot-outage-'));
  port = await findFreePort();
  server = await start();
  fake = await FakeVirshHost.create();
});

afterAll(async () => {
  await worker?.stop('SIGKILL');
  await core?.close();
  await server?.stop();
  await fake?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Date.now() - started;
}

describe('a Redis outage mid-run', () => {
  it('loses nothing: the worker and the core reconnect, and every job completes exactly once', async () => {
    const url = `redis://127.0.0.1:${port}`;
    const prefix = uniquePrefix('outage');
    const vms = ['vm-0', 'vm-1', 'vm-2', 'vm-3'].map((name) => fake.addDomain({ name }));
    // Creates take a while, so some are running on the host when Redis dies. The job lock
    // is longer than the outage, as in production (30 s vs a restart of a few seconds).
    fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 400 }]);
    worker = await startWorkerProcess({ redisUrl: url, prefix, hostId: HOST, fake, env: { JOB_LOCK_MS: '15000', JOB_STALLED_CHECK_MS: '5000' } });
    core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: url, prefix, logger: createLogger('test', 'silent'), redisReconnect: 'forever' });
    const live = core;

    // Resolves once the job is on the queue, with its result to come (wrapped: a promise
    // resolved with a promise would wait for that one).
    const create = (name: string, vm: string) =>
      new Promise<{ result: Promise<JobResult> }>((queued, refused) => {
        const result = runJob(live, { kind: 'create', host: HOST, vm, requestedBy: 'test', name, mode: 'disk-only' }, { timeoutMs: 120_000, onQueued: () => queued({ result }) });
        result.catch(refused);
      });
    const before: Array<Promise<JobResult>> = [];
    for (let index = 0; index < 12; index += 1) before.push((await create(`before-${index}`, vms[index % vms.length]!.name)).result);
    // Some creates have reached virsh: the worker is mid-run.
    await until(() => fake.calls().some((call) => call.argv.includes('snapshot-create-as')), 'the first create to reach virsh');
    const doneBeforeKill = fake.calls().filter((call) => call.argv.includes('snapshot-create-as')).length;

    server.process.kill('SIGKILL');
    await until(() => server.process.exitCode !== null || server.process.signalCode !== null, 'redis-server to die');
    const killedAt = Date.now();

    // While Redis is away the core answers at once, REDIS_UNAVAILABLE, instead of hanging.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const refusedAt = Date.now();
    const refused = await runJob(live, { kind: 'list', host: HOST, vm: 'vm-0', requestedBy: 'test' }, { timeoutMs: 60_000 }).then(
      () => null,
      (error: unknown) => error,
    );
    const refusalMs = Date.now() - refusedAt;
    expect(refused).toBeInstanceOf(SnapbotError);
    expect((refused as SnapbotError).code).toBe('REDIS_UNAVAILABLE');
    expect(refusalMs).toBeLessThan(1_000);

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - killedAt))));
    server = await start();
    const restartedAt = Date.now();

    const [coreBackMs, workerBackMs] = await Promise.all([
      until(async () => live.redis.status === 'ready' && (await live.redis.ping().catch(() => null)) === 'PONG', 'the core to reconnect'),
      until(() => worker!.output().includes('redis reconnected'), 'the worker to reconnect'),
    ]);

    // The heartbeat resumes: the host's alive key (expired during the outage) is back.
    await until(async () => (await live.redis.exists(`${prefix}:host:${HOST}:alive`)) === 1, 'the heartbeat to resume');

    // The jobs from before the outage all finish, and the worker takes new ones.
    const beforeResults = await Promise.all(before);
    const after = await Promise.all(Array.from({ length: 4 }, (_, index) => create(`after-${index}`, vms[index]!.name)));
    const afterResults = await Promise.all(after.map((queued) => queued.result));
    const doneMs = Date.now() - restartedAt;

    for (const result of [...beforeResults, ...afterResults]) expect(result).toMatchObject({ kind: 'create' });
    // The outage came in the middle: most of the run was still to do.
    expect(doneBeforeKill).toBeLessThan(8);
    const recovered = beforeResults.filter((result) => result.kind === 'create' && result.recovered).length;
    // Exactly once: one snapshot per job on the host, and one snapshot-create-as per name.
    const names = [...before.keys()].map((index) => `before-${index}`).concat([0, 1, 2, 3].map((index) => `after-${index}`));
    const onHost = vms.flatMap((vm) => fake.domain(vm.uuid).snapshots.map((snapshot) => snapshot.name)).sort();
    expect(onHost).toEqual([...names].sort());
    for (const name of names) {
      expect(fake.calls().filter((call) => call.argv.includes('snapshot-create-as') && call.argv.includes(`--name=${name}`)), name).toHaveLength(1);
    }
    // The worker logged the outage once, with how long it lasted.
    expect(worker.output().match(/redis connection lost; reconnecting/g)?.length).toBeGreaterThanOrEqual(1);

    console.info(
      `redis outage: killed for ${restartedAt - killedAt} ms; core refused a command in ${refusalMs} ms while down; ` +
        `after the restart the core was back in ${coreBackMs} ms, the worker in ${workerBackMs} ms, and all 16 jobs done ${doneMs} ms after it ` +
        `(${doneBeforeKill} creates had reached virsh before the kill; ${recovered} jobs re-ran and found their snapshot)`,
    );
  }, 180_000);
});
