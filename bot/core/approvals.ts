import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { SnapbotError } from '../../shared/errors.js';
import { snapshotInfoSchema, type JobResult, type ResultOf, type SnapshotInfo } from '../../shared/jobs.js';
import { snapshotNameSchema, vmNameSchema } from '../../shared/names.js';
import { approvalRuleFor } from '../../shared/policy.js';
import { recordAudit } from './audit.js';
import { authorize, isApprover, type Actor } from './authorize.js';
import type { SnapbotCore } from './core.js';
import { runJob, waitForJob, type RunJobOptions } from './dispatch.js';
import { resolveTarget } from './hosts.js';

/**
 * Approvals for destructive actions (revert, delete): a request binds to the exact
 * action — host, VM UUID, snapshot name and creation time — and runs once enough
 * distinct approvers have said yes, before it expires. Every decision is one atomic
 * script in Redis, with Redis's own clock, so concurrent clicks and several bot
 * processes cannot run an action twice or after its expiry.
 */

export const approvalActionSchema = z.enum(['revert', 'delete']);
export type ApprovalAction = z.infer<typeof approvalActionSchema>;

export const approvalRequestSchema = z.object({
  id: z.string(),
  action: approvalActionSchema,
  host: z.string(),
  vm: z.string(),
  uuid: z.string(),
  /** The snapshot as it was when approval was asked; the worker checks its creation time again. */
  snapshot: snapshotInfoSchema,
  requester: z.object({ id: z.string(), userId: z.string().nullable(), displayName: z.string() }),
  origin: z.enum(['discord', 'snapctl']),
  requestedAt: z.string(),
  expiresAt: z.string(),
  required: z.number().int(),
  allowSelfApproval: z.boolean(),
  approvers: z.array(z.string()),
  undoPoint: z.object({ mode: z.enum(['disk-only', 'full']), keep: z.number().int() }).nullable(),
  /** The job that runs the approved action; a fixed id makes enqueueing it idempotent. */
  jobId: z.string(),
});
export type ApprovalRequest = z.infer<typeof approvalRequestSchema>;

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired';

export interface ApprovalState {
  request: ApprovalRequest;
  status: ApprovalStatus;
  approvals: string[];
  deniedBy: string | null;
  message: { channelId: string; messageId: string } | null;
}

/** Closed requests stay readable this long (the audit stream keeps the history). */
const CLOSED_RETENTION_SECONDS = 7 * 24 * 3600;

function keys(core: SnapbotCore, id = '') {
  return {
    request: `${core.prefix}:approval:${id}`,
    approvals: `${core.prefix}:approval:${id}:approvals`,
    pending: `${core.prefix}:approvals:pending`,
    toEnqueue: `${core.prefix}:approvals:to-enqueue`,
    toPost: `${core.prefix}:approvals:to-post`,
  };
}

// KEYS: request hash, approvals set, pending zset, to-enqueue set. ARGV: user id, decision, request id.
export const DECIDE_SCRIPT = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if status ~= 'pending' then return {'closed:' .. status, redis.call('SCARD', KEYS[2])} end
if now >= tonumber(redis.call('HGET', KEYS[1], 'expiresAtMs')) then
  redis.call('HSET', KEYS[1], 'status', 'expired')
  redis.call('ZREM', KEYS[3], ARGV[3])
  return {'expired', redis.call('SCARD', KEYS[2])}
end
if ARGV[1] == redis.call('HGET', KEYS[1], 'requesterUserId') and redis.call('HGET', KEYS[1], 'allowSelf') ~= '1' then
  return {'self', redis.call('SCARD', KEYS[2])}
end
if ARGV[2] == 'deny' then
  redis.call('HSET', KEYS[1], 'status', 'denied', 'deniedBy', ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[3])
  return {'denied', redis.call('SCARD', KEYS[2])}
end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return {'duplicate', redis.call('SCARD', KEYS[2])} end
local count = redis.call('SCARD', KEYS[2])
if count >= tonumber(redis.call('HGET', KEYS[1], 'required')) then
  redis.call('HSET', KEYS[1], 'status', 'approved')
  redis.call('ZREM', KEYS[3], ARGV[3])
  redis.call('SADD', KEYS[4], ARGV[3])
  return {'approved', count}
