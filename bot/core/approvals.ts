import { z } from 'zod';
import { SnapbotError } from '../../shared/errors.js';
import { snapshotInfoSchema, snapshotModeSchema } from '../../shared/jobs.js';
import { fleetKeys } from '../../shared/fleet.js';
import { approvalKeys, botKeys } from '../../shared/keys.js';
import { scheduleKeys } from '../../shared/schedules/definition.js';
import { recordAudit, type AuditEntry } from './audit.js';
import { isApprover, type Actor } from './authorize.js';
import type { SnapbotCore } from './core.js';
import { redisNow } from './redis-clock.js';

/**
 * Approvals, for any subject: a revert or delete of one snapshot, a fleet run (and later
 * a schedule). A request names who may approve, how many must, whether the requester
 * counts, and when it expires; every decision (approve, deny, expire, withdraw) is one
 * atomic script in Redis with Redis's own clock, so concurrent clicks, several bot
 * processes and skewed clocks cannot decide a request twice or after its expiry.
 *
 * States: pending → approved | denied | expired | withdrawn (all final). An approved
 * request is listed in `to-act` until its subject's action was taken, so a process that
 * dies in between leaves it for the next sweep.
 */

export const requesterSchema = z.object({ id: z.string(), userId: z.string().nullable(), displayName: z.string() });
export type Requester = z.infer<typeof requesterSchema>;

/** A revert or delete of one snapshot, bound to the snapshot's creation time. */
export const snapshotSubjectSchema = z.object({
  kind: z.literal('snapshot'),
  action: z.enum(['revert', 'delete']),
  host: z.string(),
  vm: z.string(),
  uuid: z.string(),
  /** The snapshot as it was when approval was asked; the worker checks its creation time again. */
  snapshot: snapshotInfoSchema,
  undoPoint: z.object({ mode: snapshotModeSchema, keep: z.number().int() }).nullable(),
  /** The job that runs the approved action; a fixed id makes enqueueing it idempotent. */
  jobId: z.string(),
});
export type SnapshotSubject = z.infer<typeof snapshotSubjectSchema>;

/** A fleet run; the run itself (bot/core/fleet) holds its targets. */
export const fleetSubjectSchema = z.object({
  kind: z.literal('fleet'),
  runId: z.string(),
  action: z.enum(['snapshot', 'delete']),
  selector: z.string(),
  name: z.string(),
  targets: z.number().int(),
});
export type FleetSubject = z.infer<typeof fleetSubjectSchema>;

/**
 * A schedule whose snapshots will be pruned on VMs whose deletes need approval: approved
 * once, for one version of its definition (`digest`); a changed definition asks again.
 */
export const scheduleSubjectSchema = z.object({
  kind: z.literal('schedule'),
  name: z.string(),
  version: z.number().int(),
  /** SHA-256 of the definition's canonical JSON, as approved. */
  digest: z.string(),
  target: z.string(),
  /** The cadence and keep spec in words, for approvers. */
  cadence: z.string(),
  keep: z.string(),
  /** VMs the target matched when approval was asked. */
  vms: z.number().int(),
});
export type ScheduleSubject = z.infer<typeof scheduleSubjectSchema>;

export const approvalSubjectSchema = z.discriminatedUnion('kind', [snapshotSubjectSchema, fleetSubjectSchema, scheduleSubjectSchema]);
export type ApprovalSubject = z.infer<typeof approvalSubjectSchema>;

export const approvalRequestSchema = z.object({
  id: z.string(),
  subject: approvalSubjectSchema,
  requester: requesterSchema,
  origin: z.enum(['discord', 'snapctl']),
  /** Why approval is needed (the policy rule), shown to approvers. */
  reason: z.string(),
  requestedAt: z.string(),
  /** By Redis's clock. */
  expiresAt: z.string(),
  required: z.number().int(),
  allowSelfApproval: z.boolean(),
  approvers: z.array(z.string()),
});
export type ApprovalRequest = z.infer<typeof approvalRequestSchema>;

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'withdrawn';

export interface ApprovalState {
  request: ApprovalRequest;
  status: ApprovalStatus;
  approvals: string[];
  deniedBy: string | null;
  withdrawnBy: string | null;
  message: { channelId: string; messageId: string } | null;
}

