import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decideApproval } from '../../bot/core/approvals.js';
import type { Actor } from '../../bot/core/authorize.js';
import { SnapbotCore } from '../../bot/core/core.js';
import { startScheduleRunner, type ScheduleRunner } from '../../bot/core/schedules/fire.js';
import {
  activateApprovedSchedule,
  awaitFiring,
  createSchedule,
  deleteSchedule,
  pauseSchedule,
  resumeSchedule,
  runScheduleNow,
  scheduleQueue,
  type ScheduleInput,
} from '../../bot/core/schedules/manage.js';
import { getSchedule, listSchedules, requireSchedule, takeFiringToPost } from '../../bot/core/schedules/store.js';
import { splitJobMarker } from '../../shared/jobs.js';
import { createLogger } from '../../shared/logger.js';
import { loadPolicy } from '../../shared/policy.js';
import { scheduleKeys } from '../../shared/schedules/definition.js';
import { findFreePort, startRedisServer } from '../../scripts/redis-server.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { testAuthority } from '../helpers/authority.js';
import { startControlProcess } from '../helpers/control-process.js';
import { parseJsonOutput, runSnapctl, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

/**
 * Schedules on real Redis, with worker processes on fake virsh and the control process's
 * schedule runner in this process: firing through BullMQ's job schedulers, retention
 * through the workers' deletes, approval at creation, pause and resume, two runners,
 * downtime (one catch-up firing), a forged definition, failures in a row.
 */
let redis: TestRedis;
const workers: SpawnedProcess[] = [];
const cores: SnapbotCore[] = [];
const runners: ScheduleRunner[] = [];
const fakes: FakeVirshHost[] = [];
const policyDir = mkdtempSync(join(tmpdir(), 'snapbot-schedule-policy-'));

beforeAll(async () => {
  redis = await startTestRedis();
});

afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.close()));
  await Promise.all(workers.splice(0).map((worker) => worker.stop('SIGKILL')));
  await Promise.all(cores.splice(0).map((core) => core.close()));
  await Promise.all(fakes.splice(0).map((fake) => fake.dispose()));
});

afterAll(async () => {
  await redis?.stop();
});

const ADMIN: Actor = { id: 'discord:1001', userId: '1001', displayName: 'ada', roleIds: [], roleNames: [], isAdministrator: true };
const SECOND_ADMIN: Actor = { id: 'discord:1002', userId: '1002', displayName: 'bob', roleIds: [], roleNames: [], isAdministrator: true };
const WEB_TEAM = '700000000000000001';
const WEB_MEMBER: Actor = { id: 'discord:1003', userId: '1003', displayName: 'cy', roleIds: [WEB_TEAM], roleNames: [], isAdministrator: false };
const caller = (actor: Actor) => ({ requester: { id: actor.id, userId: actor.userId, displayName: actor.displayName }, actor, origin: 'discord' as const });

function writePolicy(name: string, approvals: string, extra = ''): string {
  const path = join(policyDir, `${name}.yaml`);
  writeFileSync(
    path,
    [
      'rules:',
      '  - role: "@administrators"',
      '    actions: [create, list, info, revert, delete, hosts, audit, schedule]',
      `  - role: "${WEB_TEAM}"`,
      '    actions: [create, list, delete, schedule]',
      '    vms: ["web-*"]',
      approvals,
      extra,
      'localAdministrator: true',
      '',
    ].join('\n'),
  );
  return path;
}
const NO_APPROVALS = 'approvals: []';

