import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../bot/core/authorize.js';
import { SnapbotCore } from '../../bot/core/core.js';
import { confirmFleet, planFleet, watchFleetRun } from '../../bot/core/fleet/index.js';
import { redisUrlOf } from '../../shared/config.js';
import { splitJobMarker } from '../../shared/jobs.js';
import { createLogger } from '../../shared/logger.js';
import { redactRedisUrl } from '../../shared/redis.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { testAuthority } from '../helpers/authority.js';
import { parseJsonOutput, runSnapctl, type SpawnedProcess } from '../helpers/processes.js';
import { uniquePrefix } from '../helpers/redis.js';
import { startSentinelGroup, type SentinelGroup } from '../helpers/redis-sentinel.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

/**
 * Redis behind Sentinel (issue 12): one master, one replica, three Sentinels on loopback.
 * A worker process, the control plane and snapctl find the master through the Sentinels
 * (REDIS_SENTINELS, REDIS_SENTINEL_NAME). A failover in the middle of a fleet run:
 * redis-sentinel-failover.test.ts.
 */
let group: SentinelGroup;
let fake: FakeVirshHost;
let worker: SpawnedProcess | undefined;
let core: SnapbotCore | undefined;
const ADMIN: Actor = { id: 'discord:1001', userId: '1001', displayName: 'ada', roleIds: [], roleNames: [], isAdministrator: true };
const VMS = Array.from({ length: 16 }, (_, i) => `ha-${String(i).padStart(2, '0')}`);

beforeAll(async () => {
  group = await startSentinelGroup();
  fake = await FakeVirshHost.create();
  for (const vm of VMS) fake.addDomain({ name: vm });
}, 120_000);

afterAll(async () => {
  await worker?.stop('SIGKILL');
  await core?.close();
  await fake?.dispose();
  await group?.stop();
});

describe('Redis behind Sentinel', () => {
  it('names the Sentinels and the master in its connection string, without passwords in messages', () => {
    const url = redisUrlOf({ REDIS_SENTINELS: 'a:26379,b:26380', REDIS_SENTINEL_NAME: 'main', REDIS_URL: 'redis://:s3cret@ignored:6379/2', REDIS_SENTINEL_PASSWORD: 'sentinel-pw' });
    expect(url).toBe('redis-sentinel://:s3cret@a:26379,b:26380/main?db=2&sentinelPassword=sentinel-pw');
    expect(redactRedisUrl(url)).toBe('redis-sentinel://:***@a:26379,b:26380/main?db=2&sentinelPassword=***');
    expect(() => redisUrlOf({ REDIS_SENTINELS: 'a:26379' })).toThrow(/REDIS_SENTINEL_NAME/);
  });

  it('runs a fleet through the Sentinels: the worker, the control plane and snapctl all find the master by name', async () => {
    const env = { REDIS_SENTINELS: group.sentinels, REDIS_SENTINEL_NAME: group.name };
    const prefix = uniquePrefix('sentinel');
    worker = await startWorkerProcess({ redisUrl: '', prefix, hostId: 'kvm-ha', fake, env: { ...env, WORKER_CONCURRENCY: '2' } });
    core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redisUrlOf(env), prefix, logger: createLogger('test', 'silent'), redisReconnect: 'forever' });
    const plan = await planFleet(core, { action: 'snapshot', target: 'ha-*', name: 'through-sentinel', requester: { id: ADMIN.id, userId: ADMIN.userId, displayName: 'ada' }, actor: ADMIN, origin: 'discord' });
    expect(plan.targets).toHaveLength(VMS.length);
    await confirmFleet(core, plan.id, ADMIN);
    const summary = await watchFleetRun(core, plan.id, { pollMs: 200 });
    expect(summary.counts).toMatchObject({ done: VMS.length, failed: 0 });
    for (const vm of VMS) {
      const snapshots = fake.domain(vm).snapshots;
      expect(snapshots.map((snapshot) => snapshot.name)).toEqual(['through-sentinel']);
      expect(splitJobMarker(snapshots[0]!.description).jobId).toMatch(new RegExp(`^fleet-${plan.id}-`));
    }
    // The data is on the master the Sentinels name, and replicated.
    expect(await group.masterPort()).toBe(group.nodes[0]!.port);
    const hosts = parseJsonOutput(await runSnapctl(['hosts', '--json'], { ...env, SNAPBOT_PREFIX: prefix, REDIS_URL: '' }));
    expect(hosts).toMatchObject({ ok: true, hosts: [{ hostId: 'kvm-ha' }] });
  }, 120_000);
});