end
return {'counted', count}
`;

// KEYS: request hash, pending zset. ARGV: request id. Returns 1 when this call expired it.
export const EXPIRE_SCRIPT = `
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' then redis.call('ZREM', KEYS[2], ARGV[1]) return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < tonumber(redis.call('HGET', KEYS[1], 'expiresAtMs')) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'expired')
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

export interface OpenApprovalInput {
  action: ApprovalAction;
  vm: string;
  host?: string | undefined;
  name: string;
  requester: ApprovalRequest['requester'];
  /** The chat member asking; checked against the policy. snapctl sends none. */
  actor?: Actor | undefined;
  origin: ApprovalRequest['origin'];
}

export type OpenApprovalOutcome =
  | { kind: 'pending'; request: ApprovalRequest }
  | { kind: 'not-needed'; host: string; uuid: string | undefined };

/**
 * Opens an approval request, or says none is needed. The snapshot is read from the host
 * now (its creation time binds the approval), and an action this host's libvirt cannot
 * do is refused before anyone is asked to approve it.
 */
export async function openApprovalRequest(core: SnapbotCore, input: OpenApprovalInput, options: { timeoutMs: number }): Promise<OpenApprovalOutcome> {
  const vm = parseOrThrow(vmNameSchema, input.vm);
  const name = parseOrThrow(snapshotNameSchema, input.name);
  if (input.actor) authorize(core.policy, input.actor, input.action, { vm });
  const { host, uuid } = await resolveTarget(core, vm, input.host);
  if (input.actor) authorize(core.policy, input.actor, input.action, { vm, host: host.hostId });
  const rule = approvalRuleFor(core.policy, input.action, host.hostId, vm);
  if (!rule) return { kind: 'not-needed', host: host.hostId, uuid };

  const info = await runJob(core, { kind: 'info', host: host.hostId, vm, uuid, requestedBy: input.requester.id, name }, { timeoutMs: options.timeoutMs });
  const snapshot: SnapshotInfo = info.snapshot;
  if (input.action === 'revert' && snapshot.location === 'external' && !host.capabilities.externalRevert) {
    throw new SnapbotError(
      'UNSUPPORTED',
      `Snapshot '${name}' of ${vm} is external (disk-only) and libvirt ${host.libvirtVersion ?? '(unknown)'} on ${host.hostId} cannot revert external snapshots (needs 9.9 or newer). No approval was asked.`,
    );
  }
  const id = randomBytes(8).toString('hex');
  const requestedAt = Date.now();
  const expiresAtMs = requestedAt + rule.ttlMinutes * 60_000;
  const request: ApprovalRequest = {
    id,
    action: input.action,
    host: host.hostId,
    vm,
    uuid: info.vm.uuid,
    snapshot,
    requester: input.requester,
    origin: input.origin,
    requestedAt: new Date(requestedAt).toISOString(),
    expiresAt: new Date(expiresAtMs).toISOString(),
    required: rule.required,
    allowSelfApproval: rule.allowSelfApproval,
    approvers: rule.approvers,
    undoPoint: input.action === 'revert' ? core.policy.undoPoints : null,
    jobId: `approval-${id}`,
  };
  const k = keys(core, id);
  const transaction = core.redis
    .multi()
    .hset(k.request, {
      data: JSON.stringify(request),
      status: 'pending',
      expiresAtMs: String(expiresAtMs),
      requesterUserId: input.requester.userId ?? '',
      required: String(rule.required),
      allowSelf: rule.allowSelfApproval ? '1' : '0',
    })
    .zadd(k.pending, expiresAtMs, id);
  // Requests from snapctl wait for a bot to post them in the channel.
  if (input.origin === 'snapctl') transaction.rpush(k.toPost, id);
  await transaction.exec();
  await recordAudit(core, {
    event: 'requested',
    actor: input.requester.id,
    action: input.action,
    host: request.host,
    vm,
    snapshot: name,
    requestId: id,
    detail: `needs ${rule.required} approval(s) from ${rule.approvers.join(', ')} by ${request.expiresAt}`,
  });
  return { kind: 'pending', request };
}