async function setup(label: string, vms: string[], approvals = NO_APPROVALS, extraPolicy = '') {
  const fake = await FakeVirshHost.create();
  fakes.push(fake);
  for (const vm of vms) fake.addDomain({ name: vm });
  const prefix = uniquePrefix(label);
  const policy = loadPolicy(writePolicy(label, approvals, extraPolicy));
  const connect = async () => {
    const core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix, logger: createLogger('test', 'silent'), policy });
    cores.push(core);
    return core;
  };
  const core = await connect();
  workers.push(await startWorkerProcess({ redisUrl: redis.url, prefix, hostId: 'kvm-a', fake, env: { HEARTBEAT_TTL_MS: '6000', JOB_LOCK_MS: '15000', JOB_STALLED_CHECK_MS: '5000' } }));
  const runner = async (on: SnapbotCore = core) => {
    const started = await startScheduleRunner(on, { jobTimeoutMs: 30_000, pollMs: 100 });
    runners.push(started);
    return started;
  };
  /** Snapshots made outside snapbot, as an operator's virsh would. */
  const manual = (vm: string, name: string) => promisify(execFile)(fake.path, ['snapshot-create-as', `--domain=${vm}`, `--name=${name}`]);
  const snapshots = (vm: string) => fake.domain(vm).snapshots;
  const marked = (vm: string, schedule: string) => snapshots(vm).filter((snapshot) => splitJobMarker(snapshot.description).scheduleId === schedule).map((snapshot) => snapshot.name);
  const creates = () => fake.calls().filter((call) => call.argv.includes('snapshot-create-as')).length;
  return { fake, prefix, core, connect, runner, manual, snapshots, marked, creates };
}

function input(overrides: Partial<ScheduleInput>): ScheduleInput {
  return { name: 'nightly', target: 'web-*', cron: '0 3 * * *', tz: 'Europe/Berlin', keep: 'last=2', ...overrides };
}

