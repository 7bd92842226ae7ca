import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapbotCore } from '../../bot/core/core.js';
import { readHostsOverview, type HostsOverview } from '../../bot/core/hosts.js';
import { renderHostsReply } from '../../bot/discord/render/render-hosts.js';
import type { HostOverview } from '../../shared/hosts.js';
import { createLogger } from '../../shared/logger.js';
import { registryKeys } from '../../shared/queues.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { parseJsonOutput, runSnapctl, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import { testAuthority } from '../helpers/authority.js';

/**
 * The fleet view of `snapctl hosts` and `/hosts`: real Redis, real worker processes on
 * fake virsh hosts, and the real snapctl. kvm-a stays up (its libvirt goes down and
 * slows down on the way); kvm-b's worker is stopped while jobs wait on its queue.
 */
// Short, so staleness shows in seconds; long enough that a busy test machine does not make kvm-a stale by accident.
const INVENTORY_INTERVAL_MS = 1000;

let redis: TestRedis;
let fakeA: FakeVirshHost;
let fakeB: FakeVirshHost;
let workerA: SpawnedProcess;
let prefix: string;
let env: Record<string, string>;
let core: SnapbotCore;

const startA = () =>
  startWorkerProcess({ redisUrl: redis.url, prefix, hostId: 'kvm-a', fake: fakeA, env: { INVENTORY_INTERVAL_MS: String(INVENTORY_INTERVAL_MS) } });

async function snapctlHostsJson(): Promise<{ summary: Record<string, number>; hosts: HostOverview[] }> {
  const result = await runSnapctl(['hosts', '--json'], env);
  expect(result.code).toBe(0);
  const body = parseJsonOutput(result);
  expect(body.ok).toBe(true);
  return body as unknown as { summary: Record<string, number>; hosts: HostOverview[] };
}

async function snapctlHostsText(): Promise<string> {
  const result = await runSnapctl(['hosts'], env);
  expect(result.code).toBe(0);
  return result.stdout;
}