export async function getApproval(core: SnapbotCore, id: string): Promise<ApprovalState | null> {
  const k = keys(core, id);
  const [fields, approvals] = await Promise.all([core.redis.hgetall(k.request), core.redis.smembers(k.approvals)]);
  if (!fields.data) return null;
  return {
    request: approvalRequestSchema.parse(JSON.parse(fields.data)),
    status: (fields.status ?? 'pending') as ApprovalStatus,
    approvals: approvals.sort(),
    deniedBy: fields.deniedBy || null,
    message: fields.message ? (JSON.parse(fields.message) as ApprovalState['message']) : null,
  };
}

export async function setApprovalMessage(core: SnapbotCore, id: string, message: { channelId: string; messageId: string }): Promise<void> {
  await core.redis.hset(keys(core, id).request, 'message', JSON.stringify(message));
}

export type DecisionOutcome =
  | 'missing'
  | 'not-approver'
  | 'self'
  | 'duplicate'
  | 'counted'
  | 'approved'
  | 'denied'
  | 'expired'
  | `closed:${ApprovalStatus}`;

/**
 * One approver's click. Only allowed approvers count, the requester's own click does
 * not (unless the rule allows it), a second click by the same person is not counted
 * again, one Deny closes the request, and the click that reaches the required number
 * is the only one that gets 'approved' — whatever else runs at the same time.
 */
export async function decideApproval(
  core: SnapbotCore,
  input: { id: string; actor: Actor; decision: 'approve' | 'deny' },
): Promise<{ outcome: DecisionOutcome; approvals: number; state: ApprovalState | null }> {
  const state = await getApproval(core, input.id);
  if (!state) return { outcome: 'missing', approvals: 0, state };
  if (!isApprover(state.request.approvers, input.actor)) return { outcome: 'not-approver', approvals: state.approvals.length, state };
  const k = keys(core, input.id);
  const [outcome, approvals] = (await core.redis.eval(DECIDE_SCRIPT, 4, k.request, k.approvals, k.pending, k.toEnqueue, input.actor.userId, input.decision, input.id)) as [
    DecisionOutcome,
    number,
  ];
  const { request } = state;
  const about = { actor: input.actor.id, action: request.action, host: request.host, vm: request.vm, snapshot: request.snapshot.name, requestId: request.id };
  if (outcome === 'counted' || outcome === 'approved') {
    await recordAudit(core, { ...about, event: 'approved', detail: `${approvals} of ${request.required} approval(s)` });
  } else if (outcome === 'denied') {
    await recordAudit(core, { ...about, event: 'denied' });
  } else if (outcome === 'expired') {
    await recordAudit(core, { ...about, actor: 'snapbot', event: 'expired', detail: `a click by ${input.actor.id} came after ${request.expiresAt}` });
  }
  if (outcome === 'denied' || outcome === 'expired' || outcome === 'approved') await core.redis.expire(k.request, CLOSED_RETENTION_SECONDS);
  return { outcome, approvals, state: await getApproval(core, input.id) };
}

/**
 * Runs an approved request's job and waits for its result. Safe to call more than once
 * (after a crash, from another bot process): the job id is fixed, so BullMQ adds it once.
 */
export async function executeApproved(core: SnapbotCore, request: ApprovalRequest, options: Pick<RunJobOptions, 'timeoutMs' | 'onProgress'>): Promise<ResultOf<'revert'> | ResultOf<'delete'>> {
  const base = { host: request.host, vm: request.vm, uuid: request.uuid, requestedBy: request.requester.id, name: request.snapshot.name, expected: { createdAt: request.snapshot.createdAt } };
  const runOptions: RunJobOptions = {
    ...options,
    jobId: request.jobId,
    onQueued: () => void core.redis.srem(keys(core).toEnqueue, request.id),
  };
  const about = {
    actor: request.requester.id,
    action: request.action,
    host: request.host,
    vm: request.vm,
    snapshot: request.snapshot.name,
    requestId: request.id,
    jobId: request.jobId,
  };
  try {
    const result =
      request.action === 'revert'
        ? await runJob(core, { ...base, kind: 'revert', ...(request.undoPoint ? { undoPoint: request.undoPoint } : {}) }, runOptions)
        : await runJob(core, { ...base, kind: 'delete' }, runOptions);
    await recordAudit(core, { ...about, event: 'executed', detail: result.kind === 'revert' && result.undoPoint ? `undo point ${result.undoPoint.name}` : 'done' });
    return result;
  } catch (error) {
    await recordAudit(core, { ...about, event: 'failed', detail: error instanceof SnapbotError ? `${error.code}: ${error.message}` : String(error) });
    throw error;
  }
}

