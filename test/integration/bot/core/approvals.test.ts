import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  approvedNotActed,
  auditAbout,
  awaitApproval,
  botOnline,
  decideApproval,
  describeRequest,
  expireDueApprovals,
  getApproval,
  markActedOn,
  markBotAlive,
  openApproval,
  setApprovalMessage,
  takeApprovalToPost,
  withdrawApproval,
  type ApprovalSubject,
  type SnapshotSubject,
} from '../../../../bot/core/approvals.js';
import { readAudit } from '../../../../bot/core/audit.js';
import type { Actor } from '../../../../bot/core/authorize.js';
import { SnapbotCore } from '../../../../bot/core/core.js';
import { fleetKeys } from '../../../../shared/fleet.js';
import { createLogger } from '../../../../shared/logger.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../../../helpers/redis.js';
import { testAuthority } from '../../../helpers/authority.js';

/**
 * The approvals module against a real Redis (its decisions are Lua scripts). Approvals
 * expire by Redis's clock, the one clock every bot process and snapctl share:
 * a machine whose clock is an hour off neither expires a request early nor keeps it
 * open late. Fleet requests and single ones go through the same module.
 */
let redis: TestRedis;
let core: SnapbotCore;

const ADMIN: Actor = { id: 'discord:1001', userId: '1001', displayName: 'ada', roleIds: [], roleNames: [], isAdministrator: true };
const OTHER: Actor = { ...ADMIN, id: 'discord:1002', userId: '1002', displayName: 'bob' };
const HOUR = 3_600_000;

beforeAll(async () => {
  redis = await startTestRedis();
  core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix: uniquePrefix('approvals-clock'), logger: createLogger('test', 'silent') });
});

afterEach(() => {
  vi.useRealTimers();
});

afterAll(async () => {
  await core?.close();
  await redis?.stop();
});

let counter = 0;
function fleetSubject(): { id: string; subject: ApprovalSubject } {
  counter += 1;
  const id = `abcdef${String(counter).padStart(6, '0')}`;
  return { id, subject: { kind: 'fleet', runId: id, action: 'delete', selector: 'all', name: 'old-*', targets: 3 } };
}

async function openFleetRequest(ttlMinutes: number, required = 2) {
  const { id, subject } = fleetSubject();
  // The run's own record, whose status follows its approval.
  await core.redis.hset(fleetKeys(core.prefix, id).run, 'status', 'pending');
  const request = await openApproval(core, {
    id,
    subject,
    terms: { approvers: ['@administrators'], required, allowSelfApproval: false, ttlMinutes, reason: 'fleet deletes need approval' },
    requester: { id: 'snapctl:ops@host', userId: null, displayName: 'ops' },
    origin: 'discord',
    mirror: fleetKeys(core.prefix, id).run,
  });
  return { id, request, mirror: fleetKeys(core.prefix, id).run };
}

const mirrorStatus = (key: string) => core.redis.hget(key, 'status');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('approval expiry', () => {
  it('does not expire a request early on a bot whose clock runs an hour ahead', async () => {
    const { id, mirror } = await openFleetRequest(0.05);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + HOUR });
    expect(await expireDueApprovals(core)).toEqual([]);
    // A click is still counted: the decision script reads Redis's clock too.
    expect((await decideApproval(core, { id, actor: ADMIN, decision: 'approve', mirror })).outcome).toBe('counted');
    expect(await mirrorStatus(mirror)).toBe('pending');
  });

  it('expires a request on time on a bot whose clock runs an hour behind, and the run with it', async () => {
    const { id, mirror } = await openFleetRequest(0.02);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - HOUR });
    await sleep(1_500);
    const expired = await expireDueApprovals(core, () => mirror);
    expect(expired.map((state) => state.request.id)).toEqual([id]);
    expect((await getApproval(core, id))?.status).toBe('expired');
    expect(await mirrorStatus(mirror)).toBe('expired');
    expect((await decideApproval(core, { id, actor: OTHER, decision: 'approve', mirror })).outcome).toBe('closed:expired');
  });

  it('records the expiry time by Redis\'s clock when the request is opened', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 5 * HOUR });
    const { request } = await openFleetRequest(15);
    const [seconds] = await core.redis.time();
    expect(Math.abs(Date.parse(request.expiresAt) - (Number(seconds) * 1000 + 15 * 60_000))).toBeLessThan(5_000);
  });
});

