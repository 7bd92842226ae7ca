import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../bot/core/authorize.js';
import { decideApproval } from '../../bot/core/approvals.js';
import { SnapbotCore } from '../../bot/core/core.js';
import { runJob } from '../../bot/core/dispatch.js';
import { confirmFleet, getFleetRun, planFleet, watchFleetRun } from '../../bot/core/fleet/index.js';
import { redisUrlOf } from '../../shared/config.js';
import { fleetJobId } from '../../shared/fleet.js';
import { splitJobMarker } from '../../shared/jobs.js';
import { createLogger } from '../../shared/logger.js';
import { redactRedisUrl } from '../../shared/redis.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { testAuthority } from '../helpers/authority.js';
import { startControlProcess } from '../helpers/control-process.js';
import { parseJsonOutput, runSnapctl, type SpawnedProcess } from '../helpers/processes.js';
import { uniquePrefix } from '../helpers/redis.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import { settledJobStates } from '../helpers/jobs.js';

/**
 * Redis Cluster (issue 12): three masters and a replica each on loopback, with a
 * password. A worker process, the control plane and snapctl find it from
 * REDIS_CLUSTER_NODES; every key shares the prefix's hash tag, so everything lives in one
 * slot. `CLUSTER FAILOVER` on the replica of that slot's master in the middle of a fleet
 * run, and in a second run (another prefix) its slot's master killed outright: every
 * target settles, no job is lost, every VM gets one snapshot, and the worker takes new
 * jobs from the new master.
 */
let cluster: RedisCluster;
let fake: FakeVirshHost;
let worker: SpawnedProcess | undefined;
let core: SnapbotCore | undefined;
let control: SpawnedProcess | undefined;
const ADMIN: Actor = { id: 'discord:1001', userId: '1001', displayName: 'ada', roleIds: [], roleNames: [], isAdministrator: true };
const VMS = Array.from({ length: 16 }, (_, i) => `cl-${String(i).padStart(2, '0')}`);

beforeAll(async () => {
  cluster = await startRedisCluster();
  fake = await FakeVirshHost.create();
  for (const vm of VMS) fake.addDomain({ name: vm });
}, 120_000);

afterAll(async () => {
  await worker?.stop('SIGKILL');
  await control?.stop('SIGKILL');
  await core?.close();
  await fake?.dispose();
  await cluster?.stop();
});