async function until<T>(probe: () => Promise<T | undefined | false | null>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Fires it now and waits for the firing to end; a second apart, so each firing's names (to the second) differ. */
async function fire(core: SnapbotCore, name: string) {
  await sleep(1_100);
  return awaitFiring(core, await runScheduleNow(core, name, caller(ADMIN)), 60_000);
}

describe('a schedule fires as a fleet run and prunes only what it made', () => {
  it('keeps the two newest of its own snapshots per VM; manual snapshots and other schedules\' are left alone', async () => {
    const { core, runner, manual, marked, snapshots } = await setup('retention', ['web-01', 'web-02', 'db-01']);
    await runner();
    await manual('web-01', 'nightly-manual');
    const created = await createSchedule(core, input({}), caller(ADMIN));
    expect(created).toMatchObject({ approval: null, vms: 2, schedule: { status: 'active' } });
    await createSchedule(core, input({ name: 'other', keep: 'last=5' }), caller(ADMIN));
    await fire(core, 'other');

    const firings = [];
    for (let i = 0; i < 3; i += 1) firings.push(await fire(core, 'nightly'));
    expect(firings.map((firing) => firing?.outcome)).toEqual(['ok', 'ok', 'ok']);
    expect(firings[0]).toMatchObject({ counts: { done: 2, failed: 0 }, pruned: 0 });
    expect(firings[2]).toMatchObject({ counts: { done: 2, failed: 0 }, pruned: 2, kept: 4 });
    for (const vm of ['web-01', 'web-02']) {
      const mine = marked(vm, 'nightly');
      expect(mine).toHaveLength(2);
      // The two newest of the three: the first firing's were pruned.
      expect(mine.every((name) => name.startsWith('nightly-'))).toBe(true);
      expect(marked(vm, 'other')).toHaveLength(1);
    }
    expect(snapshots('web-01').map((snapshot) => snapshot.name)).toContain('nightly-manual');
    expect(snapshots('db-01')).toEqual([]);
    const record = await getSchedule(core, 'nightly');
    expect(record).toMatchObject({ status: 'active', failedInARow: 0, lastFiring: { outcome: 'ok', pruned: 2 } });
    // Each finished firing is queued once for the chat.
    const posted = [];
    for (let entry = await takeFiringToPost(core); entry; entry = await takeFiringToPost(core)) posted.push(entry.name);
    expect(posted).toEqual(['other', 'nightly', 'nightly', 'nightly']);
  }, 120_000);

  it('fires on its own through the job scheduler, and delete stops it', async () => {
    const { core, runner, marked, creates } = await setup('every', ['web-01']);
    await runner();
    await createSchedule(core, input({ cron: undefined, tz: undefined, every: '5s', keep: 'last=2' }), caller(ADMIN));
    // An interval schedule fires when created, then every 5 s.
    await until(async () => marked('web-01', 'nightly').length >= 2 && (await getSchedule(core, 'nightly'))?.lastFiring, 'two firings', 30_000);
    await deleteSchedule(core, 'nightly', caller(ADMIN));
    expect(await scheduleQueue(core).getJobScheduler('nightly')).toBeFalsy();
    await sleep(1_000); // a firing already under way ends
    const after = creates();
    await sleep(7_000);
    expect(creates()).toBe(after);
    expect(await getSchedule(core, 'nightly')).toBeNull();
  }, 90_000);
});

describe('who may, and approval at creation', () => {
  it('waits for approval when its VMs\' deletes need one: fires nothing until a second administrator approves', async () => {
    const approvals = ['approvals:', '  - actions: [delete]', '    vms: ["web-*"]', '    approvers: ["@administrators"]', '    required: 1'].join('\n');
    const { core, runner, creates } = await setup('approval', ['web-01'], approvals);
    await runner();
    const created = await createSchedule(core, input({ every: '5s', cron: undefined }), caller(ADMIN));
    expect(created.schedule.status).toBe('pending');
    expect(created.approval).toMatchObject({ subject: { kind: 'schedule', name: 'nightly' }, required: 1 });
    expect(await scheduleQueue(core).getJobScheduler('nightly')).toBeFalsy();
    await expect(runScheduleNow(core, 'nightly', caller(ADMIN))).rejects.toMatchObject({ code: 'VALIDATION' });
    const self = await decideApproval(core, { id: created.approval!.id, actor: ADMIN, decision: 'approve' });
    expect(self.outcome).toBe('self');
    await sleep(6_000);
    expect(creates()).toBe(0);

    const decided = await decideApproval(core, { id: created.approval!.id, actor: SECOND_ADMIN, decision: 'approve' });
    expect(decided.outcome).toBe('approved');
    await activateApprovedSchedule(core, created.approval!.id);
    expect((await getSchedule(core, 'nightly'))?.status).toBe('active');
    expect(await scheduleQueue(core).getJobScheduler('nightly')).toBeTruthy();
    await until(async () => creates() > 0, 'the first firing');
  }, 60_000);

  it('refuses a member without the schedule action, and one whose target reaches VMs they may not prune', async () => {
    const { core } = await setup('forbidden', ['web-01', 'db-01']);
    const viewer: Actor = { id: 'discord:1009', userId: '1009', displayName: 'vi', roleIds: [], roleNames: [], isAdministrator: false };
    await expect(createSchedule(core, input({}), caller(viewer))).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(createSchedule(core, input({ target: 'all' }), caller(WEB_MEMBER))).rejects.toMatchObject({ code: 'FORBIDDEN', message: expect.stringMatching(/db-01/) });
    expect(await listSchedules(core)).toEqual([]);
    await createSchedule(core, input({}), caller(WEB_MEMBER));
    await expect(pauseSchedule(core, 'nightly', caller(viewer))).rejects.toMatchObject({ code: 'FORBIDDEN' });
    // Reading them needs `list` (core decides, for Discord; snapctl passes no reader).
    await expect(listSchedules(core, viewer)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(requireSchedule(core, 'nightly', viewer)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect((await listSchedules(core, WEB_MEMBER)).map((record) => record.definition.name)).toEqual(['nightly']);
  });

  it('refuses bad input with a sentence naming it', async () => {
    const { core } = await setup('input', ['web-01']);
    await expect(createSchedule(core, input({ name: 'Nightly!' }), caller(ADMIN))).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/lowercase/) });
    await expect(createSchedule(core, input({ keep: 'last=0' }), caller(ADMIN))).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/Keep spec/) });
    await expect(createSchedule(core, input({ cron: '* * * * * *' }), caller(ADMIN))).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(createSchedule(core, input({ every: '1h' }), caller(ADMIN))).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/not both/) });
    await createSchedule(core, input({}), caller(ADMIN));
    await expect(createSchedule(core, input({}), caller(ADMIN))).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/already exists/) });
  });

  it('a definition changed in Redis never fires (and a definition written by hand is not a schedule)', async () => {
    const { core, prefix, runner, creates } = await setup('forged', ['web-01', 'db-01']);
    await createSchedule(core, input({ target: 'web-01', keep: 'last=5' }), caller(ADMIN));
    const key = scheduleKeys(prefix).schedule('nightly');
    const definition = JSON.parse((await core.redis.hget(key, 'definition'))!) as Record<string, unknown>;
    await core.redis.hset(key, 'definition', JSON.stringify({ ...definition, target: 'all', keep: { last: 1 } }));
    await runner();
    const jobId = `manual-forged-${Date.now()}`;
    await scheduleQueue(core).add('fire', { schedule: 'nightly', version: 1, manual: true }, { jobId });
    await expect(awaitFiring(core, jobId, 30_000)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(creates()).toBe(0);
    expect(await listSchedules(core)).toEqual([]);
    // A firing summary pushed by a Redis writer is never posted: only the control process's sealed ones are.
    await core.redis.rpush(scheduleKeys(prefix).toPost, JSON.stringify({ text: JSON.stringify({ name: 'nightly', firing: {}, failedInARow: 9 }), seal: 'forged' }), 'not json');
    expect(await takeFiringToPost(core)).toBeNull();
    expect(await core.redis.llen(scheduleKeys(prefix).toPost)).toBe(0);
    // It can still be deleted (and then made again, properly).
    await deleteSchedule(core, 'nightly', caller(ADMIN));
    expect(await core.redis.exists(key)).toBe(0);
    await expect(deleteSchedule(core, 'nightly', caller(ADMIN))).rejects.toMatchObject({ code: 'VALIDATION' });
    await createSchedule(core, input({ target: 'web-01', keep: 'last=5' }), caller(ADMIN));
  }, 60_000);
});