describe('one decision wins', () => {
  it('withdraws a pending request once; an approval after it is refused and the run stays discarded', async () => {
    const { id, mirror } = await openFleetRequest(15, 1);
    const [withdrawn, again] = await Promise.all([withdrawApproval(core, { id, by: 'snapctl:ops@host', mirror }), withdrawApproval(core, { id, by: 'x', mirror })]);
    expect([withdrawn, again].filter(Boolean)).toHaveLength(1);
    expect((await decideApproval(core, { id, actor: ADMIN, decision: 'approve', mirror })).outcome).toBe('closed:withdrawn');
    expect(await mirrorStatus(mirror)).toBe('discarded');
  });

  it('approves with the click that reaches the number, mirrored on the run, and lists it for the sweep until acted on', async () => {
    const { id, mirror } = await openFleetRequest(15, 2);
    expect((await decideApproval(core, { id, actor: ADMIN, decision: 'approve', mirror })).outcome).toBe('counted');
    const outcomes = await Promise.all([OTHER, { ...OTHER, id: 'discord:1003', userId: '1003' }].map((actor) => decideApproval(core, { id, actor, decision: 'approve', mirror })));
    expect(outcomes.map((outcome) => outcome.outcome).sort()).toEqual(['approved', 'closed:approved']);
    expect(await mirrorStatus(mirror)).toBe('approved');
    expect(await approvedNotActed(core)).toContain(id);
    await markActedOn(core, id);
    expect(await approvedNotActed(core)).not.toContain(id);
  });
});

const SNAPSHOT: SnapshotSubject = {
  kind: 'snapshot',
  action: 'revert',
  host: 'kvm-a',
  vm: 'web-01',
  uuid: '6a7c0d3e-9a55-4c62-8d5c-2b8f0b8b6a01',
  snapshot: { name: 'pre-upgrade', createdAt: '2026-11-01T00:00:00.000Z', state: 'running', location: 'internal', memory: true, parent: null, current: false, description: null, jobId: null },
  undoPoint: { mode: 'full', keep: 3 },
  jobId: 'approval-0123456789abcdef',
};

async function openSnapshotRequest(options: { origin?: 'discord' | 'snapctl'; requesterUserId?: string | null; required?: number; ttlMinutes?: number; allowSelfApproval?: boolean } = {}) {
  counter += 1;
  const id = `0123456789ab${String(counter).padStart(4, '0')}`;
  return openApproval(core, {
    id,
    subject: SNAPSHOT,
    terms: { approvers: ['@administrators', 'user:4242'], required: options.required ?? 1, allowSelfApproval: options.allowSelfApproval ?? false, ttlMinutes: options.ttlMinutes ?? 15, reason: 'reverts need approval' },
    requester: { id: options.requesterUserId ? `discord:${options.requesterUserId}` : 'snapctl:ops@host', userId: options.requesterUserId ?? null, displayName: 'ops' },
    origin: options.origin ?? 'discord',
  });
}

describe('a request, as stored and read back', () => {
  it('reads back exactly what was opened, pending, with no votes and no message yet', async () => {
    const request = await openSnapshotRequest();
    const state = await getApproval(core, request.id);
    expect(state).toEqual({ request, status: 'pending', approvals: [], deniedBy: null, withdrawnBy: null, message: null });
    expect(request).toMatchObject({ reason: 'reverts need approval', required: 1, allowSelfApproval: false, approvers: ['@administrators', 'user:4242'] });
    await setApprovalMessage(core, request.id, { channelId: '1', messageId: '2' });
    expect((await getApproval(core, request.id))?.message).toEqual({ channelId: '1', messageId: '2' });
    expect(await getApproval(core, 'ffffffffffffffff')).toBeNull();
  });

  it('hands a request opened from snapctl to exactly one bot to post, and none opened in Discord', async () => {
    while ((await takeApprovalToPost(core)) !== null);
    const fromShell = await openSnapshotRequest({ origin: 'snapctl' });
    await openSnapshotRequest({ origin: 'discord' });
    expect(await takeApprovalToPost(core)).toBe(fromShell.id);
    expect(await takeApprovalToPost(core)).toBeNull();
  });

  it('audits the request, each counted approval and the denial, with who and what', async () => {
    const request = await openSnapshotRequest({ required: 2, requesterUserId: '9999' });
    await decideApproval(core, { id: request.id, actor: ADMIN, decision: 'approve' });
    await decideApproval(core, { id: request.id, actor: OTHER, decision: 'deny' });
    const entries = (await readAudit(core, { limit: 50 })).filter((entry) => entry.requestId === request.id).reverse();
    expect(entries.map((entry) => [entry.event, entry.actor])).toEqual([
      ['requested', 'discord:9999'],
      ['approved', ADMIN.id],
      ['denied', OTHER.id],
    ]);
    expect(entries[0]).toMatchObject({ action: 'revert', host: 'kvm-a', vm: 'web-01', snapshot: 'pre-upgrade', detail: expect.stringContaining('needs 2 approval(s)') });
    expect(entries[1]?.detail).toBe('1 of 2 approval(s)');
  });
});