/** Waits until the request is approved, denied or expired (TIMEOUT when `timeoutMs` passes first). */
export async function waitForDecision(core: SnapbotCore, id: string, options: { timeoutMs: number; pollMs?: number }): Promise<ApprovalState> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const state = await getApproval(core, id);
    if (!state) throw new SnapbotError('INTERNAL', `Approval request ${id} vanished from Redis.`);
    if (state.status !== 'pending') return state;
    // Expiry is decided by the same atomic script the buttons use, so no bot needs to be running.
    if (Date.now() >= Date.parse(state.request.expiresAt)) await expireDueApprovals(core);
    if (Date.now() > deadline) {
      throw new SnapbotError('TIMEOUT', `No decision on approval request ${id} within ${Math.round(options.timeoutMs / 1000)}s; it stays open until ${state.request.expiresAt}.`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
  }
}

/**
 * Waits for a request's decision and then for its job's result: a denial is FORBIDDEN,
 * an expiry APPROVAL_EXPIRED, and in both cases nothing ran. For callers that are not
 * the bot (snapctl), which cannot take the clicks themselves.
 */
export async function awaitApprovedResult(
  core: SnapbotCore,
  request: ApprovalRequest,
  options: { timeoutMs: number; onApproved?: (state: ApprovalState) => void },
): Promise<JobResult> {
  const decided = await waitForDecision(core, request.id, { timeoutMs: options.timeoutMs });
  if (decided.status === 'denied') {
    throw new SnapbotError('FORBIDDEN', `Approval request ${request.id} was denied (by Discord user ${decided.deniedBy}). Nothing was done.`);
  }
  if (decided.status === 'expired') {
    throw new SnapbotError('APPROVAL_EXPIRED', `Approval request ${request.id} expired at ${request.expiresAt} without enough approvals. Nothing was done.`);
  }
  options.onApproved?.(decided);
  return waitForJob(core, request.host, request.jobId, options.timeoutMs);
}

/** Whether a bot process is running to post requests and take clicks. */
export async function botOnline(core: SnapbotCore): Promise<boolean> {
  return (await core.redis.exists(`${core.prefix}:bot:alive`)) === 1;
}

/** Marks every pending request past its expiry as expired; returns those this call expired. */
export async function expireDueApprovals(core: SnapbotCore): Promise<ApprovalState[]> {
  const k = keys(core);
  const due = await core.redis.zrangebyscore(k.pending, 0, Date.now());
  const expired: ApprovalState[] = [];
  for (const id of due) {
    const changed = (await core.redis.eval(EXPIRE_SCRIPT, 2, keys(core, id).request, k.pending, id)) as number;
    if (changed !== 1) continue;
    await core.redis.expire(keys(core, id).request, CLOSED_RETENTION_SECONDS);
    const state = await getApproval(core, id);
    if (!state) continue;
    await recordAudit(core, {
      event: 'expired',
      actor: 'snapbot',
      action: state.request.action,
      host: state.request.host,
      vm: state.request.vm,
      snapshot: state.request.snapshot.name,
      requestId: id,
      detail: `${state.approvals.length} of ${state.request.required} approval(s) by ${state.request.expiresAt}`,
    });
    expired.push(state);
  }
  return expired;
}

/** Approved requests whose job may not have been queued (the process that approved died). */
export async function approvedNotQueued(core: SnapbotCore): Promise<string[]> {
  return core.redis.smembers(keys(core).toEnqueue);
}

/** The next request from snapctl that a bot should post in the channel, if any (each is handed out once). */
export async function takeRequestToPost(core: SnapbotCore): Promise<string | null> {
  return core.redis.lpop(keys(core).toPost);
}

function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new SnapbotError('VALIDATION', parsed.error.issues.map((issue) => issue.message).join('; '));
}
