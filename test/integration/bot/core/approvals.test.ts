import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  approvedNotActed,
  auditAbout,
  awaitApproval,
  botOnline,
  decideApproval,
  describeRequest,
  expireDueApprovals,
  expiredToShow,
  genuineApproval,
  getApproval,
  isGenuineRequest,
  markActedOn,
  markBotAlive,
  openApproval,
  setApprovalMessage,
  takeApprovalToPost,
  subjectRecord,
  withdrawApproval,
  type ApprovalSubject,
  type SnapshotSubject,
} from '../../../../bot/core/approvals.js';
import { sweepApprovals } from '../../../../bot/core/approval-sweep.js';
import { readAudit } from '../../../../bot/core/audit.js';
import type { Actor } from '../../../../bot/core/authorize.js';
import { SnapbotCore } from '../../../../bot/core/core.js';
import { fleetKeys } from '../../../../shared/fleet.js';
import { approvalKeys } from '../../../../shared/keys.js';
import { scheduleKeys } from '../../../../shared/schedules/definition.js';
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

describe('showing an expiry', () => {
  it('lists an expired request that has a message until a sweep redraws it, whoever expired it, and asks again after a failed redraw', async () => {
    const withMessage = await openFleetRequest(0.01);
    await setApprovalMessage(core, withMessage.id, { channelId: '1', messageId: '2' });
    const withoutMessage = await openFleetRequest(0.01);
    await sleep(1_000);
    // Expired by a process that shows nothing (snapctl waiting, a control process without Discord).
    await sweepApprovals(core, { approved: async () => undefined });
    expect((await getApproval(core, withMessage.id))?.status).toBe('expired');
    expect((await getApproval(core, withoutMessage.id))?.status).toBe('expired');
    expect(await expiredToShow(core)).toContain(withMessage.id);
    expect(await expiredToShow(core)).not.toContain(withoutMessage.id);

    const shown: string[] = [];
    let failing = true;
    const handlers = {
      approved: async () => undefined,
      expired: async (state: { request: { id: string } }) => {
        if (failing) throw new Error('Discord is not reachable yet');
        shown.push(state.request.id);
      },
    };
    await sweepApprovals(core, handlers);
    expect(await expiredToShow(core)).toContain(withMessage.id);
    failing = false;
    await sweepApprovals(core, handlers);
    expect(shown.filter((id) => id === withMessage.id)).toHaveLength(1);
    expect(await expiredToShow(core)).not.toContain(withMessage.id);
    await sweepApprovals(core, handlers);
    expect(shown.filter((id) => id === withMessage.id)).toHaveLength(1);
  });

  it('takes off the list, without asking, a request that is gone or was listed by hand while still pending', async () => {
    const pending = await openFleetRequest(15);
    await core.redis.sadd(approvalKeys(core.prefix).expiredToShow, pending.id, 'no-such-request');
    const asked: string[] = [];
    await sweepApprovals(core, { approved: async () => undefined, expired: async (state) => void asked.push(state.request.id) });
    expect(asked).toEqual([]);
    expect(await expiredToShow(core)).toEqual([]);
    expect((await getApproval(core, pending.id))?.status).toBe('pending');
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

/** The audit entries about one request, oldest first. */
async function auditOf(id: string) {
  return (await readAudit(core, { limit: 500 })).filter((entry) => entry.requestId === id || entry.detail?.includes(id)).reverse();
}

describe('a request written or changed in Redis by anyone but the control process', () => {
  it('takes a genuine request as genuine, and audits nothing about it', async () => {
    const request = await openSnapshotRequest();
    expect(await isGenuineRequest(core, request.id)).toBe(true);
    expect((await auditOf(request.id)).map((entry) => entry.event)).toEqual(['requested']);
  });

  it('refuses a request whose seal or sealed data was changed, and audits the refusal', async () => {
    const keys = approvalKeys(core.prefix);
    const badSeal = await openSnapshotRequest();
    await core.redis.hset(keys.request(badSeal.id), 'seal', 'A'.repeat(86));
    expect(await isGenuineRequest(core, badSeal.id)).toBe(false);
    expect((await auditOf(badSeal.id)).at(-1)).toMatchObject({
      event: 'refused',
      actor: 'snapbot',
      action: 'revert',
      vm: 'web-01',
      detail: 'not acted on: the request was not opened by the control process (no valid seal)',
    });
    // One approval instead of two, written over the sealed data: the seal no longer matches.
    const rewritten = await openSnapshotRequest({ required: 2 });
    const data = JSON.stringify({ ...rewritten, required: 1 });
    await core.redis.hset(keys.request(rewritten.id), 'data', data);
    expect(await isGenuineRequest(core, rewritten.id)).toBe(false);
    expect((await auditOf(rewritten.id)).at(-1)?.detail).toBe('not acted on: the request was not opened by the control process (no valid seal)');
  });

  it('refuses a sealed request whose fields the decision script reads were changed, naming the field and both values', async () => {
    const keys = approvalKeys(core.prefix);
    const changes: Array<[string, string, string]> = [
      ['required', '1', '2'],
      ['allowSelf', '1', '0'],
      ['requesterUserId', '1001', ''],
    ];
    for (const [field, forged, genuine] of changes) {
      const request = await openSnapshotRequest({ required: 2 });
      await core.redis.hset(keys.request(request.id), field, forged);
      expect(await isGenuineRequest(core, request.id)).toBe(false);
      expect((await auditOf(request.id)).at(-1)?.detail).toBe(`not acted on: its ${field} was changed in Redis ("${forged}" instead of "${genuine}")`);
    }
    const later = await openSnapshotRequest();
    const [expiresAtMs] = await core.redis.hmget(keys.request(later.id), 'expiresAtMs');
    expect(expiresAtMs).toBe(String(Date.parse(later.expiresAt)));
    await core.redis.hset(keys.request(later.id), 'expiresAtMs', String(Number(expiresAtMs) + HOUR));
    expect(await isGenuineRequest(core, later.id)).toBe(false);
    // A field removed altogether reads as null.
    const removed = await openSnapshotRequest();
    await core.redis.hdel(keys.request(removed.id), 'allowSelf');
    expect(await isGenuineRequest(core, removed.id)).toBe(false);
    expect((await auditOf(removed.id)).at(-1)?.detail).toBe('not acted on: its allowSelf was changed in Redis (null instead of "0")');
  });

  it('stores the requester and self-approval terms as the decision script reads them', async () => {
    const keys = approvalKeys(core.prefix);
    const fromShell = await openSnapshotRequest({ requesterUserId: null, allowSelfApproval: true, required: 3 });
    expect(await core.redis.hmget(keys.request(fromShell.id), 'requesterUserId', 'allowSelf', 'required', 'status')).toEqual(['', '1', '3', 'pending']);
    const fromDiscord = await openSnapshotRequest({ requesterUserId: '9999' });
    expect(await core.redis.hmget(keys.request(fromDiscord.id), 'requesterUserId', 'allowSelf', 'required')).toEqual(['9999', '0', '1']);
  });

  it('logs a warning naming the request and what is wrong with it', async () => {
    const lines: string[] = [];
    const logger = createLogger('test', 'warn', { write: (line: string) => lines.push(line) });
    const watched = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix: core.prefix, logger });
    try {
      const request = await openSnapshotRequest();
      await core.redis.hset(approvalKeys(core.prefix).request(request.id), 'required', '0');
      expect(await isGenuineRequest(watched, request.id)).toBe(false);
      expect(lines.map((line) => JSON.parse(line))).toContainEqual(
        expect.objectContaining({ msg: 'refused a forged or altered approval request', requestId: request.id, problem: 'its required was changed in Redis ("0" instead of "1")' }),
      );
    } finally {
      await watched.close();
    }
  });

  it('answers forged to a click on an altered request, counts nothing, and audits who clicked', async () => {
    const keys = approvalKeys(core.prefix);
    const request = await openSnapshotRequest({ required: 2 });
    await core.redis.hset(keys.request(request.id), 'required', '1');
    expect(await decideApproval(core, { id: request.id, actor: ADMIN, decision: 'approve' })).toEqual({ outcome: 'forged', approvals: 0, state: null });
    expect(await core.redis.scard(keys.approvals(request.id))).toBe(0);
    expect(await core.redis.hget(keys.request(request.id), 'status')).toBe('pending');
    expect((await auditOf(request.id)).at(-1)).toMatchObject({ event: 'refused', actor: ADMIN.id, detail: 'not acted on: its required was changed in Redis ("1" instead of "2")' });
  });

  it('refuses a request the control process sealed but this process cannot read (another format, another id), and one that is gone', async () => {
    const keys = approvalKeys(core.prefix);
    const genuine = await openSnapshotRequest();
    const sealed = (id: string, data: string) => ({ data, seal: core.signer.sign('snapbot-approval-request/v1', { id, data }), status: 'pending' });
    const cases: Array<[string, string]> = [
      ['feedfeedfeed0001', JSON.stringify({ ...genuine, required: 'two' })],
      ['feedfeedfeed0002', JSON.stringify(genuine)],
    ];
    for (const [id, data] of cases) {
      await core.redis.hset(keys.request(id), sealed(id, data));
      expect(await isGenuineRequest(core, id)).toBe(false);
    }
    expect(await isGenuineRequest(core, 'ffffffffffff0099')).toBe(false);
    const refusals = (await readAudit(core, { limit: 20 })).filter((entry) => entry.event === 'refused').slice(0, 3).reverse();
    expect(refusals.map((entry) => [entry.action, entry.actor, entry.detail])).toEqual([
      ['approval', 'snapbot', 'not acted on: the sealed request does not parse'],
      // The copy under another id reads as the original request, so the refusal names its subject.
      ['revert', 'snapbot', 'not acted on: the sealed request does not parse'],
      ['approval', 'snapbot', 'not acted on: the request is gone'],
    ]);
  });
});

describe('acting on an approval', () => {
  it('hands back an approved request whose votes the control process sealed', async () => {
    const request = await openSnapshotRequest({ required: 2 });
    await decideApproval(core, { id: request.id, actor: ADMIN, decision: 'approve' });
    await decideApproval(core, { id: request.id, actor: OTHER, decision: 'approve' });
    const state = await genuineApproval(core, request.id);
    expect(state).toMatchObject({ status: 'approved', approvals: ['1001', '1002'] });
  });

  it('refuses (FORBIDDEN) a request that is still pending, or gone, and audits it', async () => {
    const pending = await openSnapshotRequest();
    await expect(genuineApproval(core, pending.id)).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message: `Approval request ${pending.id} cannot be acted on: it is pending, not approved. Nothing was done.`,
    });
    expect((await auditOf(pending.id)).at(-1)).toMatchObject({ event: 'refused', actor: 'snapbot', detail: 'not acted on: it is pending, not approved' });
    await expect(genuineApproval(core, 'ffffffffffff0002')).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message: 'Approval request ffffffffffff0002 cannot be acted on: the request is gone. Nothing was done.',
    });
  });

  it('refuses an approval whose status or votes were written by hand', async () => {
    const keys = approvalKeys(core.prefix);
    // Status flipped and the approvers' set filled, without the control process's seals.
    const flipped = await openSnapshotRequest({ required: 2 });
    await core.redis.multi().hset(keys.request(flipped.id), 'status', 'approved').sadd(keys.approvals(flipped.id), '1001', '1002').exec();
    await expect(genuineApproval(core, flipped.id)).rejects.toMatchObject({ code: 'FORBIDDEN', message: expect.stringContaining('only 0 of the 2 approval(s) it needs were sealed by the control process') });
    // One real vote; the second one's seal copied from the first (a seal names its voter).
    const copied = await openSnapshotRequest({ required: 2 });
    await decideApproval(core, { id: copied.id, actor: ADMIN, decision: 'approve' });
    const vote = (await core.redis.hget(keys.request(copied.id), `vote:${ADMIN.userId}`))!;
    await core.redis.multi().hset(keys.request(copied.id), 'status', 'approved', `vote:${OTHER.userId}`, vote).sadd(keys.approvals(copied.id), OTHER.userId).exec();
    await expect(genuineApproval(core, copied.id)).rejects.toMatchObject({ message: expect.stringContaining('only 1 of the 2 approval(s)') });
    // A vote sealed at the expiry instant does not count; a sealed vote's time changed no longer verifies;
    // one that is not JSON counts for nothing.
    const atExpiry = Date.parse(copied.expiresAt);
    // The control process's seal on a vote just before the expiry: that one counts.
    const inTime = JSON.stringify({ at: atExpiry - 1, seal: core.signer.sign('snapbot-approval-vote/v1', { id: copied.id, userId: OTHER.userId, at: atExpiry - 1 }) });
    await core.redis.hset(keys.request(copied.id), `vote:${OTHER.userId}`, inTime);
    expect((await genuineApproval(core, copied.id)).approvals).toEqual([ADMIN.userId, OTHER.userId]);
    const lateVote = JSON.stringify({ at: atExpiry, seal: core.signer.sign('snapbot-approval-vote/v1', { id: copied.id, userId: OTHER.userId, at: atExpiry }) });
    for (const forged of [lateVote, JSON.stringify({ ...JSON.parse(vote), at: atExpiry - 1 }), 'not json', JSON.stringify({ at: String(JSON.parse(vote).at), seal: JSON.parse(vote).seal })]) {
      await core.redis.hset(keys.request(copied.id), `vote:${OTHER.userId}`, forged);
      await expect(genuineApproval(core, copied.id)).rejects.toMatchObject({ message: expect.stringContaining('only 1 of the 2 approval(s)') });
    }
  });

  it("does not count the requester's own sealed vote unless the rule allows self-approval", async () => {
    const keys = approvalKeys(core.prefix);
    // The requester's vote, sealed while self-approval was allowed on another request, cannot be moved here.
    const strict = await openSnapshotRequest({ requesterUserId: ADMIN.userId });
    const lenient = await openSnapshotRequest({ requesterUserId: ADMIN.userId, allowSelfApproval: true });
    await decideApproval(core, { id: lenient.id, actor: ADMIN, decision: 'approve' });
    expect((await genuineApproval(core, lenient.id)).approvals).toEqual([ADMIN.userId]);
    // A vote sealed for this very request and user, but by the requester on a strict rule: written in by hand.
    const at = (await core.redis.time()).map(Number)[0]! * 1000;
    const seal = core.signer.sign('snapbot-approval-vote/v1', { id: strict.id, userId: ADMIN.userId, at });
    await core.redis.multi().hset(keys.request(strict.id), 'status', 'approved', `vote:${ADMIN.userId}`, JSON.stringify({ at, seal })).sadd(keys.approvals(strict.id), ADMIN.userId).exec();
    await expect(genuineApproval(core, strict.id)).rejects.toMatchObject({ message: expect.stringContaining('only 0 of the 1 approval(s)') });
  });
});