export type DecisionOutcome = 'missing' | 'forged' | 'not-approver' | 'self' | 'duplicate' | 'counted' | 'approved' | 'denied' | 'expired' | `closed:${ApprovalStatus}`;

/** Closed requests stay readable this long (the audit stream keeps the history). */
const CLOSED_RETENTION_SECONDS = 7 * 24 * 3600;

/**
 * The status a subject's own record takes when its request is decided: a fleet run's
 * `status` field follows its approval inside the same script, so no reader ever sees an
 * approved request on a run still pending (or the other way round).
 */
const MIRROR_LUA = `
local function mirror(status)
  if KEYS[MIRROR] and redis.call('HGET', KEYS[MIRROR], 'status') == 'pending' then
    redis.call('HSET', KEYS[MIRROR], 'status', status)
  end
end
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

// KEYS: request hash, approvals set, pending zset, to-act set, [mirror hash]. ARGV: user id, decision, request id, the vote's seal.
const DECIDE_SCRIPT = `${MIRROR_LUA.replaceAll('MIRROR', '5')}
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', 0} end
if status ~= 'pending' then return {'closed:' .. status, redis.call('SCARD', KEYS[2])} end
if now() >= tonumber(redis.call('HGET', KEYS[1], 'expiresAtMs')) then
  redis.call('HSET', KEYS[1], 'status', 'expired')
  redis.call('ZREM', KEYS[3], ARGV[3])
  mirror('expired')
  return {'expired', redis.call('SCARD', KEYS[2])}
end
if ARGV[1] == redis.call('HGET', KEYS[1], 'requesterUserId') and redis.call('HGET', KEYS[1], 'allowSelf') ~= '1' then
  return {'self', redis.call('SCARD', KEYS[2])}
end
if ARGV[2] == 'deny' then
  redis.call('HSET', KEYS[1], 'status', 'denied', 'deniedBy', ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[3])
  mirror('denied')
  return {'denied', redis.call('SCARD', KEYS[2])}
end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return {'duplicate', redis.call('SCARD', KEYS[2])} end
redis.call('HSET', KEYS[1], 'vote:' .. ARGV[1], ARGV[4])
local count = redis.call('SCARD', KEYS[2])
if count >= tonumber(redis.call('HGET', KEYS[1], 'required')) then
  redis.call('HSET', KEYS[1], 'status', 'approved')
  redis.call('ZREM', KEYS[3], ARGV[3])
  redis.call('SADD', KEYS[4], ARGV[3])
  mirror('approved')
  return {'approved', count}