describe('Redis Cluster', () => {
  it('names the nodes in its connection string, without the password in messages, and refuses a second way to find Redis', () => {
    const url = redisUrlOf({ REDIS_CLUSTER_NODES: 'a:7000,b:7001', REDIS_CLUSTER_PASSWORD: 'p@ss:w/rd', REDIS_CLUSTER_USERNAME: 'snapbot' });
    expect(url).toBe('redis-cluster://snapbot:p%40ss%3Aw%2Frd@a:7000,b:7001');
    expect(redactRedisUrl(url)).toBe('redis-cluster://snapbot:***@a:7000,b:7001');
    expect(redisUrlOf({ REDIS_CLUSTER_NODES: 'a:7000' })).toBe('redis-cluster://a:7000');
    expect(() => redisUrlOf({ REDIS_CLUSTER_NODES: 'a:7000', REDIS_URL: 'redis://:pw@b:6379' })).toThrow(/REDIS_CLUSTER_NODES and REDIS_URL both say where Redis is: unset REDIS_URL/);
    expect(() => redisUrlOf({ REDIS_CLUSTER_NODES: 'a:7000', REDIS_SENTINELS: 'c:26379', REDIS_SENTINEL_NAME: 'main' })).toThrow(/REDIS_CLUSTER_NODES and REDIS_SENTINELS/);
    expect(() => redisUrlOf({ REDIS_CLUSTER_PASSWORD: 'pw' })).toThrow(/REDIS_CLUSTER_PASSWORD is set but REDIS_CLUSTER_NODES is not/);
    expect(() => redisUrlOf({ REDIS_CLUSTER_NODES: 'a:7000', SNAPBOT_PREFIX: 'snapbot' })).toThrow(/SNAPBOT_PREFIX must hold a hash tag such as \{snapbot\}/);
    expect(() => redisUrlOf({ REDIS_CLUSTER_NODES: 'a:7000', SNAPBOT_PREFIX: 'x{}' })).toThrow(/SNAPBOT_PREFIX/);
    expect(redisUrlOf({ REDIS_CLUSTER_NODES: 'a:7000', SNAPBOT_PREFIX: 'team-{snapbot}' })).toBe('redis-cluster://a:7000');
  });

  it('snapctl names both variables when REDIS_CLUSTER_NODES comes with REDIS_URL, and the password variable when the cluster refuses it', async () => {
    const both = parseJsonOutput(await runSnapctl(['hosts', '--json'], { REDIS_CLUSTER_NODES: cluster.nodes, REDIS_URL: 'redis://127.0.0.1:1' }));
    expect(both).toMatchObject({ ok: false, code: 'VALIDATION' });
    expect(String(both.message)).toMatch(/REDIS_CLUSTER_NODES and REDIS_URL/);
    const wrong = parseJsonOutput(await runSnapctl(['hosts', '--json'], { REDIS_CLUSTER_NODES: cluster.nodes, REDIS_CLUSTER_PASSWORD: 'not-it', REDIS_URL: '' }));
    expect(wrong).toMatchObject({ ok: false, code: 'REDIS_UNAVAILABLE' });
    expect(String(wrong.message)).toMatch(/REDIS_CLUSTER_PASSWORD/);
    expect(String(wrong.message)).not.toContain('not-it');
  }, 60_000);

  it('runs a fleet through the cluster across a CLUSTER FAILOVER; snapctl, the control process, a schedule and its approval through it; every key is in the one slot', async () => {
    const prefix = uniquePrefix('cluster');
    const env = { REDIS_CLUSTER_NODES: cluster.nodes, REDIS_CLUSTER_PASSWORD: cluster.password };
    fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 600 }]);
    worker = await startWorkerProcess({ redisUrl: '', prefix, hostId: 'kvm-cl', fake, env: { ...env, WORKER_CONCURRENCY: '2' } });
    core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redisUrlOf({ ...env, SNAPBOT_PREFIX: prefix }), prefix, logger: createLogger('test', 'silent'), redisReconnect: 'forever' });
    const plan = await planFleet(core, { action: 'snapshot', target: 'cl-*', name: 'across-cluster-failover', requester: { id: ADMIN.id, userId: ADMIN.userId, displayName: 'ada' }, actor: ADMIN, origin: 'discord' });
    expect(plan.targets).toHaveLength(VMS.length);
    await confirmFleet(core, plan.id, ADMIN);

    // Fail over the shard that holds every key, once a few targets are done and others are running.
    await runAcrossSwitch(core, plan, 'kvm-cl', 'across-cluster-failover', () => cluster.failover(prefix));
    // The worker still consumes: a new job goes through the new master.
    fake.setFaults([]);
    const created = await runJob(core, { kind: 'create', host: 'kvm-cl', vm: 'cl-00', uuid: fake.domain('cl-00').uuid, name: 'after-cluster-failover', mode: 'disk-only', requestedBy: ADMIN.id }, { timeoutMs: 30_000 });
    expect(created.snapshot.name).toBe('after-cluster-failover');

    // snapctl through the cluster: a read from Redis (hosts) and one through the worker (list).
    const snapctlEnv = { ...env, SNAPBOT_PREFIX: prefix, REDIS_URL: '' };
    expect(parseJsonOutput(await runSnapctl(['hosts', '--json'], snapctlEnv))).toMatchObject({ ok: true, hosts: [{ hostId: 'kvm-cl' }] });
    const listed = await runSnapctl(['list', '--vm', 'cl-00', '--json'], snapctlEnv);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.stringify(parseJsonOutput(listed))).toContain('after-cluster-failover');
    // A change goes through the control process (npm run bot), which finds the cluster the same way.
    control = await startControlProcess({ ...env, SNAPBOT_PREFIX: prefix, REDIS_URL: '' });
    const made = parseJsonOutput(await runSnapctl(['create', '--vm', 'cl-01', '--name', 'via-control', '--json'], snapctlEnv));
    expect(made).toMatchObject({ ok: true });
    expect(fake.domain('cl-01').snapshots.map((snapshot) => snapshot.name)).toContain('via-control');
    // A schedule: its BullMQ job scheduler, the control process's firing worker and snapbot's schedule scripts, on the cluster.
    const schedule = async (args: string[]) => parseJsonOutput(await runSnapctl(['schedule', ...args, '--json'], snapctlEnv));
    const pending = await schedule(['create', 'nightly', '--target', 'cl-0*', '--cron', '30 2 * * *', '--keep', 'last=2']);
    // Its retention deletes, and deletes need an administrator's approval (the default policy): the approval scripts too.
    expect(pending).toMatchObject({ ok: true, status: 'pending' });
    expect(await decideApproval(core, { id: String(pending.requestId), actor: ADMIN, decision: 'approve' })).toMatchObject({ outcome: 'approved' });
    const activeBy = Date.now() + 30_000;
    while (((await schedule(['show', 'nightly'])).schedule as { status?: string } | undefined)?.status !== 'active' && Date.now() < activeBy) await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await schedule(['run', 'nightly'])).toMatchObject({ ok: true, name: 'nightly', firing: { outcome: 'ok', counts: { done: 10 } } });
    expect(await schedule(['delete', 'nightly'])).toMatchObject({ ok: true });

    // Every key snapbot and BullMQ wrote is in the prefix's slot, on that slot's master.
    const { master } = await cluster.shardOf(prefix);
    const admin = (port: number) => new Redis({ port, host: '127.0.0.1', password: cluster.password, maxRetriesPerRequest: 1 });
    const owner = admin(master);
    try {
      const slot = Number(await owner.call('CLUSTER', 'KEYSLOT', prefix));
      const inSlot = Number(await owner.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot)));
      expect(inSlot).toBeGreaterThan(VMS.length);
      expect(await owner.dbsize()).toBe(inSlot);
    } finally {
      owner.disconnect();
    }
    for (const port of cluster.ports.filter((port) => port !== master)) {
      const node = admin(port);
      try {
        const role = (await node.call('ROLE')) as [string];
        if (role[0] === 'master') expect(await node.dbsize(), `master ${port}`).toBe(0);
      } finally {
        node.disconnect();
      }
    }
  }, 240_000);

  it("runs a fleet across the loss of the master holding every key (SIGKILL): its replica takes over, every target still settles once", async () => {
    await control?.stop('SIGTERM');
    await worker?.stop('SIGTERM');
    await core?.close();
    const prefix = uniquePrefix('cluster-kill');
    const env = { REDIS_CLUSTER_NODES: cluster.nodes, REDIS_CLUSTER_PASSWORD: cluster.password };
    fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 600 }]);
    worker = await startWorkerProcess({ redisUrl: '', prefix, hostId: 'kvm-kill', fake, env: { ...env, WORKER_CONCURRENCY: '2' } });
    core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redisUrlOf({ ...env, SNAPBOT_PREFIX: prefix }), prefix, logger: createLogger('test', 'silent'), redisReconnect: 'forever' });
    const plan = await planFleet(core, { action: 'snapshot', target: 'cl-*', name: 'across-lost-master', requester: { id: ADMIN.id, userId: ADMIN.userId, displayName: 'ada' }, actor: ADMIN, origin: 'discord' });
    await confirmFleet(core, plan.id, ADMIN);
    await runAcrossSwitch(core, plan, 'kvm-kill', 'across-lost-master', () => cluster.killMaster(prefix));
    fake.setFaults([]);
    const created = await runJob(core, { kind: 'create', host: 'kvm-kill', vm: 'cl-02', uuid: fake.domain('cl-02').uuid, name: 'after-lost-master', mode: 'disk-only', requestedBy: ADMIN.id }, { timeoutMs: 30_000 });
    expect(created.snapshot.name).toBe('after-lost-master');
  }, 240_000);
});

