import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SnapbotCore } from '../../bot/core/core.js';
import { listHosts, resolveTarget } from '../../bot/core/hosts.js';
import type { Heartbeat } from '../../shared/hosts.js';
import { createLogger } from '../../shared/logger.js';
import { registryKeys } from '../../shared/queues.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';

/**
 * Every create, info, revert and delete first reads the hosts' heartbeats to find the VM.
 * A long-running process reads them in one round trip: the set of host ids and the records
 * of the hosts it saw last time go in one pipeline, and only hosts new since cost a second.
 * Real Redis; the records are written as a worker writes them.
 */
let redis: TestRedis;
let core: SnapbotCore;
let keys: ReturnType<typeof registryKeys>;

beforeAll(async () => {
  redis = await startTestRedis();
  const prefix = uniquePrefix('host-records');
  keys = registryKeys(prefix);
  core = await SnapbotCore.connect({ redisUrl: redis.url, prefix, logger: createLogger('test', 'silent') });
});

afterAll(async () => {
  await core?.close();
  await redis?.stop();
});

function heartbeat(hostId: string, vms: string[]): Heartbeat {
  const now = new Date().toISOString();
  return {
    hostId,
    libvirtUri: 'qemu:///system',
    libvirtVersion: '9.0.0',
    qemuVersion: '7.2.0',
    capabilities: { externalRevert: false, externalDelete: true },
    vms: vms.map((name, index) => ({ name, uuid: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`, state: 'running', snapshots: [] })),
    inventoryAt: now,
    inventoryError: null,
    concurrency: 2,
    startedAt: now,
    lastSeen: now,
    workerVersion: '0.1.0',
  };
}

async function report(hostId: string, vms: string[], alive = true): Promise<void> {
  await core.redis.sadd(keys.hosts, hostId);
  await core.redis.set(keys.host(hostId), JSON.stringify(heartbeat(hostId, vms)));
  if (alive) await core.redis.set(keys.alive(hostId), '1', 'PX', 60_000);
  else await core.redis.del(keys.alive(hostId));
}

/** Round trips one call makes: pipelines sent, and the reads it could send on their own. */
async function roundTrips<T>(work: () => Promise<T>): Promise<{ result: T; trips: number }> {
  const spies = [vi.spyOn(core.redis, 'pipeline'), vi.spyOn(core.redis, 'smembers'), vi.spyOn(core.redis, 'get'), vi.spyOn(core.redis, 'exists'), vi.spyOn(core.redis, 'mget')];
  try {
    const result = await work();
    return { result, trips: spies.reduce((total, spy) => total + spy.mock.calls.length, 0) };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}

describe('reading the hosts before a job', () => {
  it('takes one round trip once the hosts are known, and still sees hosts that joined, left or went offline', async () => {
    await report('kvm-a', ['web-01']);
    await report('kvm-b', ['db-01']);

    // The first read does not know which hosts there are: the set, then their records.
    const first = await roundTrips(() => listHosts(core));
    expect(first.result.map((host) => [host.hostId, host.online])).toEqual([['kvm-a', true], ['kvm-b', true]]);
    expect(first.trips).toBe(2);

    // Known hosts: one round trip, the set and the records together.
    const second = await roundTrips(() => resolveTarget(core, 'db-01', undefined));
    expect(second.result.host.hostId).toBe('kvm-b');
    expect(second.trips).toBe(1);

    // A host that joined since costs a second round trip for its record, once.
    await report('kvm-c', ['app-01']);
    const joined = await roundTrips(() => resolveTarget(core, 'app-01', undefined));
    expect(joined.result.host.hostId).toBe('kvm-c');
    expect(joined.trips).toBe(2);
    expect((await roundTrips(() => listHosts(core))).trips).toBe(1);

    // Offline and left hosts are seen in the same one round trip.
    await report('kvm-a', ['web-01'], false);
    await core.redis.srem(keys.hosts, 'kvm-b');
    const changed = await roundTrips(() => listHosts(core));
    expect(changed.trips).toBe(1);
    expect(changed.result.map((host) => [host.hostId, host.online])).toEqual([['kvm-a', false], ['kvm-c', true]]);
    await expect(resolveTarget(core, 'web-01', undefined)).rejects.toMatchObject({ code: 'HOST_OFFLINE' });
    await expect(resolveTarget(core, 'db-01', undefined)).rejects.toMatchObject({ code: 'DOMAIN_NOT_FOUND' });
  });
});