end
return {'counted', count}
`;

// KEYS: request hash, pending zset, expired-to-show set, [mirror hash]. ARGV: request id.
// Returns 1 when this call expired it. A request with a chat message is listed to be
// redrawn in the same step, so whichever process expires it (snapctl, a control process
// without Discord, a bot that dies next), a bot redraws it later.
const EXPIRE_SCRIPT = `${MIRROR_LUA.replaceAll('MIRROR', '4')}
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' then redis.call('ZREM', KEYS[2], ARGV[1]) return 0 end
if now() < tonumber(redis.call('HGET', KEYS[1], 'expiresAtMs')) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'expired')
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HEXISTS', KEYS[1], 'message') == 1 then redis.call('SADD', KEYS[3], ARGV[1]) end
mirror('expired')
return 1
`;

// KEYS: request hash, pending zset, [mirror hash]. ARGV: request id, who. Returns 1 when this call withdrew it.
const WITHDRAW_SCRIPT = `${MIRROR_LUA.replaceAll('MIRROR', '3')}
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'withdrawn', 'withdrawnBy', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
mirror('discarded')
return 1
`;

/** The subject's own record whose `status` follows the request (a fleet run's hash), if any. */
export type MirrorKey = string | undefined;

/** The record whose `status` follows a subject's request: a fleet run's hash, a schedule's hash; none for one snapshot. */
export function subjectRecord(prefix: string, subject: ApprovalSubject): MirrorKey {
  if (subject.kind === 'fleet') return fleetKeys(prefix, subject.runId).run;
  if (subject.kind === 'schedule') return scheduleKeys(prefix).schedule(subject.name);
  return undefined;
}

/** What the audit trail says about a subject. */
export function auditAbout(subject: ApprovalSubject, requestId: string): Omit<AuditEntry, 'id' | 'at' | 'event' | 'actor'> {
  if (subject.kind === 'schedule') return { action: 'schedule', requestId, detail: `${subject.name} (version ${subject.version}): ${subject.target}` };
  return subject.kind === 'snapshot'
    ? { action: subject.action, host: subject.host, vm: subject.vm, snapshot: subject.snapshot.name, requestId }
    : { action: `fleet-${subject.action}`, requestId, snapshot: subject.name, detail: subject.selector };
}

/** "Approval request 1a2b…" or "Fleet run 3c4d…": how messages name the request. */
export function describeRequest(request: ApprovalRequest): string {
  if (request.subject.kind === 'schedule') return `Schedule ${request.subject.name}`;
  return request.subject.kind === 'fleet' ? `Fleet run ${request.subject.runId}` : `Approval request ${request.id}`;
}

/** Who must approve, how many, whether the requester counts, for how long, and why approval is needed. */
export interface ApprovalTerms {
  approvers: string[];
  required: number;
  allowSelfApproval: boolean;
  ttlMinutes: number;
  reason: string;
}

export interface OpenApprovalInput {
  id: string;
  subject: ApprovalSubject;
  terms: ApprovalTerms;
  requester: Requester;
  origin: ApprovalRequest['origin'];
  mirror?: MirrorKey;
}

/**
 * Opens a request: pending until enough approvers say yes, one says no, its requester
 * withdraws it, or it expires (by Redis's clock). Requests opened outside Discord wait
 * in `to-post` for a bot to post them.
 */
export async function openApproval(core: SnapbotCore, input: OpenApprovalInput): Promise<ApprovalRequest> {
  const keys = approvalKeys(core.prefix);
  const now = await redisNow(core);
  const expiresAtMs = now + input.terms.ttlMinutes * 60_000;
  const request: ApprovalRequest = {
    id: input.id,
    subject: input.subject,
    requester: input.requester,
    origin: input.origin,
    reason: input.terms.reason,
    requestedAt: new Date(now).toISOString(),
    expiresAt: new Date(expiresAtMs).toISOString(),
    required: input.terms.required,
    allowSelfApproval: input.terms.allowSelfApproval,
    approvers: input.terms.approvers,
  };
  const data = JSON.stringify(request);
  const transaction = core.redis
    .multi()
    .hset(keys.request(input.id), {
      data,
      // Only the control process can make this: a request written into Redis by anyone else is not one.
      seal: core.signer.sign(REQUEST_SEAL_DOMAIN, { id: input.id, data }),
      status: 'pending',
      expiresAtMs: String(expiresAtMs),
      requesterUserId: input.requester.userId ?? '',
      required: String(input.terms.required),
      allowSelf: input.terms.allowSelfApproval ? '1' : '0',
    })
    .zadd(keys.pending, expiresAtMs, input.id);
  if (input.origin === 'snapctl') transaction.rpush(keys.toPost, input.id);
  await transaction.exec();
  await recordAudit(core, {
    ...auditAbout(input.subject, input.id),
    event: 'requested',
    actor: input.requester.id,
    detail: `${input.terms.reason}; needs ${input.terms.required} approval(s) from ${input.terms.approvers.join(', ')} by ${request.expiresAt}`,
  });
  return request;
}

const REQUEST_SEAL_DOMAIN = 'snapbot-approval-request/v1';
const VOTE_SEAL_DOMAIN = 'snapbot-approval-vote/v1';

/**
 * What is wrong with a request's record, when it is not exactly as the control process
 * wrote it: its seal, or the fields the decision script reads (expiry, required count,
 * requester, self-approval) changed behind its back. null when it is genuine.
 */
async function sealProblem(core: SnapbotCore, id: string): Promise<string | null> {
  const fields = await core.redis.hgetall(approvalKeys(core.prefix).request(id));
  if (!fields.data) return 'the request is gone';
  if (!core.signer.verify(REQUEST_SEAL_DOMAIN, { id, data: fields.data }, fields.seal)) return 'the request was not opened by the control process (no valid seal)';
  const parsed = approvalRequestSchema.safeParse(JSON.parse(fields.data));
  if (!parsed.success || parsed.data.id !== id) return 'the sealed request does not parse';
  const request = parsed.data;
  const expected = {
    expiresAtMs: String(Date.parse(request.expiresAt)),
    required: String(request.required),
    requesterUserId: request.requester.userId ?? '',
    allowSelf: request.allowSelfApproval ? '1' : '0',
  };
  for (const [field, value] of Object.entries(expected)) {
    if (fields[field] !== value) return `its ${field} was changed in Redis (${JSON.stringify(fields[field] ?? null)} instead of ${JSON.stringify(value)})`;
  }
  return null;
}

/** Whether the request is as the control process opened it (a forged one is audited, never posted or acted on). */
export async function isGenuineRequest(core: SnapbotCore, id: string): Promise<boolean> {
  const problem = await sealProblem(core, id);
  if (problem) await refuseForged(core, (await getApproval(core, id).catch(() => null))?.request ?? null, 'snapbot', problem);
  return problem === null;
}

async function refuseForged(core: SnapbotCore, request: ApprovalRequest | null, actor: string, problem: string): Promise<void> {
  core.logger.warn({ requestId: request?.id, problem }, 'refused a forged or altered approval request');
  await recordAudit(core, {
    ...(request ? auditAbout(request.subject, request.id) : { action: 'approval' }),
    event: 'refused',
    actor,
    detail: `not acted on: ${problem}`,
  });
}

/**
 * The request as the control process opened it, approved by enough distinct approvers
 * whose votes it sealed before the expiry — or FORBIDDEN (audited), whatever the Redis
 * record's `status` says. Called before any approved action is taken.
 */
export async function genuineApproval(core: SnapbotCore, id: string): Promise<ApprovalState> {
  const state = await getApproval(core, id);
  const problem = (await sealProblem(core, id)) ?? (state ? voteProblem(core, state, await core.redis.hgetall(approvalKeys(core.prefix).request(id))) : 'the request is gone');
  if (problem || !state) {
    await refuseForged(core, state?.request ?? null, 'snapbot', problem ?? 'the request is gone');
    throw new SnapbotError('FORBIDDEN', `Approval request ${id} cannot be acted on: ${problem}. Nothing was done.`);
  }
  return state;
}

function voteProblem(core: SnapbotCore, state: ApprovalState, fields: Record<string, string>): string | null {
  const { request } = state;
  if (state.status !== 'approved') return `it is ${state.status}, not approved`;
  const expiresAt = Date.parse(request.expiresAt);
  const counted = state.approvals.filter((userId) => {
    if (userId === request.requester.userId && !request.allowSelfApproval) return false;
    const raw = fields[`vote:${userId}`];
    if (!raw) return false;
    try {
      const vote = JSON.parse(raw) as { at?: unknown; seal?: unknown };
      return typeof vote.at === 'number' && vote.at < expiresAt && core.signer.verify(VOTE_SEAL_DOMAIN, { id: request.id, userId, at: vote.at }, vote.seal);
    } catch {
      return false;
    }
  });
  return counted.length >= request.required ? null : `only ${counted.length} of the ${request.required} approval(s) it needs were sealed by the control process`;
}

export async function getApproval(core: SnapbotCore, id: string): Promise<ApprovalState | null> {
  const keys = approvalKeys(core.prefix);
  const [fields, approvals] = await Promise.all([core.redis.hgetall(keys.request(id)), core.redis.smembers(keys.approvals(id))]);
  if (!fields.data) return null;
  return {
    request: approvalRequestSchema.parse(JSON.parse(fields.data)),
    status: (fields.status ?? 'pending') as ApprovalStatus,
    approvals: approvals.sort(),
    deniedBy: fields.deniedBy || null,
    withdrawnBy: fields.withdrawnBy || null,
    message: fields.message ? (JSON.parse(fields.message) as ApprovalState['message']) : null,
  };
}

/** Expired requests whose chat message still shows live buttons (listed when they expired). */
export async function expiredToShow(core: SnapbotCore): Promise<string[]> {
  return core.redis.smembers(approvalKeys(core.prefix).expiredToShow);
}

/** The request's message shows it expired (or it has none to show): off the list. */
export async function markExpiryShown(core: SnapbotCore, id: string): Promise<void> {
  await core.redis.srem(approvalKeys(core.prefix).expiredToShow, id);
}

export async function setApprovalMessage(core: SnapbotCore, id: string, message: { channelId: string; messageId: string }): Promise<void> {
  await core.redis.hset(approvalKeys(core.prefix).request(id), 'message', JSON.stringify(message));
}

function mirrorKeys(mirror: MirrorKey): string[] {
  return mirror ? [mirror] : [];
}

/**
 * One approver's click. Only allowed approvers count, the requester's own click does
 * not (unless the rule allows it), a second click by the same person is not counted
 * again, one Deny closes the request, and the click that reaches the required number
 * is the only one that gets 'approved' — whatever else runs at the same time.
 */
export async function decideApproval(
  core: SnapbotCore,
  input: { id: string; actor: Actor; decision: 'approve' | 'deny'; mirror?: MirrorKey },
): Promise<{ outcome: DecisionOutcome; approvals: number; state: ApprovalState | null }> {
  const state = await getApproval(core, input.id);
  if (!state) return { outcome: 'missing', approvals: 0, state };
  const forgery = await sealProblem(core, input.id);
  if (forgery) {
    await refuseForged(core, state.request, input.actor.id, forgery);
    return { outcome: 'forged', approvals: 0, state: null };
  }
  if (!isApprover(state.request.approvers, input.actor)) return { outcome: 'not-approver', approvals: state.approvals.length, state };
  const keys = approvalKeys(core.prefix);
  const mirror = mirrorKeys(input.mirror ?? subjectRecord(core.prefix, state.request.subject));
  // Each counted approval carries the control process's seal, made when it took the click.
  const at = await redisNow(core);
  const vote = JSON.stringify({ at, seal: core.signer.sign(VOTE_SEAL_DOMAIN, { id: input.id, userId: input.actor.userId, at }) });
  const [outcome, approvals] = (await core.redis.eval(
    DECIDE_SCRIPT,
    4 + mirror.length,
    keys.request(input.id),
    keys.approvals(input.id),
    keys.pending,
    keys.toAct,
    ...mirror,
    input.actor.userId,
    input.decision,
    input.id,
    vote,
  )) as [DecisionOutcome, number];
  const { request } = state;
  const about = { ...auditAbout(request.subject, request.id), actor: input.actor.id };
  if (outcome === 'counted' || outcome === 'approved') await recordAudit(core, { ...about, event: 'approved', detail: `${approvals} of ${request.required} approval(s)` });
  else if (outcome === 'denied') await recordAudit(core, { ...about, event: 'denied' });
  else if (outcome === 'expired') await recordAudit(core, { ...about, actor: 'snapbot', event: 'expired', detail: `a click by ${input.actor.id} came after ${request.expiresAt}` });
  if (outcome === 'denied' || outcome === 'expired' || outcome === 'approved') await core.redis.expire(keys.request(input.id), CLOSED_RETENTION_SECONDS);
  return { outcome, approvals, state: await getApproval(core, input.id) };
}

/** Withdraws a pending request (its requester, or an admin); false when it was no longer pending. */
export async function withdrawApproval(core: SnapbotCore, input: { id: string; by: string; mirror?: MirrorKey }): Promise<boolean> {
  const keys = approvalKeys(core.prefix);
  const mirror = mirrorKeys(input.mirror);
  const changed = (await core.redis.eval(WITHDRAW_SCRIPT, 2 + mirror.length, keys.request(input.id), keys.pending, ...mirror, input.id, input.by)) === 1;
  if (!changed) return false;
  await core.redis.expire(keys.request(input.id), CLOSED_RETENTION_SECONDS);
  const state = await getApproval(core, input.id);
  if (state) await recordAudit(core, { ...auditAbout(state.request.subject, input.id), actor: input.by, event: 'cancelled', detail: 'withdrawn before approval; nothing ran' });
  return true;
}

/**
 * Marks every pending request past its expiry (by Redis's clock) as expired; returns
 * those this call expired. `mirrorOf` names a subject's own record to update with it.
 */
export async function expireDueApprovals(core: SnapbotCore, mirrorOf: (subject: ApprovalSubject) => MirrorKey = (subject) => subjectRecord(core.prefix, subject)): Promise<ApprovalState[]> {
  const keys = approvalKeys(core.prefix);
  const due = await core.redis.zrangebyscore(keys.pending, 0, await redisNow(core));
  const expired: ApprovalState[] = [];
  for (const id of due) {
    const before = await getApproval(core, id);
    const mirror = before ? mirrorKeys(mirrorOf(before.request.subject)) : [];
    const changed = (await core.redis.eval(EXPIRE_SCRIPT, 3 + mirror.length, keys.request(id), keys.pending, keys.expiredToShow, ...mirror, id)) as number;
    if (changed !== 1) continue;
    await core.redis.expire(keys.request(id), CLOSED_RETENTION_SECONDS);
    const state = await getApproval(core, id);
    if (!state) continue;
    await recordAudit(core, {
      ...auditAbout(state.request.subject, id),
      event: 'expired',
      actor: 'snapbot',
      detail: `${state.approvals.length} of ${state.request.required} approval(s) by ${state.request.expiresAt}`,
    });
    expired.push(state);
  }
  return expired;
}

/**
 * Waits until the request is decided and returns it approved; a denial is FORBIDDEN, an
 * expiry APPROVAL_EXPIRED, a withdrawal CANCELLED (in each case nothing ran), and no
 * decision within `timeoutMs` TIMEOUT (the request stays open). For callers that cannot
 * take the clicks themselves (snapctl). Expiry is decided by the same atomic script the
 * bot's sweeper uses, so no bot needs to be running for it.
 */
export async function awaitApproval(
  core: SnapbotCore,
  id: string,
  options: { timeoutMs: number; pollMs?: number; mirrorOf?: (subject: ApprovalSubject) => MirrorKey },
): Promise<ApprovalState> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const state = await getApproval(core, id);
    if (!state) throw new SnapbotError('INTERNAL', `Approval request ${id} vanished from Redis.`);
    const what = describeRequest(state.request);
    switch (state.status) {
      case 'approved':
        return state;
      case 'denied':
        throw new SnapbotError('FORBIDDEN', `${what} was denied (by Discord user ${state.deniedBy}). Nothing was done.`);
      case 'expired':
        throw new SnapbotError('APPROVAL_EXPIRED', `${what} expired at ${state.request.expiresAt} without enough approvals. Nothing was done.`);
      case 'withdrawn':
        throw new SnapbotError('CANCELLED', `${what} was withdrawn by ${state.withdrawnBy}. Nothing was done.`);
      case 'pending':
        break;
    }
    if ((await redisNow(core)) >= Date.parse(state.request.expiresAt)) {
      await expireDueApprovals(core, options.mirrorOf);
      continue;
    }
    if (Date.now() > deadline) {
      throw new SnapbotError('TIMEOUT', `No decision on ${what.replace(/^A/, 'a')} within ${Math.round(options.timeoutMs / 1000)}s; it stays open until ${state.request.expiresAt}.`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
  }
}

/** Approved requests whose action may not have been taken (the process that approved died). */
export async function approvedNotActed(core: SnapbotCore): Promise<string[]> {
  return core.redis.smembers(approvalKeys(core.prefix).toAct);
}

/** The approved request's action was taken (its job queued, its run started): the sweep leaves it alone. */
export async function markActedOn(core: SnapbotCore, id: string): Promise<void> {
  await core.redis.srem(approvalKeys(core.prefix).toAct, id);
}

/** The next request opened outside Discord that a bot should post, if any (each is handed out once). */
export async function takeApprovalToPost(core: SnapbotCore): Promise<string | null> {
  return core.redis.lpop(approvalKeys(core.prefix).toPost);
}

/** Whether a bot process is running to post requests and take clicks. */
export async function botOnline(core: SnapbotCore): Promise<boolean> {
  return (await core.redis.exists(botKeys(core.prefix).alive)) === 1;
}

/** Says a bot process is sweeping, for `ttlMs` (snapctl tells its user when none is). */
export async function markBotAlive(core: SnapbotCore, ttlMs: number): Promise<void> {
  await core.redis.set(botKeys(core.prefix).alive, new Date().toISOString(), 'PX', ttlMs);
}