/**
 * Watches a confirmed fleet run while `change` switches the master of the prefix's slot
 * (once three targets are done and another runs), then asserts what an operator relies
 * on: every target done, one snapshot per VM made by the run, every job completed.
 */
async function runAcrossSwitch(
  core: SnapbotCore,
  plan: Awaited<ReturnType<typeof planFleet>>,
  hostId: string,
  name: string,
  change: () => Promise<{ from: number; to: number }>,
): Promise<void> {
  let failover: { from: number; to: number; ms: number } | undefined;
  const switched = (async () => {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const run = await getFleetRun(core, plan.id).catch(() => null);
      const states = [...(run?.targets.values() ?? [])].map((target) => target.state);
      if (states.filter((state) => state === 'done').length >= 3 && states.includes('running')) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const started = Date.now();
    const { from, to } = await change();
    failover = { from, to, ms: Date.now() - started };
  })();
  const [summary] = await Promise.all([watchFleetRun(core, plan.id, { pollMs: 200 }), switched]);
  console.info(`cluster failover ${JSON.stringify(failover)}, run ${Math.round(summary.durationMs)} ms`);
  expect(failover!.to).not.toBe(failover!.from);
  expect(summary.counts, JSON.stringify(summary.failures)).toMatchObject({ done: VMS.length, failed: 0, cancelled: 0 });
  for (const vm of VMS) {
    const snapshots = fake.domain(vm).snapshots.filter((snapshot) => snapshot.name === name);
    expect(snapshots, vm).toHaveLength(1);
    expect(splitJobMarker(snapshots[0]!.description).jobId).toMatch(new RegExp(`^fleet-${plan.id}-`));
  }
  // No job lost: every one of the run's jobs ends completed.
  const queue = core.queueFor(hostId);
  const states = await settledJobStates(queue, plan.targets.map((target) => fleetJobId(plan.id, target.index)));
  expect(states.filter((state) => state !== 'completed'), JSON.stringify(states)).toEqual([]);
}