/** Polls the fleet view (in process, cheaper than spawning snapctl) until `check` holds for the host. */
async function waitForHost(hostId: string, check: (host: HostOverview) => boolean, timeoutMs = 15_000): Promise<HostOverview> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const host = (await readHostsOverview(core)).hosts.find((candidate) => candidate.hostId === hostId);
    if (host && check(host)) return host;
    if (Date.now() > deadline) throw new Error(`host ${hostId} never matched: ${JSON.stringify(host)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  redis = await startTestRedis();
  fakeA = await FakeVirshHost.create({ libvirtVersion: '9.0.0', qemuVersion: '7.2.0' });
  fakeA.addDomain({ name: 'web-01', state: 'running' });
  fakeB = await FakeVirshHost.create({ libvirtVersion: '10.0.0', qemuVersion: '8.2.2' });
  fakeB.addDomain({ name: 'db-01', state: 'running' });
  prefix = uniquePrefix('hosts-view');
  // snapctl only reads here (hosts, info): straight from Redis, no control process or policy.
  env = { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix };
  core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix, logger: createLogger('test', 'silent') });
  workerA = await startA();
  // kvm-b reports, then stops; its record stays. (A SIGTERM that lands right after
  // "worker ready" can beat the worker's signal handlers, so wait for the view to agree.)
  const workerB = await startWorkerProcess({ redisUrl: redis.url, prefix, hostId: 'kvm-b', fake: fakeB });
  await workerB.stop();
  await waitForHost('kvm-b', (host) => host.state === 'offline');
}, 120_000);

afterAll(async () => {
  await workerA?.stop();
  await core?.close();
  await fakeA?.dispose();
  await fakeB?.dispose();
  await redis?.stop();
});

describe('a healthy host', () => {
  it('is online with its versions, capabilities, VM count, inventory interval, an empty queue and no last error', async () => {
    const { summary, hosts } = await snapctlHostsJson();
    expect(hosts.map((host) => host.hostId)).toEqual(['kvm-a', 'kvm-b']);
    expect(hosts[0]).toMatchObject({
      hostId: 'kvm-a',
      online: true,
      state: 'online',
      staleReason: null,
      libvirtVersion: '9.0.0',
      qemuVersion: '7.2.0',
      capabilities: { externalRevert: false, externalDelete: true },
      inventoryIntervalMs: INVENTORY_INTERVAL_MS,
      lastError: null,
      queue: { waiting: 0, delayed: 0, active: 0 },
    });
    expect(hosts[0]!.vms).toHaveLength(1);
    expect(summary).toEqual({ total: 2, online: 1, stale: 0, offline: 1, queued: 0, running: 0 });
  });
});

describe('a stale host', () => {
  it('is stale while libvirt is down, with the reason, and online again once libvirt is back', async () => {
    fakeA.setDaemonDown(true);
    try {
      await waitForHost('kvm-a', (host) => host.state === 'stale');
      const { hosts, summary } = await snapctlHostsJson();
      const host = hosts.find((candidate) => candidate.hostId === 'kvm-a')!;
      // The worker still takes jobs: online, but what it says about libvirt is not current.
      expect(host).toMatchObject({ online: true, state: 'stale' });
      expect(host.staleReason).toMatch(/^inventory read failed: .*failed to connect to the hypervisor/);
      expect(summary).toMatchObject({ online: 0, stale: 1, offline: 1 });
      const text = await snapctlHostsText();
      expect(text).toMatch(/^kvm-a\s+stale\s/m);
      expect(text).toMatch(/^kvm-a is stale: inventory read failed: .*failed to connect to the hypervisor/m);
    } finally {
      fakeA.setDaemonDown(false);
    }
    await waitForHost('kvm-a', (host) => host.state === 'online');
  });

  it('is stale while its inventory reads fall more than three intervals behind', async () => {
    fakeA.setFaults([{ match: { subcommand: 'list' }, latencyMs: 4 * INVENTORY_INTERVAL_MS }]);
    try {
      const host = await waitForHost('kvm-a', (candidate) => candidate.state === 'stale');
      expect(host.staleReason).toMatch(/^inventory is [\d.]+ s old \(read every 1 s\)$/);
    } finally {
      fakeA.setFaults([]);
    }
    await waitForHost('kvm-a', (host) => host.state === 'online');
  });
});

describe('the last error', () => {
  it("shows the last failed job's code, message and time, in snapctl and in /hosts", async () => {
    const before = Date.now();
    const failed = await runSnapctl(['info', '--vm', 'web-01', '--name', 'no-such-snapshot', '--json'], env);
    expect(parseJsonOutput(failed)).toMatchObject({ ok: false, code: 'SNAPSHOT_NOT_FOUND' });

    const host = await waitForHost('kvm-a', (candidate) => candidate.lastError?.code === 'SNAPSHOT_NOT_FOUND');
    expect(host.lastError).toMatchObject({ kind: 'info', vm: 'web-01', jobId: expect.any(String) });
    expect(host.lastError!.message).toContain('no-such-snapshot');
    expect(Date.parse(host.lastError!.at)).toBeGreaterThanOrEqual(before - 1000);

    const text = await snapctlHostsText();
    expect(text).toMatch(/^kvm-a\s+online\s.*SNAPSHOT_NOT_FOUND \d+s ago$/m);
    expect(text).toMatch(/^kvm-a last error \d+s ago: SNAPSHOT_NOT_FOUND \(info web-01 job \S+\): .*no-such-snapshot/m);

    const { embeds } = renderHostsReply(await readHostsOverview(core));
    expect(embeds[0]!.description).toMatch(/^kvm-a\s+online\s.*SNAPSHOT_NOT_FOUND \d+s$/m);
    // Outside the table the code is text like any other, escaped for Discord (which drops the backslashes).
    expect(embeds[0]!.description).toMatch(/^✖ \*\*kvm-a\*\* SNAPSHOT\\_NOT\\_FOUND <t:\d+:R> \(info web-01\): .*no-such-snapshot/m);
  });

  it('survives a restart of the worker', async () => {
    const { lastError } = await waitForHost('kvm-a', (candidate) => candidate.lastError !== null);
    await workerA.stop();
    workerA = await startA();
    const host = await waitForHost('kvm-a', (candidate) => candidate.online);
    expect(host.lastError).toEqual(lastError);
  });
});

describe('queue depth', () => {
  it('counts the jobs waiting on a host whose worker is stopped', async () => {
    const queue = core.queueFor('kvm-b');
    const job = (name: string) => ({ kind: 'create', host: 'kvm-b', vm: 'db-01', name, mode: 'disk-only', requestedBy: 'test:hosts-view' });
    await queue.add('create', job('q-1'));
    await queue.add('create', job('q-2'), { priority: 1 });
    await queue.add('create', job('q-3'), { delay: 3_600_000 });
    try {
      const { hosts, summary } = await snapctlHostsJson();
      expect(hosts.find((host) => host.hostId === 'kvm-b')).toMatchObject({
        online: false,
        state: 'offline',
        libvirtVersion: '10.0.0',
        capabilities: { externalRevert: true, externalDelete: true },
        queue: { waiting: 2, delayed: 1, active: 0 },
      });
      expect(summary).toMatchObject({ offline: 1, queued: 3, running: 0 });

      const text = await snapctlHostsText();
      expect(text).toMatch(/^kvm-b\s+offline\s+\S+ ago\s+0\.1\.0\s+10\.0\.0\s+8\.2\.2\s+yes\s+yes\s+1\s+3\s+0\s+-$/m);
      expect(text).toContain('2 host(s): 1 online, 0 stale, 1 offline; 3 job(s) queued, 0 running');

      const { embeds } = renderHostsReply(await readHostsOverview(core));
      expect(embeds[0]!.description).toMatch(/^\*\*1 online\*\* · 0 stale · 1 offline · 3 queued · 0 running$/m);
      expect(embeds[0]!.description).toMatch(/^kvm-b\s+offline\s+10\.0\.0\s+8\.2\.2\s+r\+d\s+1\s+3\s+0\s+-$/m);
    } finally {
      await queue.obliterate({ force: true });
    }
  });
});

describe('many hosts', () => {
  let fleetCore: SnapbotCore;
  let fleetPrefix: string;
  const ids = Array.from({ length: 30 }, (_, index) => `node-${String(index).padStart(2, '0')}`);

  beforeAll(async () => {
    fleetPrefix = uniquePrefix('hosts-many');
    fleetCore = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix: fleetPrefix, logger: createLogger('test', 'silent') });
    const keys = registryKeys(fleetPrefix);
    const now = new Date().toISOString();
    const write = redis.client.multi();
    ids.forEach((id, index) => {
      // Heartbeats as a 0.1.0 worker writes them (no inventory interval, no last error): they must still read.
      const heartbeat = {
        hostId: id, libvirtUri: 'qemu:///system', libvirtVersion: '9.0.0', qemuVersion: '7.2.0',
        capabilities: { externalRevert: false, externalDelete: true }, vms: [], inventoryAt: now,
        inventoryError: index % 10 === 0 ? 'failed to connect to the hypervisor' : null,
        concurrency: 4, startedAt: now, lastSeen: now, workerVersion: '0.1.0',
      }; // prettier-ignore
      write.sadd(keys.hosts, id).set(keys.host(id), JSON.stringify(heartbeat));
      if (index % 3 !== 2) write.set(keys.alive(id), now, 'PX', 600_000);
    });
    await write.exec();
    await Promise.all(ids.map((id, index) => fleetCore.queueFor(id).add('create', { vm: 'x' }, { delay: index % 2 === 0 ? 0 : 3_600_000 })));
  });

  afterAll(async () => {
    await fleetCore?.close();
  });

  it('reads 30 hosts with their queues, and /hosts keeps them in one embed', async () => {
    const overview: HostsOverview = await readHostsOverview(fleetCore);
    expect(overview.hosts.map((host) => host.hostId)).toEqual(ids);
    for (const [index, host] of overview.hosts.entries()) {
      expect(host.queue).toEqual(index % 2 === 0 ? { waiting: 1, delayed: 0, active: 0 } : { waiting: 0, delayed: 1, active: 0 });
      expect(host.inventoryIntervalMs).toBeUndefined();
    }
    expect(overview.summary).toEqual({ total: 30, online: 18, stale: 2, offline: 10, queued: 30, running: 0 });

    const { embeds, files } = renderHostsReply(overview);
    expect(embeds[0]!.description!.length).toBeLessThanOrEqual(4096);
    expect(embeds[0]!.description!.split('\n').filter((line) => line.startsWith('node-'))).toHaveLength(30);
    expect(files).toEqual([]);
  });
});