describe('a schedule awaiting approval', () => {
  const schedule = (name: string): ApprovalSubject => ({ kind: 'schedule', name, version: 3, digest: 'ab'.repeat(32), target: 'vm:web-*', cadence: 'cron "30 2 * * *" (UTC)', keep: 'last=7', vms: 4 });

  it("is named and audited by the schedule, and its decision is mirrored on the schedule's own record", async () => {
    counter += 1;
    const name = `nightly-${counter}`;
    const id = `5c4ed01e${String(counter).padStart(8, '0')}`;
    const subject = schedule(name);
    const record = scheduleKeys(core.prefix).schedule(name);
    expect(subjectRecord(core.prefix, subject)).toBe(record);
    await core.redis.hset(record, 'status', 'pending');
    const request = await openApproval(core, {
      id,
      subject,
      terms: { approvers: ['@administrators'], required: 1, allowSelfApproval: false, ttlMinutes: 15, reason: 'schedules that prune need approval' },
      requester: { id: 'discord:9999', userId: '9999', displayName: 'ops' },
      origin: 'discord',
    });
    expect(describeRequest(request)).toBe(`Schedule ${name}`);
    expect(auditAbout(subject, id)).toEqual({ action: 'schedule', requestId: id, detail: `${name} (version 3): vm:web-*` });
    // No mirror given: the schedule's record is found from the subject.
    expect((await decideApproval(core, { id, actor: ADMIN, decision: 'approve' })).outcome).toBe('approved');
    expect(await mirrorStatus(record)).toBe('approved');
  });

  it('expires with its schedule record when no mirror is named', async () => {
    counter += 1;
    const name = `hourly-${counter}`;
    const id = `5c4ed01e${String(counter).padStart(8, '0')}`;
    const record = scheduleKeys(core.prefix).schedule(name);
    await core.redis.hset(record, 'status', 'pending');
    await openApproval(core, {
      id,
      subject: schedule(name),
      terms: { approvers: ['@administrators'], required: 1, allowSelfApproval: false, ttlMinutes: 0.005, reason: 'r' },
      requester: { id: 'discord:9999', userId: '9999', displayName: 'ops' },
      origin: 'discord',
    });
    await sleep(600);
    expect((await expireDueApprovals(core)).map((state) => state.request.id)).toContain(id);
    expect(await mirrorStatus(record)).toBe('expired');
  });

  it('names no record for a single snapshot', () => {
    expect(subjectRecord(core.prefix, SNAPSHOT)).toBeUndefined();
    expect(subjectRecord(core.prefix, { kind: 'fleet', runId: 'r1', action: 'delete', selector: 'all', name: 'x', targets: 1 })).toBe(fleetKeys(core.prefix, 'r1').run);
  });
});

