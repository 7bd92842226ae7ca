import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { approvedNotActed, decideApproval, expireDueApprovals, getApproval, markActedOn, openApproval, withdrawApproval, type ApprovalSubject } from '../../../../bot/core/approvals.js';
import type { Actor } from '../../../../bot/core/authorize.js';
import { SnapbotCore } from '../../../../bot/core/core.js';
import { fleetKeys } from '../../../../shared/fleet.js';
import { createLogger } from '../../../../shared/logger.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../../../helpers/redis.js';

/**
 * Approvals expire by Redis's clock, the one clock every bot process and snapctl share:
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
  core = await SnapbotCore.connect({ redisUrl: redis.url, prefix: uniquePrefix('approvals-clock'), logger: createLogger('test', 'silent') });
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
