import { Job, Queue, QueueEvents } from 'bullmq';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideApproval, getApproval, isGenuineRequest, type ApprovalRequest } from '../../bot/core/approvals.js';
import { announce, readAudit, takeNotice } from '../../bot/core/audit.js';
import type { Actor } from '../../bot/core/authorize.js';
import { SnapbotCore } from '../../bot/core/core.js';
import { runJob } from '../../bot/core/dispatch.js';
import { confirmFleet, decideFleet, planFleet, startFleetRun, watchFleetRun } from '../../bot/core/fleet/index.js';
import { executeApproved, requestDelete } from '../../bot/core/snapshot-approvals.js';
import { CONTROL_QUEUE, CONTROL_REQUEST_DOMAIN, type ControlRequest } from '../../shared/control.js';
import { fleetKeys } from '../../shared/fleet.js';
import { signJob } from '../../shared/job-signing.js';
import type { SnapshotJob } from '../../shared/jobs.js';
import { approvalKeys, auditKeys } from '../../shared/keys.js';
import { createLogger } from '../../shared/logger.js';
import { policySchema } from '../../shared/policy.js';
import { hostQueueName } from '../../shared/queues.js';
import { loadOrCreateSigner, Signer } from '../../shared/signing.js';
import { formatSshEd25519 } from '../../shared/ssh-keys.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { testAuthority } from '../helpers/authority.js';
import { startControlProcess } from '../helpers/control-process.js';
import { parseJsonOutput, runSnapctl, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

/**
 * Issue 10, finding 1 and 2, as an attacker would try them: someone who can write to
 * Redis (a plain BullMQ client, raw HSET/RPUSH) or who runs snapctl with a key or a
 * policy of their own. Nothing they write makes a worker touch a VM, the bot act on an
 * approval, or the bot post text. Real Redis, the real worker and control processes,
 * fake virsh (whose recorded calls are the proof that nothing ran).
 */
const HOST = 'kvm-t';
const ADMIN: Actor = { id: 'discord:100000000000000001', userId: '100000000000000001', displayName: 'admin', roleIds: [], isAdministrator: true };
const SECOND_ADMIN: Actor = { ...ADMIN, id: 'discord:100000000000000002', userId: '100000000000000002', displayName: 'admin-2' };

let redis: TestRedis;
let fake: FakeVirshHost;
let worker: SpawnedProcess;
let prefix: string;
let core: SnapbotCore;
let queue: Queue;
let events: QueueEvents;
let vm: { uuid: string; name: string };

const policy = policySchema.parse({
  rules: [{ role: '@administrators', actions: ['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit'] }],
  approvals: [{ actions: ['revert', 'delete'], approvers: ['@administrators'], required: 2 }],
  fleet: { approval: { snapshotsAbove: 0, deletes: true, required: 2 } },
});

const virshCalls = (subcommand: string) => fake.calls().filter((call) => call.argv.includes(subcommand));
const snapshotNames = async () => (await runJob(core, { kind: 'list', host: HOST, vm: vm.name, requestedBy: 'test' }, { timeoutMs: 30_000 })).snapshots.map((s) => s.name);

/** Adds a job as a Redis writer would (no bot involved) and waits for its end: the failure reason, or 'completed'. */
async function addAsRedisWriter(jobId: string, data: unknown): Promise<string> {
  const job = await queue.add('job', data, { jobId, attempts: 1 });
  try {
    await job.waitUntilFinished(events, 30_000);
    return 'completed';
  } catch (error) {
    return (error as Error).message;
  }
}

beforeAll(async () => {
  redis = await startTestRedis();
  fake = await FakeVirshHost.create({ libvirtVersion: '9.0.0' });
  vm = fake.addDomain({ name: 'app-01', state: 'running' });
  await promisify(execFile)(fake.path, ['snapshot-create-as', `--domain=${vm.uuid}`, '--name=base']);
  await promisify(execFile)(fake.path, ['snapshot-create-as', `--domain=${vm.uuid}`, '--name=keep-me']);
  prefix = uniquePrefix('trust');
  worker = await startWorkerProcess({ redisUrl: redis.url, prefix, hostId: HOST, fake });
  core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix, logger: createLogger('test', 'silent'), policy });
  const connection = { url: redis.url, maxRetriesPerRequest: null };
  queue = new Queue(hostQueueName(HOST), { connection, prefix });
  events = new QueueEvents(hostQueueName(HOST), { connection, prefix });
  await events.waitUntilReady();
});