describe('what a decision leaves behind', () => {
  it('lists approvers in one order whatever order they clicked in, Discord users and snapctl operators alike', async () => {
    const request = await openSnapshotRequest({ required: 4 });
    for (const userId of ['operator:zed', '3003', 'operator:amy', '1001']) {
      await decideApproval(core, { id: request.id, actor: { ...ADMIN, id: `discord:${userId}`, userId }, decision: 'approve' });
    }
    expect((await getApproval(core, request.id))?.approvals).toEqual(['1001', '3003', 'operator:amy', 'operator:zed']);
  });

  it('drops from the pending list a request whose record is gone', async () => {
    const keys = approvalKeys(core.prefix);
    const request = await openSnapshotRequest({ ttlMinutes: 0.005 });
    await core.redis.del(keys.request(request.id));
    await sleep(600);
    expect((await expireDueApprovals(core)).map((state) => state.request.id)).not.toContain(request.id);
    expect(await core.redis.zscore(keys.pending, request.id)).toBeNull();
  });

  it('expires a request once, and audits it once, when two sweepers run at the same time', async () => {
    const request = await openSnapshotRequest({ ttlMinutes: 0.005 });
    await sleep(600);
    const [first, second] = await Promise.all([expireDueApprovals(core), expireDueApprovals(core)]);
    const ids = [...first, ...second].map((state) => state.request.id);
    expect(ids.filter((id) => id === request.id)).toHaveLength(1);
    expect((await auditOf(request.id)).filter((entry) => entry.event === 'expired')).toHaveLength(1);
  });

  it('audits the request with its reason, count, approvers and expiry, and each approval with its count', async () => {
    const request = await openSnapshotRequest({ required: 2 });
    await decideApproval(core, { id: request.id, actor: ADMIN, decision: 'approve' });
    await decideApproval(core, { id: request.id, actor: OTHER, decision: 'approve' });
    const entries = await auditOf(request.id);
    expect(entries.map((entry) => [entry.event, entry.actor, entry.detail])).toEqual([
      ['requested', 'snapctl:ops@host', `reverts need approval; needs 2 approval(s) from @administrators, user:4242 by ${request.expiresAt}`],
      ['approved', ADMIN.id, '1 of 2 approval(s)'],
      ['approved', OTHER.id, '2 of 2 approval(s)'],
    ]);
  });

  it('audits nothing for a click that did not count', async () => {
    const request = await openSnapshotRequest({ required: 2, requesterUserId: ADMIN.userId });
    const stranger: Actor = { ...OTHER, id: 'discord:5', userId: '5', isAdministrator: false };
    expect((await decideApproval(core, { id: request.id, actor: ADMIN, decision: 'approve' })).outcome).toBe('self');
    expect((await decideApproval(core, { id: request.id, actor: stranger, decision: 'approve' })).outcome).toBe('not-approver');
    await decideApproval(core, { id: request.id, actor: OTHER, decision: 'approve' });
    expect((await decideApproval(core, { id: request.id, actor: OTHER, decision: 'approve' })).outcome).toBe('duplicate');
    expect((await auditOf(request.id)).map((entry) => entry.event)).toEqual(['requested', 'approved']);
    // A click on a closed request is not audited either, and says how many approvals it had.
    await decideApproval(core, { id: request.id, actor: { ...OTHER, id: 'discord:1003', userId: '1003' }, decision: 'deny' });
    expect(await decideApproval(core, { id: request.id, actor: { ...OTHER, id: 'discord:1004', userId: '1004' }, decision: 'approve' })).toMatchObject({ outcome: 'closed:denied', approvals: 1 });
    expect((await auditOf(request.id)).map((entry) => entry.event)).toEqual(['requested', 'approved', 'denied']);
  });

  it('records who denied, takes the request out of the pending list, and keeps it readable for a week', async () => {
    const keys = approvalKeys(core.prefix);
    const request = await openSnapshotRequest();
    expect(await core.redis.zscore(keys.pending, request.id)).toBe(String(Date.parse(request.expiresAt)));
    expect(await core.redis.ttl(keys.request(request.id))).toBe(-1);
    const result = await decideApproval(core, { id: request.id, actor: OTHER, decision: 'deny' });
    expect(result).toMatchObject({ outcome: 'denied', approvals: 0, state: { status: 'denied', deniedBy: OTHER.userId } });
    expect(await core.redis.zscore(keys.pending, request.id)).toBeNull();
    expect(await approvedNotActed(core)).not.toContain(request.id);
    const ttl = await core.redis.ttl(keys.request(request.id));
    expect(ttl).toBeGreaterThan(7 * 24 * 3600 - 60);
    expect(ttl).toBeLessThanOrEqual(7 * 24 * 3600);
    expect((await auditOf(request.id)).at(-1)).toMatchObject({ event: 'denied', actor: OTHER.id, action: 'revert' });
  });

  it('keeps an approved, withdrawn or expired request readable for a week, and leaves a counted one open', async () => {
    const keys = approvalKeys(core.prefix);
    const week = 7 * 24 * 3600;
    const counted = await openSnapshotRequest({ required: 2 });
    expect(await decideApproval(core, { id: counted.id, actor: ADMIN, decision: 'approve' })).toMatchObject({ outcome: 'counted', approvals: 1, state: { status: 'pending', approvals: [ADMIN.userId] } });
    expect(await core.redis.ttl(keys.request(counted.id))).toBe(-1);
    expect(await core.redis.zscore(keys.pending, counted.id)).not.toBeNull();
    expect(await approvedNotActed(core)).not.toContain(counted.id);
    const approved = await decideApproval(core, { id: counted.id, actor: OTHER, decision: 'approve' });
    expect(approved).toMatchObject({ outcome: 'approved', approvals: 2, state: { status: 'approved' } });
    expect(await core.redis.zscore(keys.pending, counted.id)).toBeNull();
    expect(await core.redis.ttl(keys.request(counted.id))).toBeGreaterThan(week - 60);
    const withdrawn = await openSnapshotRequest();
    expect(await withdrawApproval(core, { id: withdrawn.id, by: 'snapctl:ops@host' })).toBe(true);
    expect(await core.redis.ttl(keys.request(withdrawn.id))).toBeGreaterThan(week - 60);
    expect(await core.redis.zscore(keys.pending, withdrawn.id)).toBeNull();
    expect(await getApproval(core, withdrawn.id)).toMatchObject({ status: 'withdrawn', withdrawnBy: 'snapctl:ops@host' });
    expect((await auditOf(withdrawn.id)).at(-1)).toMatchObject({ event: 'cancelled', actor: 'snapctl:ops@host', action: 'revert', detail: 'withdrawn before approval; nothing ran' });
    expect(await withdrawApproval(core, { id: withdrawn.id, by: 'x' })).toBe(false);
    expect((await auditOf(withdrawn.id)).filter((entry) => entry.event === 'cancelled')).toHaveLength(1);
    const expiring = await openSnapshotRequest({ ttlMinutes: 0.005, required: 2 });
    await decideApproval(core, { id: expiring.id, actor: ADMIN, decision: 'approve' });
    await sleep(600);
    const expired = await expireDueApprovals(core);
    expect(expired.find((state) => state.request.id === expiring.id)).toMatchObject({ status: 'expired', approvals: [ADMIN.userId] });
    expect(await core.redis.ttl(keys.request(expiring.id))).toBeGreaterThan(week - 60);
    expect(await core.redis.zscore(keys.pending, expiring.id)).toBeNull();
    expect((await auditOf(expiring.id)).at(-1)).toMatchObject({ event: 'expired', actor: 'snapbot', detail: `1 of 2 approval(s) by ${expiring.expiresAt}` });
    // Expiring again finds nothing to do.
    expect((await expireDueApprovals(core)).map((state) => state.request.id)).not.toContain(expiring.id);
  });

  it('expires a request on a late click: the click is not counted, and the audit names it', async () => {
    const keys = approvalKeys(core.prefix);
    const request = await openSnapshotRequest({ ttlMinutes: 0.005 });
    await sleep(600);
    const result = await decideApproval(core, { id: request.id, actor: ADMIN, decision: 'approve' });
    expect(result).toMatchObject({ outcome: 'expired', approvals: 0, state: { status: 'expired', approvals: [] } });
    expect(await core.redis.zscore(keys.pending, request.id)).toBeNull();
    expect(await core.redis.ttl(keys.request(request.id))).toBeGreaterThan(7 * 24 * 3600 - 60);
    expect((await auditOf(request.id)).at(-1)).toMatchObject({ event: 'expired', actor: 'snapbot', detail: `a click by ${ADMIN.id} came after ${request.expiresAt}` });
  });

  it("does not touch a subject's record that is no longer pending", async () => {
    const { id, mirror } = await openFleetRequest(15, 1);
    await core.redis.hset(mirror, 'status', 'cancelled');
    expect((await decideApproval(core, { id, actor: ADMIN, decision: 'approve', mirror })).outcome).toBe('approved');
    expect(await mirrorStatus(mirror)).toBe('cancelled');
  });

  it('mirrors a denial, and an expiry found by a late click, on the run', async () => {
    const denied = await openFleetRequest(15, 1);
    await decideApproval(core, { id: denied.id, actor: ADMIN, decision: 'deny', mirror: denied.mirror });
    expect(await mirrorStatus(denied.mirror)).toBe('denied');
    const late = await openFleetRequest(0.005, 1);
    await sleep(600);
    expect((await decideApproval(core, { id: late.id, actor: ADMIN, decision: 'approve' })).outcome).toBe('expired');
    expect(await mirrorStatus(late.mirror)).toBe('expired');
  });
});