describe('pause, resume, several control processes, downtime', () => {
  it('a paused schedule does not fire; resumed, it does', async () => {
    const { core, runner, creates } = await setup('pause', ['web-01']);
    await runner();
    await createSchedule(core, input({ every: '5s', cron: undefined, keep: 'last=3' }), caller(ADMIN));
    await until(async () => creates() > 0, 'the first firing');
    await pauseSchedule(core, 'nightly', caller(ADMIN));
    await sleep(1_000);
    const paused = creates();
    await sleep(7_000);
    expect(creates()).toBe(paused);
    await resumeSchedule(core, 'nightly', caller(ADMIN));
    await until(async () => creates() > paused, 'a firing after resume');
  }, 60_000);

  it('two control processes fire each slot once', async () => {
    const { core, connect, runner, marked } = await setup('two', ['web-01']);
    await runner(core);
    await runner(await connect());
    await createSchedule(core, input({ every: '5s', cron: undefined, keep: 'last=50' }), caller(ADMIN));
    await sleep(17_000);
    await pauseSchedule(core, 'nightly', caller(ADMIN));
    await sleep(2_000);
    const names = marked('web-01', 'nightly');
    // Created at t=0 and every 5 s: 3 or 4 slots in 17 s, each one snapshot (distinct names: one per slot).
    expect(names.length).toBeGreaterThanOrEqual(3);
    expect(names.length).toBeLessThanOrEqual(5);
    const slots = (await scheduleQueue(core).getCompleted()).map((job) => job.id);
    expect(new Set(slots).size).toBe(slots.length);
    expect(slots.length).toBe(names.length);
  }, 60_000);

  it('after downtime it fires once to catch up, not once per missed slot', async () => {
    const { core, runner, marked } = await setup('downtime', ['web-01']);
    const first = await runner();
    await createSchedule(core, input({ every: '5s', cron: undefined, keep: 'last=50' }), caller(ADMIN));
    await until(async () => marked('web-01', 'nightly').length >= 1, 'the first firing');
    await first.close();
    runners.splice(runners.indexOf(first), 1);
    const before = marked('web-01', 'nightly').length;
    await sleep(21_000); // four slots missed
    await runner();
    await sleep(3_000); // the catch-up, and nothing more before the next slot
    const caughtUp = marked('web-01', 'nightly').length - before;
    expect(caughtUp).toBe(1);
  }, 60_000);
});