describe('who counts', () => {
  it('counts no click from someone who is not an approver, and names one user approver by id', async () => {
    const request = await openSnapshotRequest();
    const stranger: Actor = { ...OTHER, id: 'discord:5', userId: '5', isAdministrator: false };
    expect((await decideApproval(core, { id: request.id, actor: stranger, decision: 'approve' })).outcome).toBe('not-approver');
    const named: Actor = { ...stranger, id: 'discord:4242', userId: '4242' };
    expect((await decideApproval(core, { id: request.id, actor: named, decision: 'approve' })).outcome).toBe('approved');
  });

  it("refuses the requester's own click unless the rule allows it", async () => {
    const strict = await openSnapshotRequest({ requesterUserId: ADMIN.userId });
    expect((await decideApproval(core, { id: strict.id, actor: ADMIN, decision: 'approve' })).outcome).toBe('self');
    expect((await decideApproval(core, { id: strict.id, actor: ADMIN, decision: 'deny' })).outcome).toBe('self');
    const lenient = await openSnapshotRequest({ requesterUserId: ADMIN.userId, allowSelfApproval: true });
    expect((await decideApproval(core, { id: lenient.id, actor: ADMIN, decision: 'approve' })).outcome).toBe('approved');
  });

  it('counts a second click of the same approver once', async () => {
    const request = await openSnapshotRequest({ required: 2 });
    await decideApproval(core, { id: request.id, actor: ADMIN, decision: 'approve' });
    const again = await decideApproval(core, { id: request.id, actor: ADMIN, decision: 'approve' });
    expect([again.outcome, again.approvals]).toEqual(['duplicate', 1]);
    expect((await getApproval(core, request.id))?.approvals).toEqual([ADMIN.userId]);
  });

  it('answers missing for a request that does not exist', async () => {
    expect((await decideApproval(core, { id: 'ffffffffffff0000', actor: ADMIN, decision: 'approve' })).outcome).toBe('missing');
  });
});

describe('waiting for a decision (snapctl)', () => {
  it('returns the approved request', async () => {
    const request = await openSnapshotRequest();
    const waiting = awaitApproval(core, request.id, { timeoutMs: 10_000, pollMs: 50 });
    await decideApproval(core, { id: request.id, actor: ADMIN, decision: 'approve' });
    expect((await waiting).status).toBe('approved');
  });

  it('is FORBIDDEN after a denial, CANCELLED after a withdrawal, APPROVAL_EXPIRED after the expiry, and TIMEOUT while still open', async () => {
    const denied = await openSnapshotRequest();
    await decideApproval(core, { id: denied.id, actor: ADMIN, decision: 'deny' });
    await expect(awaitApproval(core, denied.id, { timeoutMs: 1_000 })).rejects.toMatchObject({ code: 'FORBIDDEN', message: expect.stringContaining(`Approval request ${denied.id} was denied`) });
    const withdrawn = await openSnapshotRequest();
    await withdrawApproval(core, { id: withdrawn.id, by: 'snapctl:ops@host' });
    await expect(awaitApproval(core, withdrawn.id, { timeoutMs: 1_000 })).rejects.toMatchObject({ code: 'CANCELLED', message: expect.stringContaining('withdrawn by snapctl:ops@host') });
    const expiring = await openSnapshotRequest({ ttlMinutes: 0.01 });
    await expect(awaitApproval(core, expiring.id, { timeoutMs: 5_000, pollMs: 50 })).rejects.toMatchObject({ code: 'APPROVAL_EXPIRED' });
    const open = await openSnapshotRequest();
    await expect(awaitApproval(core, open.id, { timeoutMs: 200, pollMs: 50 })).rejects.toMatchObject({ code: 'TIMEOUT', message: expect.stringContaining('stays open until') });
    await expect(awaitApproval(core, 'ffffffffffff0001', { timeoutMs: 200 })).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});

describe('how a request is named', () => {
  it('names a snapshot request by its id and a fleet one by its run, and audits each by its subject', async () => {
    const snapshot = await openSnapshotRequest();
    expect(describeRequest(snapshot)).toBe(`Approval request ${snapshot.id}`);
    const { request: fleet } = await openFleetRequest(15);
    expect(describeRequest(fleet)).toBe(`Fleet run ${fleet.id}`);
    expect(auditAbout(SNAPSHOT, 'r1')).toEqual({ action: 'revert', host: 'kvm-a', vm: 'web-01', snapshot: 'pre-upgrade', requestId: 'r1' });
    expect(auditAbout(fleet.subject, 'r2')).toEqual({ action: 'fleet-delete', requestId: 'r2', snapshot: 'old-*', detail: 'all' });
  });
});

describe('the bot-alive mark', () => {
  it('says a bot is online for as long as its last sweep said', async () => {
    await core.redis.del(`${core.prefix}:bot:alive`);
    expect(await botOnline(core)).toBe(false);
    await markBotAlive(core, 300);
    expect(await botOnline(core)).toBe(true);
    await sleep(400);
    expect(await botOnline(core)).toBe(false);
  });
});
