import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../bot/core/authorize.js';
import { SnapbotCore } from '../../bot/core/core.js';
import { runJob } from '../../bot/core/dispatch.js';
import { confirmFleet, getFleetRun, planFleet, watchFleetRun } from '../../bot/core/fleet/index.js';
import { redisUrlOf } from '../../shared/config.js';
import { fleetJobId } from '../../shared/fleet.js';
import { splitJobMarker } from '../../shared/jobs.js';
import { createLogger } from '../../shared/logger.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { testAuthority } from '../helpers/authority.js';
import type { SpawnedProcess } from '../helpers/processes.js';
import { uniquePrefix } from '../helpers/redis.js';
import { startSentinelGroup, type SentinelGroup } from '../helpers/redis-sentinel.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import { settledJobStates } from '../helpers/jobs.js';

/**
 * `SENTINEL FAILOVER` in the middle of a fleet run (issue 12): one master, one replica,
 * three Sentinels on loopback; a worker process and the control plane find the master
 * through the Sentinels. While jobs are active the Sentinels switch the master; every
 * target must still settle, no job may be lost, every VM gets exactly one snapshot, and
 * the worker must take new jobs from the new master afterwards.
 */
let group: SentinelGroup;
let fake: FakeVirshHost;
let worker: SpawnedProcess | undefined;
let core: SnapbotCore | undefined;
/** MONITOR loops of a diagnosed run (SNAPBOT_FAILOVER_DIAGNOSE=1). */
const monitors: ChildProcess[] = [];
const ADMIN: Actor = { id: 'discord:1001', userId: '1001', displayName: 'ada', roleIds: [], roleNames: [], isAdministrator: true };
const VMS = Array.from({ length: 16 }, (_, i) => `fo-${String(i).padStart(2, '0')}`);

beforeAll(async () => {
  group = await startSentinelGroup('snapbot-failover');
  fake = await FakeVirshHost.create();
  for (const vm of VMS) fake.addDomain({ name: vm });
}, 120_000);

afterAll(async () => {
  for (const monitor of monitors) if (monitor.pid) process.kill(-monitor.pid, 'SIGKILL');
  await worker?.stop('SIGKILL');
  await core?.close();
  await fake?.dispose();
  await group?.stop();
});

