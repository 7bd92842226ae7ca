import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../bot/core/authorize.js';
import { SnapbotCore } from '../../bot/core/core.js';
import {
  awaitFleetDecision,
  cancelFleet,
  confirmFleet,
  decideFleet,
  getFleetRun,
  planFleet,
  planRetryOfFailed,
  watchFleetRun,
  type FleetRequest,
  type FleetSummary,
} from '../../bot/core/fleet/index.js';
import { listHosts } from '../../bot/core/hosts.js';
import { createSnapshot } from '../../bot/core/snapshots.js';
import { fleetJobId, fleetKeys } from '../../shared/fleet.js';
import { createLogger } from '../../shared/logger.js';
import { loadPolicy } from '../../shared/policy.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { parseJsonOutput, runSnapctl, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import { testAuthority } from '../helpers/authority.js';
import { startControlProcess } from '../helpers/control-process.js';

/**
 * Fleet runs across several hosts: one worker process per HOST_ID, each on its own fake
 * virsh, real Redis. The preview's numbers, the fan-out and its limits, cancel, a host
 * lost mid-run, a worker restarted mid-run, retry of failures, approvals for deletes,
 * and the per-VM lock shared with single operations.
 */
let redis: TestRedis;
const workers: SpawnedProcess[] = [];
/** Control processes (snapctl's changes go through one, under its policy), one per test that uses snapctl. */
const controls: SpawnedProcess[] = [];
const cores: SnapbotCore[] = [];
const policyDir = mkdtempSync(join(tmpdir(), 'snapbot-fleet-policy-'));

beforeAll(async () => {
  redis = await startTestRedis();
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.stop('SIGKILL')));
  await Promise.all(controls.splice(0).map((control) => control.stop()));
  await Promise.all(cores.splice(0).map((core) => core.close()));
});

afterAll(async () => {
  await redis?.stop();
});

const ADMIN: Actor = { id: 'discord:1001', userId: '1001', displayName: 'ada', roleIds: [], roleNames: [], isAdministrator: true };
const SECOND_ADMIN: Actor = { id: 'discord:1002', userId: '1002', displayName: 'bob', roleIds: [], roleNames: [], isAdministrator: true };
/** The web team's role id (the policy names roles by id). */
const WEB_TEAM = '700000000000000001';
const requesterOf = (actor: Actor) => ({ id: actor.id, userId: actor.userId, displayName: actor.displayName });

function writePolicy(name: string, fleet: Record<string, unknown>, approvals = 'approvals: []'): string {
  const path = join(policyDir, `${name}.yaml`);
  writeFileSync(
    path,
    [
      'rules:',
      '  - role: "@administrators"',
      '    actions: [create, list, info, revert, delete, hosts, audit]',
      `  - role: "${WEB_TEAM}"`,
      '    actions: [create, list]',
      '    vms: ["web-*"]',
      approvals,
      `fleet: ${JSON.stringify(fleet)}`,
      // snapctl in this checkout (the tests') is the local administrator.
      'localAdministrator: true',
      '',
    ].join('\n'),
  );
  return path;
}

interface Fleet {
  prefix: string;
  core: SnapbotCore;
  hosts: Map<string, FakeVirshHost>;
  /** snapctl's environment: Redis and prefix only (the policy is the control process's). */
  env: Record<string, string>;
  startHost(hostId: string, env?: Record<string, string>): Promise<SpawnedProcess>;
  /** The control process, with this fleet's policy, for snapctl's changes. */
  startControl(): Promise<SpawnedProcess>;
}

async function fleetOf(label: string, layout: Record<string, string[]>, policyPath: string): Promise<Fleet> {
  const prefix = uniquePrefix(label);
  const hosts = new Map<string, FakeVirshHost>();
  for (const [hostId, vms] of Object.entries(layout)) {
    const fake = await FakeVirshHost.create();
    for (const vm of vms) fake.addDomain({ name: vm });
    hosts.set(hostId, fake);
  }
  const core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix, logger: createLogger('test', 'silent'), policy: loadPolicy(policyPath) });
  cores.push(core);
  // Roomy timings so a loaded machine does not make a host look offline or a job stalled;
  // the tests about lost hosts and restarts shorten them.
  const startHost = async (hostId: string, env: Record<string, string> = {}) => {
    const worker = await startWorkerProcess({
      redisUrl: redis.url,
      prefix,
      hostId,
      fake: hosts.get(hostId)!,
      env: { WORKER_CONCURRENCY: '4', HEARTBEAT_TTL_MS: '6000', JOB_LOCK_MS: '15000', JOB_STALLED_CHECK_MS: '5000', ...env },
    });
    workers.push(worker);
    return worker;
  };
  const env = { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix };
  const startControl = async () => {
    const control = await startControlProcess({ ...env, SNAPBOT_POLICY: policyPath });
    controls.push(control);
    return control;
  };
  return { prefix, core, hosts, env, startHost, startControl };
}