describe('restarts of Redis and workers, several hosts', () => {
  it('goes on firing on two hosts after redis-server is SIGKILLed and started again on its data, and after a worker restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapbot-schedule-redis-'));
    const port = await findFreePort();
    let server = await startRedisServer({ port, dir, durable: true });
    const hosts = new Map<string, FakeVirshHost>();
    for (const hostId of ['kvm-a', 'kvm-b']) {
      const fake = await FakeVirshHost.create();
      fakes.push(fake);
      fake.addDomain({ name: `web-${hostId}` });
      hosts.set(hostId, fake);
    }
    const prefix = uniquePrefix('redis-restart');
    const core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: server.url, prefix, logger: createLogger('test', 'silent'), policy: loadPolicy(writePolicy('redis-restart', NO_APPROVALS)), redisReconnect: 'forever' });
    cores.push(core);
    const startHost = async (hostId: string) => {
      const worker = await startWorkerProcess({ redisUrl: server.url, prefix, hostId, fake: hosts.get(hostId)!, env: { HEARTBEAT_TTL_MS: '6000', JOB_LOCK_MS: '15000', JOB_STALLED_CHECK_MS: '5000' } });
      workers.push(worker);
      return worker;
    };
    const workerA = await startHost('kvm-a');
    await startHost('kvm-b');
    runners.push(await startScheduleRunner(core, { jobTimeoutMs: 30_000, pollMs: 100 }));
    const marked = (hostId: string) => hosts.get(hostId)!.domain(`web-${hostId}`).snapshots.filter((snapshot) => splitJobMarker(snapshot.description).scheduleId === 'nightly').length;
    try {
      await createSchedule(core, input({ every: '5s', cron: undefined, keep: 'last=50' }), caller(ADMIN));
      await until(async () => marked('kvm-a') >= 1 && marked('kvm-b') >= 1, 'a firing on both hosts');

      server.process.kill('SIGKILL');
      await new Promise((resolve) => server.process.once('exit', resolve));
      await sleep(2_000);
      server = await startRedisServer({ port, dir, durable: true });
      const afterRedis = { a: marked('kvm-a'), b: marked('kvm-b') };
      await until(async () => marked('kvm-a') > afterRedis.a && marked('kvm-b') > afterRedis.b, 'a firing on both hosts after Redis came back', 45_000);

      await workerA.stop('SIGKILL');
      workers.splice(workers.indexOf(workerA), 1);
      await startHost('kvm-a');
      const afterWorker = marked('kvm-a');
      await until(async () => marked('kvm-a') > afterWorker, 'a firing after the worker restart', 45_000);
      expect((await getSchedule(core, 'nightly'))?.status).toBe('active');
    } finally {
      await pauseSchedule(core, 'nightly', caller(ADMIN)).catch(() => undefined);
      await Promise.all(runners.splice(0).map((runner) => runner.close()));
      await Promise.all(workers.splice(0).map((worker) => worker.stop('SIGKILL')));
      await server.stop();
    }
  }, 150_000);
});