describe('Redis behind Sentinel, failing over mid-run', () => {
  it('settles every target of a fleet run once across a SENTINEL FAILOVER, and the worker takes new jobs from the new master', async () => {
    const env = { REDIS_SENTINELS: group.sentinels, REDIS_SENTINEL_NAME: group.name };
    const prefix = uniquePrefix('failover');
    // A run that stalls writes what it saw to a file; SNAPBOT_FAILOVER_DIAGNOSE=1 adds the
    // control plane's debug log and every command each data node executed (MONITOR, again
    // after each failover closes it) beside it.
    const diagnosis = join(tmpdir(), `snapbot-failover-${Date.now()}`);
    const diagnose = process.env.SNAPBOT_FAILOVER_DIAGNOSE === '1';
    if (diagnose) {
      for (const node of group.nodes) {
        const out = openSync(`${diagnosis}.monitor-${node.port}.log`, 'w');
        monitors.push(spawn('sh', ['-c', `while true; do redis-cli -p ${node.port} MONITOR; done`], { stdio: ['ignore', out, 'ignore'], detached: true }));
      }
    }
    const logger = diagnose ? createLogger('test', 'debug', pino.destination({ dest: `${diagnosis}.core.log`, sync: true })) : createLogger('test', 'silent');
    // Each snapshot takes a while, so that jobs are active when the master switches.
    fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 600 }]);
    worker = await startWorkerProcess({ redisUrl: '', prefix, hostId: 'kvm-fo', fake, env: { ...env, WORKER_CONCURRENCY: '2', LOG_LEVEL: diagnose ? 'debug' : 'info' } });
    core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redisUrlOf(env), prefix, logger, redisReconnect: 'forever' });
    const plan = await planFleet(core, { action: 'snapshot', target: 'fo-*', name: 'across-failover', requester: { id: ADMIN.id, userId: ADMIN.userId, displayName: 'ada' }, actor: ADMIN, origin: 'discord' });
    expect(plan.targets).toHaveLength(VMS.length);
    await confirmFleet(core, plan.id, ADMIN);

    // Switch once a few targets are done and others are running.
    let failover: { from: number; to: number; ms: number } | undefined;
    const switched = (async () => {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const run = await getFleetRun(core!, plan.id).catch(() => null);
        const states = [...(run?.targets.values() ?? [])].map((target) => target.state);
        if (states.filter((state) => state === 'done').length >= 3 && states.includes('running')) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const started = Date.now();
      const { from, to } = await group.failover();
      failover = { from, to, ms: Date.now() - started };
    })();

    const watched = watchFleetRun(core, plan.id, { pollMs: 200 });
    let summary;
    try {
      const stalled = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('stalled')), 110_000).unref());
      [summary] = await Promise.race([Promise.all([watched, switched]), stalled]);
    } catch (error) {
      const queue = core.queueFor('kvm-fo');
      const run = await getFleetRun(core, plan.id).catch(() => null);
      const jobs = await Promise.all(plan.targets.map(async (target) => `${target.index}:${await queue.getJobState(fleetJobId(plan.id, target.index)).catch((e) => String(e))}`));
      const dump = [
        `failover ${JSON.stringify(failover)} master now ${await group.masterPort().catch(() => -1)}`,
        `targets ${JSON.stringify([...(run?.targets ?? [])])}`,
        `jobs ${jobs.join(' ')}`,
        `counts ${JSON.stringify(await queue.getJobCounts().catch((e) => String(e)))}`,
        ...(await Promise.all(
          plan.targets
            .filter((target) => run?.targets.get(target.index)?.state !== 'done')
            .map(async (target) => {
              const id = fleetJobId(plan.id, target.index);
              const key = `${prefix}:host.kvm-fo:${id}`;
              return `job ${id}: ${JSON.stringify(await core!.redis.hgetall(key))} lock ${await core!.redis.get(`${key}:lock`)} wait ${await core!.redis.lpos(`${prefix}:host.kvm-fo:wait`, id)} active ${await core!.redis.lpos(`${prefix}:host.kvm-fo:active`, id)} completed ${await core!.redis.zscore(`${prefix}:host.kvm-fo:completed`, id)}`;
            }),
        )),
        ...(await Promise.all(group.nodes.map(async (node) => `node ${node.port}: ${await roleOf(node.port)}`))),
        `snapshots ${VMS.map((vm) => `${vm}:${fake.domain(vm).snapshots.length}`).join(' ')}`,
        worker.output(),
      ].join('\n');
      const file = `${diagnosis}.txt`;
      writeFileSync(file, dump);
      console.error(`stall dump in ${file}`);
      throw error;
    }
    console.info(`failover ${JSON.stringify(failover)}, run ${Math.round(summary.durationMs)} ms`);
    expect(failover!.to).not.toBe(failover!.from);
    expect(summary.counts).toMatchObject({ done: VMS.length, failed: 0, cancelled: 0 });
    for (const vm of VMS) {
      const snapshots = fake.domain(vm).snapshots;
      expect(snapshots.map((snapshot) => snapshot.name), vm).toEqual(['across-failover']);
      expect(splitJobMarker(snapshots[0]!.description).jobId).toMatch(new RegExp(`^fleet-${plan.id}-`));
    }
    // No job lost: every one of the run's jobs ends completed in its queue on the new master.
    // A job whose completion the old master took runs again (and finds its snapshot), so it may finish after its target.
    const queue = core.queueFor('kvm-fo');
    const states = await settledJobStates(queue, plan.targets.map((target) => fleetJobId(plan.id, target.index)));
    expect(states.filter((state) => state !== 'completed'), JSON.stringify(states)).toEqual([]);

    // The worker still consumes: a new job goes through the new master.
    fake.setFaults([]);
    const created = await runJob(core, { kind: 'create', host: 'kvm-fo', vm: 'fo-00', uuid: fake.domain('fo-00').uuid, name: 'after-failover', mode: 'disk-only', requestedBy: ADMIN.id }, { timeoutMs: 30_000 });
    expect(created.snapshot.name).toBe('after-failover');
    expect(await group.masterPort()).toBe(failover!.to);
  }, 240_000);
});

/** What a data node says it is (ROLE), for a stall report. */
async function roleOf(port: number): Promise<string> {
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    return JSON.stringify(await client.call('ROLE'));
  } catch (error) {
    return String(error);
  } finally {
    client.disconnect();
  }
}