async function until<T>(probe: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const snapshotNames = (fake: FakeVirshHost, vm: string) => fake.domain(vm).snapshots.map((snapshot) => snapshot.name);
const createCalls = (fake: FakeVirshHost) => fake.calls().filter((call) => call.argv.includes('snapshot-create-as'));

function request(overrides: Partial<FleetRequest>): FleetRequest {
  return { action: 'snapshot', target: 'all', requester: requesterOf(ADMIN), actor: ADMIN, origin: 'discord', ...overrides };
}

describe('fleet preview', () => {
  it('counts targets per host, names and excludes offline hosts, skips VMs that already hold the name', async () => {
    const fleet = await fleetOf('preview', { 'kvm-a': ['web-01', 'web-02', 'db-01'], 'kvm-b': ['web-03', 'web-canary', 'db-02'], 'kvm-c': ['web-04'] }, writePolicy('preview', {}));
    await fleet.startHost('kvm-a');
    await fleet.startHost('kvm-b');
    const c = await fleet.startHost('kvm-c');
    await c.stop('SIGTERM'); // known to snapbot, offline now
    await fleet.startControl();
    await createSnapshot(fleet.core, { vm: 'web-02', name: 'pre-x', requestedBy: 'test' }, { timeoutMs: 20_000 });
    // The worker publishes web-02's new snapshot with its next heartbeat.
    await until(async () => (await listHosts(fleet.core)).some((host) => host.vms.some((vm) => vm.name === 'web-02' && vm.snapshots.length > 0)));

    const { code, stdout } = await runSnapctl(['fleet', 'snapshot', '--target', 'web-* !web-canary', '--name', 'pre-x', '--json'], fleet.env);
    expect(code).toBe(0);
    const preview = JSON.parse(stdout) as { ok: boolean; started: boolean; preview: Awaited<ReturnType<typeof planFleet>> };
    expect(preview).toMatchObject({ ok: true, started: false });
    expect(preview.preview.targets.map((target) => `${target.vm}@${target.host}`)).toEqual(['web-01@kvm-a', 'web-03@kvm-b']);
    expect(preview.preview.skipped.existing).toEqual([{ host: 'kvm-a', vm: 'web-02', snapshot: 'pre-x' }]);
    expect(preview.preview.skipped.offlineHosts).toMatchObject([{ hostId: 'kvm-c', vms: 1 }]);
    expect(preview.preview.approval).toBeNull();

    const text = await runSnapctl(['fleet', 'snapshot', '--target', 'web-* !web-canary', '--name', 'pre-x'], fleet.env);
    expect(text.stdout).toMatch(/kvm-a\s+1\s+web-01/);
    expect(text.stdout).toMatch(/kvm-b\s+1\s+web-03/);
    expect(text.stdout).toContain('excluded: host kvm-c is offline');
    expect(text.stdout).toContain('1 VM(s) already hold that name: web-02@kvm-a');
    expect(text.stdout).toContain('Nothing was started');
    // A preview queues nothing.
    expect(createCalls(fleet.hosts.get('kvm-a')!)).toHaveLength(1);
    expect(createCalls(fleet.hosts.get('kvm-b')!)).toHaveLength(0);
  });

  it('leaves out VMs the member may not act on, and refuses a typo in the template', async () => {
    const fleet = await fleetOf('forbidden', { 'kvm-a': ['web-01', 'db-01'] }, writePolicy('forbidden', {}));
    await fleet.startHost('kvm-a');
    const webber: Actor = { id: 'discord:2001', userId: '2001', displayName: 'wes', roleIds: [WEB_TEAM], isAdministrator: false };
    const plan = await planFleet(fleet.core, request({ actor: webber, requester: requesterOf(webber), name: 'x-{date}' }));
    expect(plan.targets.map((target) => target.vm)).toEqual(['web-01']);
    expect(plan.skipped.forbidden).toEqual([{ host: 'kvm-a', vm: 'db-01' }]);
    await expect(planFleet(fleet.core, request({ name: 'x-{dtae}' }))).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(planFleet(fleet.core, request({ target: '!web-01' }))).rejects.toMatchObject({ code: 'VALIDATION' });
  });
});

describe('fleet runs', () => {
  it('snapshots every VM on every host through snapctl --yes, with rendered names and one report', async () => {
    const fleet = await fleetOf('run', { 'kvm-a': ['web-01', 'web-02'], 'kvm-b': ['web-01', 'api-01'], 'kvm-c': ['web-09'] }, writePolicy('run', {}));
    for (const host of fleet.hosts.keys()) await fleet.startHost(host);
    await fleet.startControl();
    const { code, stdout, stderr } = await runSnapctl(['fleet', 'snapshot', '--target', 'all', '--name', 'pre-{vm}-{host}', '--yes', '--json'], fleet.env);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as { ok: boolean; counts: Record<string, number>; total: number; targets: Array<{ state: string }> };
    expect(report).toMatchObject({ ok: true, total: 5, counts: { done: 5, failed: 0 } });
    // The same VM name on two hosts is two targets, each snapshotted on its own host.
    expect(snapshotNames(fleet.hosts.get('kvm-a')!, 'web-01')).toEqual(['pre-web-01-kvm-a']);
    expect(snapshotNames(fleet.hosts.get('kvm-b')!, 'web-01')).toEqual(['pre-web-01-kvm-b']);
    expect(snapshotNames(fleet.hosts.get('kvm-c')!, 'web-09')).toEqual(['pre-web-09-kvm-c']);
  });

  it('keeps to the per-host and global limits', async () => {
    const layout = { 'kvm-a': ['a1', 'a2', 'a3', 'a4', 'a5'], 'kvm-b': ['b1', 'b2', 'b3', 'b4', 'b5'], 'kvm-c': ['c1', 'c2', 'c3', 'c4', 'c5'] };
    const fleet = await fleetOf('limits', layout, writePolicy('limits', { perHost: 2, maxConcurrent: 3 }));
    for (const [host, fake] of fleet.hosts) {
      fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 300 }]);
      await fleet.startHost(host);
    }
    const plan = await planFleet(fleet.core, request({ name: 'limited' }));
    await confirmFleet(fleet.core, plan.id, ADMIN);
    let maxOverall = 0;
    const maxPerHost = new Map<string, number>();
    const final = await watchFleetRun(fleet.core, plan.id, {
      pollMs: 20,
      onUpdate: (summary) => {
        maxOverall = Math.max(maxOverall, summary.counts.running);
        for (const host of summary.hosts) maxPerHost.set(host.hostId, Math.max(maxPerHost.get(host.hostId) ?? 0, host.counts.running));
      },
    });
    expect(final.counts.done).toBe(15);
    expect(maxOverall).toBeGreaterThan(1);
    expect(maxOverall).toBeLessThanOrEqual(3);
    for (const value of maxPerHost.values()) expect(value).toBeLessThanOrEqual(2);
    // Three workers start and read their inventories first: on a loaded 2-core machine that alone took 13–44 s.
  }, 150_000);

  it('cancel: what has not started never runs, what ran is reported', async () => {
    const fleet = await fleetOf('cancel', { 'kvm-a': ['a1', 'a2', 'a3', 'a4'], 'kvm-b': ['b1', 'b2', 'b3', 'b4'] }, writePolicy('cancel', { perHost: 1 }));
    for (const [host, fake] of fleet.hosts) {
      fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 1500 }]);
      await fleet.startHost(host);
    }
    const plan = await planFleet(fleet.core, request({ name: 'cancel-me' }));
    await confirmFleet(fleet.core, plan.id, ADMIN);
    const watching = watchFleetRun(fleet.core, plan.id, { pollMs: 50 });
    await until(async () => (await getFleetRun(fleet.core, plan.id))!.targets.size > 0 && [...(await getFleetRun(fleet.core, plan.id))!.targets.values()].some((state) => state.state === 'running'));
    const cancelled = await cancelFleet(fleet.core, plan.id, { id: ADMIN.id, actor: ADMIN });
    expect(cancelled.status).toBe('cancelling');
    const final = await watching;
    expect(final.status).toBe('finished');
    expect(final.cancelledBy).toBe(ADMIN.id);
    expect(final.counts.done + final.counts.cancelled).toBe(8);
    expect(final.counts.cancelled).toBeGreaterThanOrEqual(4);
    // Give any straggler a chance to (wrongly) run, then count what virsh was asked to do.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const created = [...fleet.hosts.values()].reduce((sum, fake) => sum + createCalls(fake).length, 0);
    expect(created).toBe(final.counts.done);
    for (const target of final.targets.filter((entry) => entry.state.state === 'cancelled')) {
      expect(snapshotNames(fleet.hosts.get(target.host)!, target.vm)).toEqual([]);
      // Taken off the queue, or (when a worker had already fetched it) failed with CANCELLED.
      const job = await fleet.core.queueFor(target.host).getJob(fleetJobId(plan.id, target.index));
      if (job) expect([await job.getState(), job.failedReason]).toEqual(['failed', expect.stringMatching(/^CANCELLED: /)]);
    }
  });

  it('a host lost mid-run is reported within bounded time and given up; the others finish', async () => {
    const fleet = await fleetOf('lost', { 'kvm-a': ['a1', 'a2'], 'kvm-b': ['b1', 'b2', 'b3'] }, writePolicy('lost', { perHost: 1, hostLostAfterSeconds: 2 }));
    await fleet.startHost('kvm-a');
    const b = await fleet.startHost('kvm-b', { HEARTBEAT_TTL_MS: '1500' });
    fleet.hosts.get('kvm-b')!.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 4000 }]);
    const plan = await planFleet(fleet.core, request({ name: 'lost' }));
    await confirmFleet(fleet.core, plan.id, ADMIN);
    const updates: FleetSummary[] = [];
    const watching = watchFleetRun(fleet.core, plan.id, { pollMs: 100, onUpdate: (summary) => updates.push(summary) });
    await until(async () => createCalls(fleet.hosts.get('kvm-b')!).length > 0);
    const killedAt = Date.now();
    await b.stop('SIGKILL');
    const final = await watching;
    // kvm-b's HEARTBEAT_TTL_MS (1.5 s) to notice, hostLostAfterSeconds (2 s) to give up, plus polling.
    const lostSeen = updates.find((summary) => summary.counts.lost > 0);
    expect(lostSeen).toBeDefined();
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expect(final.hosts.find((host) => host.hostId === 'kvm-a')!.counts.done).toBe(2);
    const onB = final.targets.filter((target) => target.host === 'kvm-b');
    expect(onB.map((target) => target.state.state)).toEqual(['failed', 'failed', 'failed']);
    for (const target of onB) expect(target.state).toMatchObject({ code: 'HOST_OFFLINE' });
    expect(final.failures[0]).toMatchObject({ host: 'kvm-b' });

    // The host comes back: what was given up stays undone (no surprise snapshots later).
    fleet.hosts.get('kvm-b')!.setFaults([]);
    await fleet.startHost('kvm-b', { JOB_LOCK_MS: '2000', JOB_STALLED_CHECK_MS: '1000' });
    await new Promise((resolve) => setTimeout(resolve, 3500));
    const creates = createCalls(fleet.hosts.get('kvm-b')!);
    expect(creates).toHaveLength(1); // only the one that was running when the worker died
  });

  it('a worker restarted mid-run picks up where it was, without duplicates', async () => {
    const fleet = await fleetOf('restart', { 'kvm-a': ['a1', 'a2', 'a3'] }, writePolicy('restart', { perHost: 1, hostLostAfterSeconds: 60 }));
    // A short job lock, so the job the killed worker held is handed out again quickly.
    const quickStall = { JOB_LOCK_MS: '2000', JOB_STALLED_CHECK_MS: '1000' };
    const worker = await fleet.startHost('kvm-a', quickStall);
    const fake = fleet.hosts.get('kvm-a')!;
    fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 800 }]);
    const plan = await planFleet(fleet.core, request({ name: 'resume' }));
    await confirmFleet(fleet.core, plan.id, ADMIN);
    const watching = watchFleetRun(fleet.core, plan.id, { pollMs: 100 });
    await until(async () => createCalls(fake).length > 0);
    await worker.stop('SIGKILL');
    await fleet.startHost('kvm-a', quickStall);
    const final = await watching;
    expect(final.counts.done).toBe(3);
    for (const vm of ['a1', 'a2', 'a3']) expect(snapshotNames(fake, vm)).toEqual(['resume']);
  });

  it('a target whose workers die three times while its job is active is settled from the failed job: done, as its snapshot is on the VM', async () => {
    const fleet = await fleetOf('stall-limit', { 'kvm-a': ['a1'] }, writePolicy('stall-limit', { hostLostAfterSeconds: 60 }));
    const quickStall = { JOB_LOCK_MS: '2000', JOB_STALLED_CHECK_MS: '1000' };
    const fake = fleet.hosts.get('kvm-a')!;
    // The create succeeds; each run then dies reading the snapshot back (the first run
    // right after making it, the re-runs while looking for it): three deaths, past
    // maxStalledCount (2), so BullMQ fails the job without running it a fourth time.
    fake.setFaults([{ match: { subcommand: 'snapshot-dumpxml' }, killParent: true, times: 3 }]);
    let worker = await fleet.startHost('kvm-a', quickStall);
    const plan = await planFleet(fleet.core, request({ name: 'stalled' }));
    await confirmFleet(fleet.core, plan.id, ADMIN);
    const watching = watchFleetRun(fleet.core, plan.id, { pollMs: 100 });
    for (let death = 1; death <= 3; death += 1) {
      const dying = worker;
      await until(async () => dying.child.exitCode !== null || dying.child.signalCode !== null, 30_000);
      worker = await fleet.startHost('kvm-a', quickStall);
    }
    const final = await watching;
    const job = await fleet.core.queueFor('kvm-a').getJob(fleetJobId(plan.id, 0));
    expect(job?.failedReason).toBe('job stalled more than allowable limit');
    expect(final.counts).toMatchObject({ done: 1, failed: 0 });
    expect(final.targets[0]!.state).toMatchObject({ state: 'done', note: expect.stringMatching(/worker died before it could report; found on the VM/) });
    expect(createCalls(fake)).toHaveLength(1);
    expect(snapshotNames(fake, 'a1')).toEqual(['stalled']);
  }, 90_000);

  it('a re-run whose earlier run finished its target completes as recovered, not as failed', async () => {
    const fleet = await fleetOf('rerun-done', { 'kvm-a': ['a1'] }, writePolicy('rerun-done', { hostLostAfterSeconds: 60 }));
    const quickStall = { JOB_LOCK_MS: '2000', JOB_STALLED_CHECK_MS: '1000' };
    const fake = fleet.hosts.get('kvm-a')!;
    fake.setFaults([{ match: { subcommand: 'snapshot-dumpxml' }, killParent: true, times: 1 }]);
    const worker = await fleet.startHost('kvm-a', quickStall);
    const plan = await planFleet(fleet.core, request({ name: 'finished' }));
    await confirmFleet(fleet.core, plan.id, ADMIN);
    await until(async () => worker.child.exitCode !== null || worker.child.signalCode !== null, 30_000);
    // The window this stands for: the dead run had recorded its target done (FleetGate.markDone)
    // and died before BullMQ heard that the job completed. Written here as markDone writes it.
    const keys = fleetKeys(fleet.prefix, plan.id);
    await fleet.core.redis.hset(keys.targets, '0', JSON.stringify({ state: 'done', at: Date.now(), durationMs: 5, note: null }));
    await fleet.startHost('kvm-a', quickStall);
    const queue = fleet.core.queueFor('kvm-a');
    await until(async () => (await queue.getJobState(fleetJobId(plan.id, 0))) === 'completed', 30_000);
    const job = await queue.getJob(fleetJobId(plan.id, 0));
    expect(job?.returnvalue).toMatchObject({ kind: 'create', recovered: true, snapshot: { name: 'finished' } });
    expect(createCalls(fake)).toHaveLength(1);
    const final = await watchFleetRun(fleet.core, plan.id, { pollMs: 100 });
    expect(final.counts).toMatchObject({ done: 1, failed: 0 });
  }, 90_000);

  it('the watcher settles a target whose job vanished from its queue, saying so', async () => {
    const fleet = await fleetOf('vanished', { 'kvm-a': ['a1', 'a2'] }, writePolicy('vanished', { hostLostAfterSeconds: 60 }));
    const quickStall = { JOB_LOCK_MS: '2000', JOB_STALLED_CHECK_MS: '1000' };
    const fake = fleet.hosts.get('kvm-a')!;
    fake.setFaults([{ match: { subcommand: 'snapshot-create-as', domain: 'a2' }, latencyMs: 20_000, times: 1 }]);
    const worker = await fleet.startHost('kvm-a', quickStall);
    const plan = await planFleet(fleet.core, request({ name: 'vanish' }));
    await confirmFleet(fleet.core, plan.id, ADMIN);
    const a2 = plan.targets.find((target) => target.vm === 'a2')!;
    await until(async () => createCalls(fake).some((call) => call.argv.includes(`--domain=${fake.domain('a2').uuid}`)));
    await worker.stop('SIGKILL');
    // Someone cleans the queue (queue.remove, obliterate, a Redis DEL) once the dead worker's lock lapsed.
    const queue = fleet.core.queueFor('kvm-a');
    await until(async () => (await queue.remove(fleetJobId(plan.id, a2.index))) === 1, 30_000);
    await fleet.startHost('kvm-a', quickStall);
    const final = await watchFleetRun(fleet.core, plan.id, { pollMs: 100, strandedAfterMs: 1_000 });
    const settled = final.targets.find((target) => target.vm === 'a2')!;
    expect(settled.state).toMatchObject({ state: 'failed', code: 'INTERNAL', message: expect.stringMatching(/is no longer in the queue of host kvm-a/) });
    expect(final.counts).toMatchObject({ done: 1, failed: 1 });
  }, 90_000);

  it('the watcher settles a target whose job vanished after making its snapshot: done, found on the VM', async () => {
    const fleet = await fleetOf('vanished-done', { 'kvm-a': ['a1'] }, writePolicy('vanished-done', { hostLostAfterSeconds: 60 }));
    const quickStall = { JOB_LOCK_MS: '2000', JOB_STALLED_CHECK_MS: '1000' };
    const fake = fleet.hosts.get('kvm-a')!;
    // The worker dies right after the create (reading the snapshot back), before it reports.
    fake.setFaults([{ match: { subcommand: 'snapshot-dumpxml' }, killParent: true, times: 1 }]);
    const worker = await fleet.startHost('kvm-a', quickStall);
    const plan = await planFleet(fleet.core, request({ name: 'made-then-lost' }));
    await confirmFleet(fleet.core, plan.id, ADMIN);
    await until(async () => worker.child.exitCode !== null || worker.child.signalCode !== null, 30_000);
    // Its job is lost before anyone takes it again (a Redis failover, a cleaned queue).
    const queue = fleet.core.queueFor('kvm-a');
    await until(async () => (await queue.remove(fleetJobId(plan.id, 0))) === 1, 30_000);
    await fleet.startHost('kvm-a', quickStall);
    const final = await watchFleetRun(fleet.core, plan.id, { pollMs: 100, strandedAfterMs: 1_000 });
    expect(final.targets[0]!.state).toMatchObject({ state: 'done', note: expect.stringMatching(/snapshot was found on the VM, made by that job/) });
    expect(createCalls(fake)).toHaveLength(1);
  }, 90_000);

  it('the watcher settles a target whose job completed but whose record was lost: done, from the job', async () => {
    const fleet = await fleetOf('record-lost', { 'kvm-a': ['a1'] }, writePolicy('record-lost', { hostLostAfterSeconds: 60 }));
    await fleet.startHost('kvm-a');
    const plan = await planFleet(fleet.core, request({ name: 'record-lost' }));
    await confirmFleet(fleet.core, plan.id, ADMIN);
    const queue = fleet.core.queueFor('kvm-a');
    await until(async () => (await queue.getJobState(fleetJobId(plan.id, 0))) === 'completed', 30_000);
    // What a Redis failover can do: the worker's "done" went to the old master and was lost.
    await fleet.core.redis.hset(fleetKeys(fleet.prefix, plan.id).targets, '0', JSON.stringify({ state: 'running', at: Date.now() }));
    const final = await watchFleetRun(fleet.core, plan.id, { pollMs: 100, strandedAfterMs: 1_000 });
    expect(final.targets[0]!.state).toMatchObject({ state: 'done', note: expect.stringMatching(/from its completed job/) });
  }, 60_000);

  it('the watcher settles done a target still queued whose job completed (a failover lost both its records), and keeps the job', async () => {
    const fleet = await fleetOf('records-lost', { 'kvm-a': ['a1'] }, writePolicy('records-lost', { hostLostAfterSeconds: 60 }));
    await fleet.startHost('kvm-a');
    const plan = await planFleet(fleet.core, request({ name: 'records-lost' }));
    await confirmFleet(fleet.core, plan.id, ADMIN);
    const queue = fleet.core.queueFor('kvm-a');
    await until(async () => (await queue.getJobState(fleetJobId(plan.id, 0))) === 'completed', 30_000);
    // The old master took the worker's "running" and "done" (SENTINEL FAILOVER, redis-sentinel-failover.test.ts): the new one still says queued.
    await fleet.core.redis.hset(fleetKeys(fleet.prefix, plan.id).targets, '0', JSON.stringify({ state: 'queued' }));
    const final = await watchFleetRun(fleet.core, plan.id, { pollMs: 100, strandedAfterMs: 1_000 });
    expect(final.targets[0]!.state).toMatchObject({ state: 'done', note: expect.stringMatching(/from its completed job/) });
    expect(await queue.getJobState(fleetJobId(plan.id, 0))).toBe('completed');
  }, 60_000);

  it('retry failed: a new run over exactly the failed targets', async () => {
    const fleet = await fleetOf('retry', { 'kvm-a': ['a1', 'a2'], 'kvm-b': ['b1'] }, writePolicy('retry', {}));
    for (const host of fleet.hosts.keys()) await fleet.startHost(host);
    await fleet.startControl();
    fleet.hosts.get('kvm-a')!.setFaults([
      { match: { subcommand: 'snapshot-create-as', domain: 'a2' }, exitCode: 1, stderr: 'error: argument unsupported: QEMU guest agent is not configured\n', times: 1 },
    ]);
    const { code, stdout } = await runSnapctl(['fleet', 'snapshot', '--target', 'all', '--name', 'retry-me', '--yes', '--json'], fleet.env);
    expect(code, stdout).toBe(1);
    const report = JSON.parse(stdout) as { ok: boolean; code: string; runId: string; failures: Array<{ vm: string; state: { code: string } }> };
    expect(report).toMatchObject({ ok: false, code: 'PARTIAL' });
    expect(report.failures.map((failure) => [failure.vm, failure.state.code])).toEqual([['a2', 'UNSUPPORTED']]);

    const retry = await planRetryOfFailed(fleet.core, report.runId, requesterOf(ADMIN), ADMIN);
    expect(retry.retryOf).toBe(report.runId);
    expect(retry.targets.map((target) => target.vm)).toEqual(['a2']);
    const again = parseJsonOutput(await runSnapctl(['fleet', 'retry', report.runId, '--yes', '--json'], fleet.env));
    expect(again).toMatchObject({ ok: true, total: 1, counts: { done: 1 } });
    expect(snapshotNames(fleet.hosts.get('kvm-a')!, 'a2')).toEqual(['retry-me']);
  });

  it('snapctl fleet retry of a delete run deletes (it keeps the run\'s action, not a snapshot)', async () => {
    const fleet = await fleetOf('retry-delete', { 'kvm-a': ['a1', 'a2'] }, writePolicy('retry-delete', { approval: { deletes: false } }));
    for (const host of fleet.hosts.keys()) await fleet.startHost(host);
    await fleet.startControl();
    const made = await planFleet(fleet.core, request({ name: 'old' }));
    await confirmFleet(fleet.core, made.id, ADMIN);
    expect((await watchFleetRun(fleet.core, made.id, { pollMs: 50 })).counts.done).toBe(2);
    await until(async () => (await listHosts(fleet.core)).every((host) => host.vms.every((vm) => vm.snapshots.length === 1)));
    fleet.hosts.get('kvm-a')!.setFaults([{ match: { subcommand: 'snapshot-delete', domain: 'a2' }, exitCode: 1, stderr: 'error: argument unsupported: QEMU guest agent is not configured\n' }]);
    const first = await runSnapctl(['fleet', 'delete', '--target', 'all', '--name', 'old', '--yes', '--json'], fleet.env);
    const report = JSON.parse(first.stdout) as { ok: boolean; runId: string; failures: Array<{ vm: string }> };
    expect(report, first.stderr).toMatchObject({ ok: false, code: 'PARTIAL' });
    expect(report.failures.map((failure) => failure.vm)).toEqual(['a2']);
    fleet.hosts.get('kvm-a')!.setFaults([]);

    const preview = parseJsonOutput(await runSnapctl(['fleet', 'retry', report.runId, '--json'], fleet.env)) as { preview: { action: string; name: string; targets: Array<{ vm: string }> } };
    expect(preview.preview).toMatchObject({ action: 'delete', name: 'old', targets: [{ vm: 'a2' }] });
    const again = parseJsonOutput(await runSnapctl(['fleet', 'retry', report.runId, '--yes', '--json'], fleet.env));
    expect(again).toMatchObject({ ok: true, action: 'delete', total: 1, counts: { done: 1 } });
    expect(snapshotNames(fleet.hosts.get('kvm-a')!, 'a2')).toEqual([]);
  });

  it('retries for the clicker only the failed targets the policy lets them act on', async () => {
    const fleet = await fleetOf('retry-forbidden', { 'kvm-a': ['web-01', 'db-01'] }, writePolicy('retry-forbidden', {}));
    await fleet.startHost('kvm-a');
    fleet.hosts.get('kvm-a')!.setFaults([{ match: { subcommand: 'snapshot-create-as' }, exitCode: 1, stderr: 'error: argument unsupported: QEMU guest agent is not configured\n' }]);
    const plan = await planFleet(fleet.core, request({ name: 'fails' }));
    await confirmFleet(fleet.core, plan.id, ADMIN);
    expect((await watchFleetRun(fleet.core, plan.id, { pollMs: 50 })).counts.failed).toBe(2);
    const webOnly: Actor = { id: 'discord:2001', userId: '2001', displayName: 'wendy', roleIds: [WEB_TEAM], isAdministrator: false };
    const retry = await planRetryOfFailed(fleet.core, plan.id, requesterOf(webOnly), webOnly);
    expect(retry.targets.map((target) => target.vm)).toEqual(['web-01']);
    expect(retry.skipped.forbidden).toEqual([{ host: 'kvm-a', vm: 'db-01' }]);
  });

  it('refuses a Confirm by a member who may no longer act on every target, and queues nothing', async () => {
    const fleet = await fleetOf('confirm-recheck', { 'kvm-a': ['web-01', 'db-01'] }, writePolicy('confirm-recheck', {}));
    await fleet.startHost('kvm-a');
    const plan = await planFleet(fleet.core, request({ name: 'recheck' }));
    expect(plan.targets).toHaveLength(2);
    // The same person, no longer an administrator: web-team may create on web-* only.
    const demoted: Actor = { ...ADMIN, isAdministrator: false, roleIds: [WEB_TEAM] };
    await expect(confirmFleet(fleet.core, plan.id, demoted)).rejects.toMatchObject({ code: 'FORBIDDEN', message: expect.stringContaining('db-01 @ kvm-a') });
    expect((await getFleetRun(fleet.core, plan.id))?.status).toBe('preview');
    expect(await fleet.core.queueFor('kvm-a').getJobCounts('waiting', 'active', 'delayed')).toEqual({ waiting: 0, active: 0, delayed: 0 });
  });

  it('fleet deletes wait for a second administrator; the requester cannot approve', async () => {
    const fleet = await fleetOf('delete', { 'kvm-a': ['a1', 'a2'], 'kvm-b': ['b1'] }, writePolicy('delete', { approval: { deletes: true } }));
    for (const host of fleet.hosts.keys()) await fleet.startHost(host);
    const made = await planFleet(fleet.core, request({ name: 'old-{vm}' }));
    await confirmFleet(fleet.core, made.id, ADMIN);
    expect((await watchFleetRun(fleet.core, made.id, { pollMs: 50 })).counts.done).toBe(3);
    await until(async () => (await listHosts(fleet.core)).every((host) => host.vms.every((vm) => vm.snapshots.length === 1)));

    const plan = await planFleet(fleet.core, request({ action: 'delete', name: 'old-*' }));
    expect(plan.targets).toHaveLength(3);
    expect(plan.approval).toMatchObject({ reason: 'fleet deletes need approval' });
    expect((await confirmFleet(fleet.core, plan.id, ADMIN)).kind).toBe('pending');
    expect((await decideFleet(fleet.core, { runId: plan.id, actor: ADMIN, decision: 'approve' })).outcome).toBe('self');
    const decided = await decideFleet(fleet.core, { runId: plan.id, actor: SECOND_ADMIN, decision: 'approve' });
    expect(decided.outcome).toBe('approved');
    // Concurrent late clicks do not start it twice.
    await Promise.all([1, 2, 3].map(() => decideFleet(fleet.core, { runId: plan.id, actor: SECOND_ADMIN, decision: 'approve' })));
    const final = await watchFleetRun(fleet.core, plan.id, { pollMs: 50 });
    expect(final.counts.done).toBe(3);
    for (const [, fake] of fleet.hosts) {
      expect(fake.calls().filter((call) => call.argv.includes('snapshot-delete'))).toHaveLength(fake === fleet.hosts.get('kvm-a') ? 2 : 1);
    }
    expect(snapshotNames(fleet.hosts.get('kvm-a')!, 'a1')).toEqual([]);
  });

  it('snapctl: a delete waits for approval (--no-wait gives the run id), and can be withdrawn', async () => {
    const fleet = await fleetOf('withdraw', { 'kvm-a': ['a1'] }, writePolicy('withdraw', { approval: { deletes: true } }));
    await fleet.startHost('kvm-a');
    await fleet.startControl();
    await createSnapshot(fleet.core, { vm: 'a1', name: 'keep-me', requestedBy: 'test' }, { timeoutMs: 20_000 });
    await until(async () => (await listHosts(fleet.core))[0]?.vms[0]?.snapshots.length === 1);
    const pending = parseJsonOutput(await runSnapctl(['fleet', 'delete', '--target', 'a1', '--name', 'keep-*', '--yes', '--no-wait', '--json'], fleet.env));
    expect(pending).toMatchObject({ ok: true, started: false, status: 'pending' });
    const runId = pending.runId as string;
    const status = await runSnapctl(['fleet', 'status', runId], fleet.env);
    expect(status.stdout).toContain(`Fleet run ${runId} (delete 'keep-*' on 'a1'): pending`);
    const withdrawn = await runSnapctl(['fleet', 'cancel', runId, '--json'], fleet.env);
    expect(withdrawn.code).toBe(0);
    expect(parseJsonOutput(withdrawn)).toEqual({ ok: true, runId, status: 'discarded' });
    expect((await decideFleet(fleet.core, { runId, actor: SECOND_ADMIN, decision: 'approve' })).outcome).toBe('closed:withdrawn');
    await expect(awaitFleetDecision(fleet.core, runId, { timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(fleet.hosts.get('kvm-a')!.calls().filter((call) => call.argv.includes('snapshot-delete'))).toHaveLength(0);
    expect(snapshotNames(fleet.hosts.get('kvm-a')!, 'a1')).toEqual(['keep-me']);
  });

  it('a fleet job and a single job never touch one VM at once', async () => {
    const fleet = await fleetOf('shared-lock', { 'kvm-a': ['a1'] }, writePolicy('shared-lock', {}));
    await fleet.startHost('kvm-a');
    const fake = fleet.hosts.get('kvm-a')!;
    fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 1000 }]);
    const single = createSnapshot(fleet.core, { vm: 'a1', name: 'single', requestedBy: 'test' }, { timeoutMs: 20_000 });
    await until(async () => createCalls(fake).length === 1);
    const plan = await planFleet(fleet.core, request({ name: 'fleet' }));
    await confirmFleet(fleet.core, plan.id, ADMIN);
    const [final] = await Promise.all([watchFleetRun(fleet.core, plan.id, { pollMs: 50 }), single]);
    expect(final.counts.done).toBe(1);
    const [first, second] = createCalls(fake);
    expect(first!.argv).toContain('--name=single');
    expect(second!.argv).toContain('--name=fleet');
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(1000);
    // Bookkeeping is bounded: the run's keys expire.
    expect(await redis.client.ttl(fleetKeys(fleet.prefix, plan.id).targets)).toBeGreaterThan(0);
  });
});