describe('waiting for a decision (snapctl), what it says', () => {
  it('names who denied and who withdrew, when it expired, and how long it waited', async () => {
    const denied = await openSnapshotRequest();
    await decideApproval(core, { id: denied.id, actor: ADMIN, decision: 'deny' });
    await expect(awaitApproval(core, denied.id, { timeoutMs: 1_000 })).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message: `Approval request ${denied.id} was denied (by Discord user ${ADMIN.userId}). Nothing was done.`,
    });
    const withdrawn = await openFleetRequest(15, 1);
    await withdrawApproval(core, { id: withdrawn.id, by: 'snapctl:ops@host' });
    await expect(awaitApproval(core, withdrawn.id, { timeoutMs: 1_000 })).rejects.toMatchObject({
      code: 'CANCELLED',
      message: `Fleet run ${withdrawn.id} was withdrawn by snapctl:ops@host. Nothing was done.`,
    });
    const expiring = await openSnapshotRequest({ ttlMinutes: 0.005 });
    await expect(awaitApproval(core, expiring.id, { timeoutMs: 5_000, pollMs: 50 })).rejects.toMatchObject({
      message: `Approval request ${expiring.id} expired at ${expiring.expiresAt} without enough approvals. Nothing was done.`,
    });
    const open = await openSnapshotRequest();
    await expect(awaitApproval(core, open.id, { timeoutMs: 1_400, pollMs: 50 })).rejects.toMatchObject({
      message: `No decision on approval request ${open.id} within 1s; it stays open until ${open.expiresAt}.`,
    });
    await expect(awaitApproval(core, 'ffffffffffff0003', { timeoutMs: 200 })).rejects.toMatchObject({ message: 'Approval request ffffffffffff0003 vanished from Redis.' });
  });

  it('waits about half a second between looks unless told otherwise', async () => {
    const request = await openSnapshotRequest();
    const started = Date.now();
    await expect(awaitApproval(core, request.id, { timeoutMs: 100 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(450);
    expect(waited).toBeLessThan(5_000);
  });

  it('expires the record it is told about when the request runs out while it waits', async () => {
    const { id, mirror } = await openFleetRequest(0.005, 1);
    const elsewhere = `${mirror}:elsewhere`;
    await core.redis.hset(elsewhere, 'status', 'pending');
    await expect(awaitApproval(core, id, { timeoutMs: 5_000, pollMs: 50, mirrorOf: () => elsewhere })).rejects.toMatchObject({ code: 'APPROVAL_EXPIRED' });
    expect(await mirrorStatus(elsewhere)).toBe('expired');
  });
});