describe('failures', () => {
  it('counts failed firings in a row, and a clean one resets it', async () => {
    const { core, fake, runner } = await setup('failing', ['web-01', 'web-02']);
    await runner();
    await createSchedule(core, input({}), caller(ADMIN));
    fake.setFaults([{ match: { subcommand: 'snapshot-create-as', domain: 'web-02' }, exitCode: 1, stderr: 'error: internal error: unable to execute QEMU command\n' }]);
    const one = await fire(core, 'nightly');
    const two = await fire(core, 'nightly');
    expect(one).toMatchObject({ outcome: 'partial', counts: { done: 1, failed: 1 } });
    expect(two?.failures).toEqual([expect.objectContaining({ vm: 'web-02', code: expect.any(String) })]);
    expect((await getSchedule(core, 'nightly'))?.failedInARow).toBe(2);
    const posts = [];
    for (let entry = await takeFiringToPost(core); entry; entry = await takeFiringToPost(core)) posts.push(entry.failedInARow);
    expect(posts).toEqual([1, 2]);
    fake.setFaults([]);
    await fire(core, 'nightly');
    expect((await getSchedule(core, 'nightly'))?.failedInARow).toBe(0);
  }, 90_000);

  it('the space guard skips VMs whose storage is too full: NO_SPACE, nothing created, nothing pruned', async () => {
    // Any real filesystem has less than 99 % free: the guard refuses every VM.
    const { core, runner, creates, manual, snapshots } = await setup('space', ['web-01', 'web-02'], NO_APPROVALS, 'schedules:\n  minFreePercent: 99');
    await runner();
    await manual('web-01', 'nightly-by-hand');
    await createSchedule(core, input({ keep: 'last=1' }), caller(ADMIN));
    const firing = await fire(core, 'nightly');
    expect(firing).toMatchObject({ outcome: 'failed', counts: { done: 0, failed: 2 }, pruned: 0 });
    expect(firing?.failures.map((failure) => failure.code)).toEqual(['NO_SPACE', 'NO_SPACE']);
    expect(firing?.failures[0]?.message).toMatch(/% free under .*the schedule's space guard wants 99 %/);
    expect(creates()).toBe(1); // the hand-made one only
    expect(snapshots('web-01').map((snapshot) => snapshot.name)).toEqual(['nightly-by-hand']);
  }, 60_000);

  it('retention skips what libvirt cannot delete safely, and says why', async () => {
    const { core, runner, marked, manual } = await setup('skip', ['web-01']);
    await runner();
    await createSchedule(core, input({ keep: 'last=1' }), caller(ADMIN));
    await fire(core, 'nightly');
    const second = await fire(core, 'nightly');
    expect(second).toMatchObject({ pruned: 1 });
    const [holder] = marked('web-01', 'nightly');
    // A full (internal) snapshot taken by hand lives in the overlay the scheduled external one created.
    await manual('web-01', 'by-hand-full');
    const third = await fire(core, 'nightly');
    expect(third?.retentionSkipped).toEqual([expect.objectContaining({ vm: 'web-01', name: holder, reason: expect.stringMatching(/internal snapshot/) })]);
    expect(marked('web-01', 'nightly')).toEqual([holder, expect.stringMatching(/^nightly-/)]);
  }, 60_000);
});

describe('snapctl schedule, through the control process', () => {
  it('create, list, show, run (waits for the firing), pause, resume, delete; refusals exit non-zero with a code', async () => {
    const { prefix, marked } = await setup('snapctl', ['web-01']);
    const policyPath = writePolicy('snapctl-control', NO_APPROVALS);
    const env = { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix };
    const control = await startControlProcess({ ...env, SNAPBOT_POLICY: policyPath });
    workers.push(control);
    const snapctl = async (args: string[]) => parseJsonOutput(await runSnapctl([...args, '--json'], env));

    expect(await snapctl(['schedule', 'create', 'nightly', '--target', 'web-*', '--cron', '30 2 * * *', '--tz', 'Europe/Berlin', '--keep', 'daily=7,weekly=4'])).toMatchObject({
      ok: true,
      status: 'active',
      vms: 1,
      next: [expect.stringMatching(/T0[01]:30:00\.000Z$/), expect.any(String), expect.any(String)],
    });
    expect(await snapctl(['schedule', 'list'])).toMatchObject({ ok: true, schedules: [{ definition: { name: 'nightly', keep: { daily: 7, weekly: 4 }, cadence: { pattern: '30 2 * * *', tz: 'Europe/Berlin' } }, status: 'active' }] });
    const run = await snapctl(['schedule', 'run', 'nightly']);
    expect(run).toMatchObject({ ok: true, name: 'nightly', firing: { outcome: 'ok', counts: { done: 1 } } });
    expect(marked('web-01', 'nightly')).toHaveLength(1);
    expect(await snapctl(['schedule', 'pause', 'nightly'])).toMatchObject({ ok: true, status: 'paused' });
    expect(await snapctl(['schedule', 'show', 'nightly'])).toMatchObject({ schedule: { status: 'paused', next: [], lastFiring: { outcome: 'ok' } } });
    expect(await snapctl(['schedule', 'pause', 'nightly'])).toMatchObject({ ok: false, code: 'VALIDATION' });
    expect(await snapctl(['schedule', 'resume', 'nightly'])).toMatchObject({ ok: true, status: 'active' });

    const bad = await runSnapctl(['schedule', 'create', 'weekly', '--target', 'web-*', '--every', '2s', '--keep', 'last=2', '--json'], env);
    expect(bad.code).toBe(2);
    expect(parseJsonOutput(bad)).toMatchObject({ ok: false, code: 'VALIDATION', message: expect.stringMatching(/5 s|5s|seconds/) });
    expect(await snapctl(['schedule', 'delete', 'nightly'])).toMatchObject({ ok: true, deleted: true });
    expect(await snapctl(['schedule', 'show', 'nightly'])).toMatchObject({ ok: false, code: 'VALIDATION' });
  }, 120_000);
});