afterAll(async () => {
  await events?.close();
  await queue?.close();
  await core?.close();
  await worker?.stop();
  await fake?.dispose();
  await redis?.stop();
});

describe('a Redis writer cannot make a worker act', () => {
  const revert = (name: string): SnapshotJob => ({ kind: 'revert', host: HOST, vm: 'app-01', uuid: vm.uuid, requestedBy: 'attacker', name, expected: { createdAt: '2026-01-01T00:00:00.000Z' }, undoPoint: { mode: 'full', keep: 3 } });

  it('refuses a plain queue.add of a revert: nothing runs, the refusal is audited', async () => {
    fake.clearCalls();
    const reason = await addAsRedisWriter('forged-revert', revert('base'));
    expect(reason).toMatch(/^FORBIDDEN: .*carries no signature/);
    expect(virshCalls('snapshot-revert')).toEqual([]);
    expect(virshCalls('snapshot-create-as')).toEqual([]);
    const audit = await readAudit(core, { vm: 'app-01', limit: 20 });
    expect(audit.find((entry) => entry.jobId === 'forged-revert')).toMatchObject({ event: 'refused', actor: `worker:${HOST}`, action: 'revert' });
  });

  it('refuses a genuine job changed after signing, one signed for another job id, and one signed by another key', async () => {
    fake.clearCalls();
    const signed = signJob(testAuthority(), 'tamper-1', { kind: 'create', host: HOST, vm: 'app-01', uuid: vm.uuid, requestedBy: 'discord:1', name: 'harmless', mode: 'disk-only' } as SnapshotJob);
    expect(await addAsRedisWriter('tamper-1', { ...signed, name: 'evil' })).toMatch(/^FORBIDDEN: .*does not match the job/);
    expect(await addAsRedisWriter('tamper-2', signed)).toMatch(/^FORBIDDEN: .*does not match the job/);
    const stranger = signJob(Signer.generate(), 'tamper-3', { ...revert('base'), undoPoint: undefined } as SnapshotJob);
    expect(await addAsRedisWriter('tamper-3', stranger)).toMatch(/^FORBIDDEN: .*signed by key [0-9a-f]{16}, not by this worker's authority/);
    expect(virshCalls('snapshot-create-as')).toEqual([]);
    expect(virshCalls('snapshot-revert')).toEqual([]);
  });

  it("a forged job naming a genuine fleet target is refused without touching that target's state", async () => {
    const runId = 'abcdef012345';
    const targets = fleetKeys(prefix, runId).targets;
    await core.redis.hset(targets, '0', JSON.stringify({ state: 'queued' }));
    const forged = { kind: 'create', host: HOST, vm: 'app-01', requestedBy: 'attacker', name: 'fleet-forged-target', mode: 'disk-only', fleet: { runId, index: 0, perHost: 1, global: 1 } };
    expect(await addAsRedisWriter(`fleet-${runId}-0-forged`, forged)).toMatch(/^FORBIDDEN: /);
    expect(JSON.parse((await core.redis.hget(targets, '0'))!)).toEqual({ state: 'queued' });
  });

  it('refuses a job whose signature expired before a worker took it', async () => {
    const expired = signJob(testAuthority(), 'expired-1', { kind: 'create', host: HOST, vm: 'app-01', requestedBy: 'discord:1', name: 'late', mode: 'disk-only' } as SnapshotJob, { expiresAt: Date.now() - 1000 });
    expect(await addAsRedisWriter('expired-1', expired)).toMatch(/^FORBIDDEN: .*signature expired at/);
    expect(await snapshotNames()).not.toContain('late');
  });

  it('refuses a replay: a finished signed job added again under its id does not run twice', async () => {
    fake.clearCalls();
    await runJob(core, { kind: 'create', host: HOST, vm: 'app-01', requestedBy: 'test', name: 'once', mode: 'disk-only' }, { timeoutMs: 30_000, jobId: 'replay-1' });
    const captured = (await Job.fromId(queue, 'replay-1'))!.data as unknown;
    await queue.remove('replay-1');
    // Deleted by the operator in between: a replay would make it again.
    await runJob(core, { kind: 'delete', host: HOST, vm: 'app-01', requestedBy: 'test', name: 'once' }, { timeoutMs: 30_000 });
    expect(await addAsRedisWriter('replay-1', captured)).toMatch(/^FORBIDDEN: .*already ran as another job \(a replay\)/);
    expect(virshCalls('snapshot-create-as')).toHaveLength(1);
    expect(await snapshotNames()).not.toContain('once');
  });

  it('carries out one approval once: a second job naming the same approval is refused', async () => {
    const first = signJob(testAuthority(), 'approval-use-1', { kind: 'create', host: HOST, vm: 'app-01', requestedBy: 'test', name: 'approved-1', mode: 'disk-only' } as SnapshotJob, { approvalId: 'feedface00000001' });
    const second = signJob(testAuthority(), 'approval-use-2', { kind: 'create', host: HOST, vm: 'app-01', requestedBy: 'test', name: 'approved-2', mode: 'disk-only' } as SnapshotJob, { approvalId: 'feedface00000001' });
    expect(await addAsRedisWriter('approval-use-1', first)).toBe('completed');
    expect(await addAsRedisWriter('approval-use-2', second)).toMatch(/^FORBIDDEN: .*approval feedface00000001 was already carried out by job approval-use-1/);
    expect(await snapshotNames()).not.toContain('approved-2');
  });
});

describe('a Redis writer cannot approve, start a fleet run, or post through the bot', () => {
  it('an approval hash written with status approved is refused, and the snapshot stays', async () => {
    const id = 'f0f0f0f0f0f0f0f0';
    const request: ApprovalRequest = {
      id,
      subject: { kind: 'snapshot', action: 'delete', host: HOST, vm: 'app-01', uuid: vm.uuid, snapshot: { name: 'keep-me', createdAt: '2026-01-01T00:00:00.000Z', state: 'running', location: 'internal', memory: true, parent: null, current: false, description: null, jobId: null }, undoPoint: null, jobId: `approval-${id}` },
      requester: { id: 'attacker', userId: '1', displayName: 'attacker' },
      origin: 'snapctl',
      reason: 'forged',
      requestedAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + 600_000).toISOString(),
      required: 1,
      allowSelfApproval: true,
      approvers: ['@everyone'],
    };
    const keys = approvalKeys(prefix);
    await core.redis
      .multi()
      .hset(keys.request(id), { data: JSON.stringify(request), status: 'approved', expiresAtMs: String(Date.parse(request.expiresAt)), required: '1', requesterUserId: '1', allowSelf: '1' })
      .sadd(keys.approvals(id), '2')
      .sadd(keys.toAct, id)
      .rpush(keys.toPost, id)
      .exec();
    await expect(executeApproved(core, request, { timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'FORBIDDEN', message: expect.stringMatching(/not opened by the control process/) });
    expect(await isGenuineRequest(core, id)).toBe(false);
    expect(await snapshotNames()).toContain('keep-me');
  });

  it('a genuine request whose required count or status is changed in Redis is refused, and nothing runs', async () => {
    const opened = await requestDelete(core, { vm: 'app-01', name: 'keep-me', requester: { id: 'discord:9', userId: '900000000000000009', displayName: 'asker' }, origin: 'discord' }, { timeoutMs: 30_000 });
    expect(opened.kind).toBe('pending');
    if (opened.kind !== 'pending') return;
    const { id } = opened.request;
    const keys = approvalKeys(prefix);
    // One approver's click counts; then the attacker lowers `required` so the script would approve on it.
    expect((await decideApproval(core, { id, actor: ADMIN, decision: 'approve' })).outcome).toBe('counted');
    await core.redis.hset(keys.request(id), 'required', '1');
    expect((await decideApproval(core, { id, actor: SECOND_ADMIN, decision: 'approve' })).outcome).toBe('forged');
    // Or flips the status outright: one sealed vote of the two needed is not an approval.
    await core.redis.hset(keys.request(id), 'required', '2', 'status', 'approved');
    await expect(executeApproved(core, opened.request, { timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'FORBIDDEN', message: expect.stringMatching(/only 1 of the 2 approval\(s\)/) });
    expect(await snapshotNames()).toContain('keep-me');
    const refused = (await readAudit(core, { limit: 50 })).filter((entry) => entry.event === 'refused' && entry.requestId === id);
    expect(refused.length).toBeGreaterThanOrEqual(2);
  });

  it('a snapctl request stores a requester no Discord click matches; an operator linked to Discord cannot approve their own request', async () => {
    const linked = { id: 'snapctl:alice', userId: '300000000000000003', displayName: 'alice' };
    const opened = await requestDelete(core, { vm: 'app-01', name: 'keep-me', requester: linked, actor: { ...ADMIN, id: linked.id, userId: linked.userId }, origin: 'snapctl' }, { timeoutMs: 30_000 });
    if (opened.kind !== 'pending') throw new Error('expected a pending request');
    const alice: Actor = { ...ADMIN, id: 'discord:300000000000000003', userId: '300000000000000003', displayName: 'alice' };
    expect((await decideApproval(core, { id: opened.request.id, actor: alice, decision: 'approve' })).outcome).toBe('self');
    expect((await getApproval(core, opened.request.id))?.approvals).toEqual([]);
  });

  it('a fleet run written into Redis, or a genuine one whose status or terms are changed, queues nothing', async () => {
    const requester = { id: 'discord:1', userId: '100000000000000001', displayName: 'admin' };
    const plan = await planFleet(core, { action: 'snapshot', target: 'app-*', name: 'fleet-forged', requester, actor: ADMIN, origin: 'discord' });
    expect(plan.approval).not.toBeNull();
    const keys = fleetKeys(prefix, plan.id);
    // Its approval terms stripped, so Confirm would start it at once.
    const raw = (await core.redis.hget(keys.run, 'plan'))!;
    await core.redis.hset(keys.run, 'plan', JSON.stringify({ ...JSON.parse(raw), approval: null }));
    await expect(confirmFleet(core, plan.id, ADMIN)).rejects.toMatchObject({ code: 'FORBIDDEN', message: expect.stringMatching(/plan was not made by the control process/) });
    // The genuine plan back, but its status set by hand: approved without an approval, or running without a start.
    await core.redis.hset(keys.run, 'plan', raw, 'status', 'approved');
    await expect(startFleetRun(core, plan.id, 'approved')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await core.redis.hset(keys.run, 'status', 'running');
    await expect(startFleetRun(core, plan.id, 'running')).rejects.toMatchObject({ code: 'FORBIDDEN', message: expect.stringMatching(/never started it/) });
    expect(await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed')).toMatchObject({ waiting: 0, active: 0, delayed: 0 });
    expect(await snapshotNames()).not.toContain('fleet-forged');
  });

  it('a fleet delete is bound to the creation time it was planned with: a snapshot re-created under that name since stays', async () => {
    const requester = { id: ADMIN.id, userId: ADMIN.userId, displayName: 'admin' };
    await runJob(core, { kind: 'create', host: HOST, vm: 'app-01', requestedBy: 'test', name: 'rotate', mode: 'full' }, { timeoutMs: 30_000 });
    // The plan reads the hosts' inventories (heartbeats), which carry each snapshot's creation time.
    let plan = await planFleet(core, { action: 'delete', target: 'app-*', name: 'rotate', requester, actor: ADMIN, origin: 'discord' });
    for (let tries = 0; plan.targets.length === 0 && tries < 50; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      plan = await planFleet(core, { action: 'delete', target: 'app-*', name: 'rotate', requester, actor: ADMIN, origin: 'discord' });
    }
    expect(plan.targets).toEqual([expect.objectContaining({ snapshot: 'rotate', createdAt: expect.stringMatching(/^\d{4}-/) })]);
    // Someone deletes it and makes a new one under the same name (a second later: libvirt's times are in seconds).
    await runJob(core, { kind: 'delete', host: HOST, vm: 'app-01', requestedBy: 'test', name: 'rotate' }, { timeoutMs: 30_000 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await runJob(core, { kind: 'create', host: HOST, vm: 'app-01', requestedBy: 'test', name: 'rotate', mode: 'full' }, { timeoutMs: 30_000 });
    expect((await confirmFleet(core, plan.id, ADMIN)).kind).toBe('pending');
    await decideFleet(core, { runId: plan.id, actor: SECOND_ADMIN, decision: 'approve' });
    await decideFleet(core, { runId: plan.id, actor: { ...SECOND_ADMIN, id: 'discord:100000000000000003', userId: '100000000000000003' }, decision: 'approve' });
    const summary = await watchFleetRun(core, plan.id);
    expect(summary.targets[0]?.state).toMatchObject({ state: 'failed', code: 'APPROVAL_STALE' });
    expect(await snapshotNames()).toContain('rotate');
  });

  it('a notice pushed by a Redis writer is dropped and audited; a sealed one is posted', async () => {
    await core.redis.rpush(auditKeys(prefix).notices, '@everyone the VMs are being wiped, click here');
    await core.redis.rpush(auditKeys(prefix).notices, JSON.stringify({ text: 'forged', seal: 'x'.repeat(86) }));
    await announce(core, 'Break-glass: a genuine notice');
    expect(await takeNotice(core)).toBe('Break-glass: a genuine notice');
    expect(await takeNotice(core)).toBeNull();
    const refused = (await readAudit(core, { limit: 50 })).filter((entry) => entry.event === 'refused' && entry.action === 'notice');
    expect(refused).toHaveLength(2);
  });
});

describe('snapctl cannot choose its own policy or identity', () => {
  let control: SpawnedProcess;
  let env: Record<string, string>;
  let dir: string;
  let outsiderKey: string;
  let devKey: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapbot-trust-'));
    outsiderKey = join(dir, 'outsider.key');
    devKey = join(dir, 'dev.key');
    loadOrCreateSigner(outsiderKey, 'test');
    const dev = loadOrCreateSigner(devKey, 'test');
    const controlPolicy = join(dir, 'control.yaml');
    writeFileSync(
      controlPolicy,
      JSON.stringify({
        rules: [
          { role: '@administrators', actions: ['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit'] },
          { role: '400000000000000004', actions: ['create'], vms: ['dev-*'] },
        ],
        approvals: [{ actions: ['revert', 'delete'], required: 2 }],
        breakGlass: { snapctl: false },
        localAdministrator: true,
        operators: [{ name: 'dev', key: formatSshEd25519(dev.publicKey, 'dev@laptop'), roles: ['400000000000000004'] }],
      }),
    );
    const open = join(dir, 'open.yaml');
    writeFileSync(open, JSON.stringify({ rules: [{ role: '@everyone', actions: ['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit'] }], approvals: [], breakGlass: { snapctl: true } }));
    env = { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix };
    control = await startControlProcess({ ...env, SNAPBOT_POLICY: controlPolicy });
    // snapctl's own SNAPBOT_POLICY (an open one) is not the control process's: ignored.
    env.SNAPBOT_POLICY = open;
  });

  afterAll(async () => {
    await control?.stop();
  });

  it('a key no policy names is refused, and the refusal is audited', async () => {
    const result = await runSnapctl(['create', '--vm', 'app-01', '--name', 'outsider', '--json'], { ...env, SNAPCTL_KEY: outsiderKey });
    expect(parseJsonOutput(result)).toMatchObject({ ok: false, code: 'FORBIDDEN', message: expect.stringMatching(/belongs to no operator in the policy/) });
    expect(await snapshotNames()).not.toContain('outsider');
    expect((await readAudit(core, { limit: 30 })).some((entry) => entry.event === 'refused' && entry.action === 'snapctl-request')).toBe(true);
  });

  it("an operator gets the policy's rules for their roles, whatever snapctl's own SNAPBOT_POLICY says", async () => {
    const refused = parseJsonOutput(await runSnapctl(['create', '--vm', 'app-01', '--name', 'by-dev', '--json'], { ...env, SNAPCTL_KEY: devKey }));
    expect(refused).toMatchObject({ ok: false, code: 'FORBIDDEN', message: expect.stringMatching(/not allowed to create on VM app-01/) });
    // The control process's policy: break-glass is off, and deletes need two approvals.
    const breakGlass = parseJsonOutput(await runSnapctl(['delete', '--vm', 'app-01', '--name', 'keep-me', '--break-glass', 'because', '--json'], { ...env }));
    expect(breakGlass).toMatchObject({ ok: false, code: 'FORBIDDEN', message: expect.stringMatching(/Break-glass is not allowed/) });
    expect(await snapshotNames()).toContain('keep-me');
  });

  it('a signed request replayed, or signed long ago, is refused', async () => {
    const local = loadOrCreateSigner(join(process.cwd(), 'data', 'operator.key'), 'test');
    const controlQueue = new Queue(CONTROL_QUEUE, { connection: { url: redis.url, maxRetriesPerRequest: null }, prefix });
    const controlEvents = new QueueEvents(CONTROL_QUEUE, { connection: { url: redis.url, maxRetriesPerRequest: null }, prefix });
    await controlEvents.waitUntilReady();
    const send = async (request: ControlRequest) => {
      const job = await controlQueue.add('create', { request, signature: local.sign(CONTROL_REQUEST_DOMAIN, request) }, { jobId: request.nonce });
      return job.waitUntilFinished(controlEvents, 30_000).then(
        () => 'completed',
        (error: Error) => error.message,
      );
    };
    try {
      const request: ControlRequest = { v: 1, keyId: local.keyId, nonce: 'ab'.repeat(16), issuedAt: Date.now(), timeoutMs: 30_000, operation: { op: 'create', vm: 'app-01', name: 'replayed', mode: 'disk-only' } };
      expect(await send(request)).toBe('completed');
      await controlQueue.remove(request.nonce);
      await runJob(core, { kind: 'delete', host: HOST, vm: 'app-01', requestedBy: 'test', name: 'replayed' }, { timeoutMs: 30_000 });
      expect(await send(request)).toMatch(/^FORBIDDEN: .*nonce was used before/);
      const stale = { ...request, nonce: 'cd'.repeat(16), issuedAt: Date.now() - 3600_000 };
      expect(await send(stale)).toMatch(/^FORBIDDEN: .*a replay, or a clock far off/);
      expect(await snapshotNames()).not.toContain('replayed');
    } finally {
      await controlEvents.close();
      await controlQueue.close();
    }
  });
});
