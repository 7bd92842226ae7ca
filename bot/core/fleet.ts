import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { SnapbotError } from '../../shared/errors.js';
import {
  checkNameTemplate,
  FLEET_RETENTION_SECONDS,
  fleetJobId,
  fleetKeys,
  fleetMatcher,
  fleetTargetStateSchema,
  isTerminal,
  parseFleetSelector,
  renderNameTemplate,
  SETTLE_TARGETS_SCRIPT,
  type FleetTargetState,
  type FleetTargetStateName,
} from '../../shared/fleet.js';
import type { HostStatus } from '../../shared/hosts.js';
import { snapshotJobSchema, snapshotModeSchema, type SnapshotJob } from '../../shared/jobs.js';
import { descriptionSchema, snapshotNameSchema } from '../../shared/names.js';
import { globToRegExp } from '../../shared/policy.js';
import { DECIDE_SCRIPT, type DecisionOutcome } from './approvals.js';
import { recordAudit } from './audit.js';
import { authorize, isAllowed, isApprover, type Actor } from './authorize.js';
import type { SnapbotCore } from './core.js';
import { JOB_ATTEMPTS } from './dispatch.js';
import { listHosts } from './hosts.js';

/**
 * Fleet runs: one snapshot (or delete) over every VM a selector names, on every host.
 *
 * A run is planned first (targets resolved from the hosts' inventories, shown as a
 * preview), then confirmed, approved when the policy says so, and fanned out: every
 * target becomes an ordinary job on its host's queue, with a fixed job id. The workers
 * keep each target's state in Redis and enforce the run's concurrency limits, so the
 * run goes on when the bot restarts, and any process can draw its summary.
 */

export const fleetActionSchema = z.enum(['snapshot', 'delete']);
export type FleetAction = z.infer<typeof fleetActionSchema>;

const requesterSchema = z.object({ id: z.string(), userId: z.string().nullable(), displayName: z.string() });
export type FleetRequester = z.infer<typeof requesterSchema>;

export const fleetTargetSchema = z.object({ index: z.number().int(), host: z.string(), vm: z.string(), uuid: z.string(), snapshot: z.string() });
export type FleetTarget = z.infer<typeof fleetTargetSchema>;

export const fleetPlanSchema = z.object({
  id: z.string(),
  action: fleetActionSchema,
  selector: z.string(),
  /** The name or template as typed (snapshot), or the name or glob (delete). */
  name: z.string(),
  mode: snapshotModeSchema.nullable(),
  description: z.string().nullable(),
  createdAt: z.string(),
  requester: requesterSchema,
  origin: z.enum(['discord', 'snapctl']),
  targets: z.array(fleetTargetSchema),
  skipped: z.object({
    offlineHosts: z.array(z.object({ hostId: z.string(), lastSeen: z.string(), vms: z.number().int() })),
    /** Snapshot runs: VMs that already hold a snapshot of the rendered name. */
    existing: z.array(z.object({ host: z.string(), vm: z.string(), snapshot: z.string() })),
    /** VMs the requester may not act on. */
    forbidden: z.array(z.object({ host: z.string(), vm: z.string() })),
    /** Delete runs: selected VMs that hold no snapshot matching the name. */
    withoutMatch: z.number().int(),
  }),
  perHost: z.number().int(),
  maxConcurrent: z.number().int(),
  approval: z
    .object({
      reason: z.string(),
      approvers: z.array(z.string()),
      required: z.number().int(),
      allowSelfApproval: z.boolean(),
      ttlMinutes: z.number(),
    })
    .nullable(),
  /** The run this one retries the failures of. */
  retryOf: z.string().nullable(),
});
export type FleetPlan = z.infer<typeof fleetPlanSchema>;

/**
 * preview → (pending → approved) → running → finished; a preview can be discarded, a
 * request denied or expired, a running run cancelled (it then finishes with what ran).
 */
export type FleetRunStatus = 'preview' | 'discarded' | 'pending' | 'approved' | 'denied' | 'expired' | 'running' | 'cancelling' | 'finished';

export interface FleetRequest {
  action: FleetAction;
  target: string;
  name?: string | undefined;
  mode?: string | undefined;
  description?: string | undefined;
  requester: FleetRequester;
  actor?: Actor | undefined;
  origin: 'discord' | 'snapctl';
}

/** A preview is kept this long for its Confirm button. */
const PREVIEW_TTL_SECONDS = 3600;
const DEFAULT_TEMPLATE = 'fleet-{date}-{time}';

function pendingKey(core: SnapbotCore): string {
  return `${core.prefix}:fleet:pending`;
}
function toStartKey(core: SnapbotCore): string {
  return `${core.prefix}:fleet:to-start`;
}
function toPostKey(core: SnapbotCore): string {
  return `${core.prefix}:fleet:to-post`;
}
function activeKey(core: SnapbotCore): string {
  return `${core.prefix}:fleet:active`;
}

/** Resolves a fleet request against the hosts' inventories and stores it as a preview. Nothing is queued. */
export async function planFleet(core: SnapbotCore, request: FleetRequest): Promise<FleetPlan> {
  const action = fleetActionSchema.parse(request.action);
  const policyAction = action === 'snapshot' ? 'create' : 'delete';
  if (request.actor) authorize(core.policy, request.actor, policyAction);
  const selector = parseFleetSelector(request.target);
  const matches = fleetMatcher(selector);
  const now = new Date();

  let mode: FleetPlan['mode'] = null;
  let description: string | null = null;
  let nameOf: (host: string, vm: string) => string;
  let snapshotMatcher: RegExp | null = null;
  const name = request.name?.trim() || (action === 'snapshot' ? DEFAULT_TEMPLATE : '');
  if (action === 'snapshot') {
    checkNameTemplate(name);
    const parsedMode = snapshotModeSchema.safeParse(request.mode ?? 'disk-only');
    if (!parsedMode.success) throw new SnapbotError('VALIDATION', `Mode must be disk-only or full, not '${request.mode}'.`);
    mode = parsedMode.data;
    if (request.description !== undefined) {
      const parsedDescription = descriptionSchema.safeParse(request.description);
      if (!parsedDescription.success) throw new SnapbotError('VALIDATION', parsedDescription.error.issues.map((issue) => issue.message).join('; '));
      description = parsedDescription.data;
    }
    nameOf = (host, vm) => renderNameTemplate(name, { vm, host, at: now });
  } else {
    if (!name) throw new SnapbotError('VALIDATION', 'A fleet delete needs the snapshot name (or a glob such as pre-rollout-*).');
    snapshotMatcher = globToRegExp(name);
    nameOf = () => name;
  }

  const hosts = await listHosts(core);
  const plan: FleetPlan = {
    id: randomBytes(6).toString('hex'),
    action,
    selector: selector.text,
    name,
    mode,
    description,
    createdAt: now.toISOString(),
    requester: request.requester,
    origin: request.origin,
    targets: [],
    skipped: { offlineHosts: [], existing: [], forbidden: [], withoutMatch: 0 },
    perHost: core.policy.fleet.perHost,
    maxConcurrent: core.policy.fleet.maxConcurrent,
    approval: null,
    retryOf: null,
  };
  for (const host of hosts) {
    const selected = host.vms.filter((vm) => matches(host.hostId, vm.name));
    if (selected.length === 0) continue;
    if (!host.online) {
      plan.skipped.offlineHosts.push({ hostId: host.hostId, lastSeen: host.lastSeen, vms: selected.length });
      continue;
    }
    for (const vm of selected) {
      if (request.actor && !isAllowed(core.policy, request.actor, policyAction, { host: host.hostId, vm: vm.name })) {
        plan.skipped.forbidden.push({ host: host.hostId, vm: vm.name });
        continue;
      }
      if (action === 'snapshot') {
        const snapshot = nameOf(host.hostId, vm.name);
        const valid = snapshotNameSchema.safeParse(snapshot);
        if (!valid.success) throw new SnapbotError('VALIDATION', `Name template '${name}' gives '${snapshot}' for ${vm.name}: ${valid.error.issues[0]?.message}`);
        if (vm.snapshots.some((existing) => existing.name === snapshot)) {
          plan.skipped.existing.push({ host: host.hostId, vm: vm.name, snapshot });
          continue;
        }
        plan.targets.push({ index: plan.targets.length, host: host.hostId, vm: vm.name, uuid: vm.uuid, snapshot });
      } else {
        const doomed = vm.snapshots.filter((snapshot) => snapshotMatcher!.test(snapshot.name));
        if (doomed.length === 0) plan.skipped.withoutMatch += 1;
        for (const snapshot of doomed) plan.targets.push({ index: plan.targets.length, host: host.hostId, vm: vm.name, uuid: vm.uuid, snapshot: snapshot.name });
      }
    }
  }
  plan.approval = approvalFor(core, plan);
  await storePreview(core, plan);
  return plan;
}

function approvalFor(core: SnapbotCore, plan: Pick<FleetPlan, 'action' | 'targets'>): FleetPlan['approval'] {
  const rule = core.policy.fleet.approval;
  let reason: string | null = null;
  if (plan.action === 'delete' && rule.deletes) reason = 'fleet deletes need approval';
  else if (plan.action === 'snapshot' && plan.targets.length > rule.snapshotsAbove) reason = `more than ${rule.snapshotsAbove} VMs`;
  if (reason === null) return null;
  return { reason, approvers: rule.approvers, required: rule.required, allowSelfApproval: rule.allowSelfApproval, ttlMinutes: rule.ttlMinutes };
}

async function storePreview(core: SnapbotCore, plan: FleetPlan): Promise<void> {
  const keys = fleetKeys(core.prefix, plan.id);
  await core.redis
    .multi()
    .hset(keys.run, { plan: JSON.stringify(plan), status: 'preview', requesterUserId: plan.requester.userId ?? '' })
    .expire(keys.run, PREVIEW_TTL_SECONDS)
    .exec();
}

/** A new preview of the targets of a finished run that failed (for the "retry failed" button). */
export async function planRetryOfFailed(core: SnapbotCore, runId: string, requester: FleetRequester, actor?: Actor): Promise<FleetPlan> {
  const run = await getFleetRun(core, runId);
  if (!run) throw new SnapbotError('VALIDATION', `No fleet run ${runId} (it may have expired).`);
  if (actor) authorize(core.policy, actor, run.plan.action === 'snapshot' ? 'create' : 'delete');
  const failed = run.plan.targets.filter((target) => run.targets.get(target.index)?.state === 'failed');
  if (failed.length === 0) throw new SnapbotError('VALIDATION', `Fleet run ${runId} has no failed targets to retry.`);
  const plan: FleetPlan = {
    ...run.plan,
    id: randomBytes(6).toString('hex'),
    createdAt: new Date().toISOString(),
    requester,
    targets: failed.map((target, index) => ({ ...target, index })),
    skipped: { offlineHosts: [], existing: [], forbidden: [], withoutMatch: 0 },
    retryOf: runId,
  };
  plan.approval = approvalFor(core, plan);
  await storePreview(core, plan);
  return plan;
}

export interface FleetRun {
  plan: FleetPlan;
  status: FleetRunStatus;
  targets: Map<number, FleetTargetState>;
  approvals: string[];
  deniedBy: string | null;
  expiresAt: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  cancelledBy: string | null;
  message: { channelId: string; messageId: string } | null;
}

export async function getFleetRun(core: SnapbotCore, runId: string): Promise<FleetRun | null> {
  if (!/^[0-9a-f]{6,32}$/.test(runId)) return null;
  const keys = fleetKeys(core.prefix, runId);
  const [fields, targetFields, approvals] = await Promise.all([core.redis.hgetall(keys.run), core.redis.hgetall(keys.targets), core.redis.smembers(keys.approvals)]);
  if (!fields.plan) return null;
  const targets = new Map<number, FleetTargetState>();
  for (const [index, raw] of Object.entries(targetFields)) {
    const parsed = fleetTargetStateSchema.safeParse(JSON.parse(raw));
    if (parsed.success) targets.set(Number(index), parsed.data);
  }
  const number = (value: string | undefined) => (value ? Number(value) : null);
  return {
    plan: fleetPlanSchema.parse(JSON.parse(fields.plan)),
    status: (fields.status ?? 'preview') as FleetRunStatus,
    targets,
    approvals: approvals.sort(),
    deniedBy: fields.deniedBy || null,
    expiresAt: fields.expiresAtMs ? new Date(Number(fields.expiresAtMs)).toISOString() : null,
    startedAt: number(fields.startedAt),
    finishedAt: number(fields.finishedAt),
    cancelledBy: fields.cancelledBy || null,
    message: fields.message ? (JSON.parse(fields.message) as FleetRun['message']) : null,
  };
}

export async function setFleetMessage(core: SnapbotCore, runId: string, message: { channelId: string; messageId: string }): Promise<void> {
  await core.redis.hset(fleetKeys(core.prefix, runId).run, 'message', JSON.stringify(message));
}

// KEYS: run hash. ARGV: from-status, to-status. Returns 1 when this call made the change.
const TRANSITION_SCRIPT = `
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
return 1
`;

async function transition(core: SnapbotCore, runId: string, from: FleetRunStatus, to: FleetRunStatus): Promise<boolean> {
  return (await core.redis.eval(TRANSITION_SCRIPT, 1, fleetKeys(core.prefix, runId).run, from, to)) === 1;
}

export type ConfirmOutcome = { kind: 'started'; run: FleetRun } | { kind: 'pending'; run: FleetRun };

/**
 * The requester's Confirm. Runs that need approval become approval requests (decided
 * like a revert: N distinct approvers, no self-approval, real expiry); others start.
 */
export async function confirmFleet(core: SnapbotCore, runId: string, actor?: Actor): Promise<ConfirmOutcome> {
  const run = await getFleetRun(core, runId);
  if (!run) throw new SnapbotError('VALIDATION', `No fleet preview ${runId} (previews last an hour).`);
  if (actor && run.plan.requester.userId !== actor.userId) throw new SnapbotError('FORBIDDEN', `Only ${run.plan.requester.displayName}, who asked for this run, can confirm it.`);
  if (run.status !== 'preview') throw new SnapbotError('VALIDATION', `Fleet run ${runId} is ${run.status}, not waiting for confirmation.`);
  if (run.plan.targets.length === 0) throw new SnapbotError('VALIDATION', `Fleet run ${runId} has no targets; nothing to do.`);
  const about = fleetAudit(run.plan);
  if (run.plan.approval) {
    const keys = fleetKeys(core.prefix, runId);
    const expiresAtMs = Date.now() + run.plan.approval.ttlMinutes * 60_000;
    if (!(await transition(core, runId, 'preview', 'pending'))) throw new SnapbotError('VALIDATION', `Fleet run ${runId} was confirmed already.`);
    await core.redis
      .multi()
      .hset(keys.run, {
        expiresAtMs: String(expiresAtMs),
        required: String(run.plan.approval.required),
        allowSelf: run.plan.approval.allowSelfApproval ? '1' : '0',
      })
      .persist(keys.run)
      .zadd(pendingKey(core), expiresAtMs, runId)
      .exec();
    // Requests from snapctl wait for a bot to post them in the channel.
    if (run.plan.origin === 'snapctl') await core.redis.rpush(toPostKey(core), runId);
    await recordAudit(core, {
      ...about,
      event: 'requested',
      detail: `${run.plan.targets.length} target(s) (${run.plan.approval.reason}); needs ${run.plan.approval.required} approval(s) from ${run.plan.approval.approvers.join(', ')}`,
    });
    return { kind: 'pending', run: (await getFleetRun(core, runId))! };
  }
  return { kind: 'started', run: await startFleetRun(core, runId, 'preview') };
}

/** Discards a preview (its Cancel button) or cancels a run; returns the run as it is after. */
export async function cancelFleet(core: SnapbotCore, runId: string, who: { id: string; actor?: Actor | undefined }): Promise<FleetRun> {
  const run = await getFleetRun(core, runId);
  if (!run) throw new SnapbotError('VALIDATION', `No fleet run ${runId}.`);
  if (who.actor && !mayCancel(core, run, who.actor)) {
    throw new SnapbotError('FORBIDDEN', `Only ${run.plan.requester.displayName} or a fleet approver can cancel fleet run ${runId}.`);
  }
  const keys = fleetKeys(core.prefix, runId);
  if (run.status === 'preview' || run.status === 'pending') {
    if (await transition(core, runId, run.status, 'discarded')) {
      await core.redis.multi().hset(keys.run, 'cancelledBy', who.id).zrem(pendingKey(core), runId).expire(keys.run, FLEET_RETENTION_SECONDS).exec();
      if (run.status === 'pending') await recordAudit(core, { ...fleetAudit(run.plan), actor: who.id, event: 'cancelled', detail: 'withdrawn before approval; nothing ran' });
    }
    return (await getFleetRun(core, runId))!;
  }
  if (run.status !== 'running' && run.status !== 'approved') return run;
  await core.redis.hset(keys.run, 'cancelledBy', who.id);
  if (run.status === 'approved') {
    await transition(core, runId, 'approved', 'cancelling');
    await core.redis.srem(toStartKey(core), runId);
  }
  else await transition(core, runId, 'running', 'cancelling');
  const notStarted = run.plan.targets.filter((target) => run.targets.get(target.index)?.state === 'queued');
  const changed = await settleTargets(core, run.plan, notStarted, { state: 'cancelled', at: Date.now() }, false);
  await recordAudit(core, { ...fleetAudit(run.plan), actor: who.id, event: 'cancelled', detail: `${changed} target(s) had not started and will not run` });
  return (await getFleetRun(core, runId))!;
}

function mayCancel(core: SnapbotCore, run: FleetRun, actor: Actor): boolean {
  return run.plan.requester.userId === actor.userId || actor.isAdministrator || isApprover(core.policy.fleet.approval.approvers, actor);
}

/**
 * Moves targets that have not started (and, with `runningToo`, those running) to a final
 * state, atomically against the workers starting them, and takes their jobs off the
 * queues so nothing runs behind the operator's back later.
 */
async function settleTargets(core: SnapbotCore, plan: FleetPlan, targets: FleetTarget[], state: FleetTargetState, runningToo: boolean): Promise<number> {
  if (targets.length === 0) return 0;
  const keys = fleetKeys(core.prefix, plan.id);
  let changed = 0;
  for (let start = 0; start < targets.length; start += 500) {
    const chunk = targets.slice(start, start + 500);
    changed += (await core.redis.eval(
      SETTLE_TARGETS_SCRIPT,
      1,
      keys.targets,
      JSON.stringify(state),
      runningToo ? 'running-too' : 'queued-only',
      ...chunk.map((target) => String(target.index)),
    )) as number;
  }
  // Best effort: a job already taken by a worker cannot be removed, and will refuse to start.
  await Promise.allSettled(targets.map((target) => core.queueFor(target.host).remove(fleetJobId(plan.id, target.index))));
  return changed;
}

export type FleetDecisionOutcome = DecisionOutcome;

/** One approver's click on a fleet approval request (same rules as a revert's). Starts the run when it is the deciding one. */
export async function decideFleet(
  core: SnapbotCore,
  input: { runId: string; actor: Actor; decision: 'approve' | 'deny' },
): Promise<{ outcome: DecisionOutcome; approvals: number; run: FleetRun | null }> {
  const run = await getFleetRun(core, input.runId);
  if (!run || !run.plan.approval) return { outcome: 'missing', approvals: 0, run };
  if (!isApprover(run.plan.approval.approvers, input.actor)) return { outcome: 'not-approver', approvals: run.approvals.length, run };
  const keys = fleetKeys(core.prefix, input.runId);
  const [outcome, approvals] = (await core.redis.eval(
    DECIDE_SCRIPT,
    4,
    keys.run,
    keys.approvals,
    pendingKey(core),
    toStartKey(core),
    input.actor.userId,
    input.decision,
    input.runId,
  )) as [DecisionOutcome, number];
  const about = { ...fleetAudit(run.plan), actor: input.actor.id };
  if (outcome === 'counted' || outcome === 'approved') await recordAudit(core, { ...about, event: 'approved', detail: `${approvals} of ${run.plan.approval.required} approval(s)` });
  else if (outcome === 'denied') await recordAudit(core, { ...about, event: 'denied' });
  else if (outcome === 'expired') await recordAudit(core, { ...about, actor: 'snapbot', event: 'expired', detail: `a click by ${input.actor.id} came after the expiry` });
  if (outcome === 'denied' || outcome === 'expired') await core.redis.expire(keys.run, FLEET_RETENTION_SECONDS);
  if (outcome === 'approved') await startFleetRun(core, input.runId, 'approved');
  return { outcome, approvals, run: await getFleetRun(core, input.runId) };
}

/**
 * Waits for a fleet approval request's decision, for callers that cannot take the clicks
 * (snapctl): returns once the run is approved (and started); a denial is FORBIDDEN, an
 * expiry APPROVAL_EXPIRED, a withdrawal CANCELLED, and in each case nothing ran.
 */
export async function awaitFleetDecision(core: SnapbotCore, runId: string, options: { timeoutMs: number; pollMs?: number }): Promise<FleetRun> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const run = await getFleetRun(core, runId);
    if (!run) throw new SnapbotError('INTERNAL', `Fleet run ${runId} vanished from Redis.`);
    if (run.status === 'denied') throw new SnapbotError('FORBIDDEN', `Fleet run ${runId} was denied (by Discord user ${run.deniedBy}). Nothing was done.`);
    if (run.status === 'expired') throw new SnapbotError('APPROVAL_EXPIRED', `Approval for fleet run ${runId} expired without enough approvals. Nothing was done.`);
    if (run.status === 'discarded') throw new SnapbotError('CANCELLED', `Fleet run ${runId} was withdrawn by ${run.cancelledBy}. Nothing was done.`);
    if (run.status !== 'pending') return run;
    // Expiry is decided by the same atomic transition the bot's sweeper uses, so no bot needs to be running.
    if (run.expiresAt && Date.now() >= Date.parse(run.expiresAt)) await expireDueFleetApprovals(core);
    if (Date.now() > deadline) throw new SnapbotError('TIMEOUT', `No decision on fleet run ${runId} in time; the request stays open until ${run.expiresAt}.`);
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
  }
}

/** Expires fleet approval requests past their time (the bot's sweeper calls this). */
export async function expireDueFleetApprovals(core: SnapbotCore): Promise<FleetRun[]> {
  const due = await core.redis.zrangebyscore(pendingKey(core), 0, Date.now());
  const expired: FleetRun[] = [];
  for (const runId of due) {
    const keys = fleetKeys(core.prefix, runId);
    const run = await getFleetRun(core, runId);
    const expiresAtMs = run?.expiresAt ? Date.parse(run.expiresAt) : 0;
    if (!run || run.status !== 'pending') {
      await core.redis.zrem(pendingKey(core), runId);
      continue;
    }
    if (Date.now() < expiresAtMs) continue;
    if (!(await transition(core, runId, 'pending', 'expired'))) continue;
    await core.redis.multi().zrem(pendingKey(core), runId).expire(keys.run, FLEET_RETENTION_SECONDS).exec();
    await recordAudit(core, { ...fleetAudit(run.plan), actor: 'snapbot', event: 'expired', detail: `${run.approvals.length} of ${run.plan.approval?.required ?? 0} approval(s)` });
    expired.push((await getFleetRun(core, runId))!);
  }
  return expired;
}

/** The next fleet approval request from snapctl that a bot should post in the channel (each handed out once). */
export async function takeFleetRequestToPost(core: SnapbotCore): Promise<string | null> {
  return core.redis.lpop(toPostKey(core));
}

/** Approved runs whose fan-out may not have happened (the process that approved died). */
export async function approvedNotStarted(core: SnapbotCore): Promise<string[]> {
  return core.redis.smembers(toStartKey(core));
}

/**
 * Fans the run out: every target queued (state and job), with fixed job ids, so calling
 * this again after a crash adds nothing twice. `from` is the status the run must be in.
 */
export async function startFleetRun(core: SnapbotCore, runId: string, from: 'preview' | 'approved' | 'running'): Promise<FleetRun> {
  const keys = fleetKeys(core.prefix, runId);
  if (from !== 'running' && !(await transition(core, runId, from, 'running'))) {
    const run = await getFleetRun(core, runId);
    if (!run) throw new SnapbotError('VALIDATION', `No fleet run ${runId}.`);
    return run; // Another click or process started it.
  }
  const run = await getFleetRun(core, runId);
  if (!run) throw new SnapbotError('INTERNAL', `Fleet run ${runId} vanished while starting.`);
  const { plan } = run;
  const startedAt = Date.now();
  const setup = core.redis.multi().hsetnx(keys.run, 'startedAt', String(startedAt)).persist(keys.run).sadd(activeKey(core), runId).srem(toStartKey(core), runId);
  // HSETNX: a second call after a crash keeps the states the workers already wrote.
  for (const target of plan.targets) setup.hsetnx(keys.targets, String(target.index), JSON.stringify({ state: 'queued' }));
  await setup.exec();

  const byHost = new Map<string, FleetTarget[]>();
  for (const target of plan.targets) {
    const list = byHost.get(target.host) ?? [];
    list.push(target);
    byHost.set(target.host, list);
  }
  await Promise.all(
    [...byHost].map(([host, targets]) =>
      core.queueFor(host).addBulk(
        targets.map((target) => {
          const data = fleetJob(plan, target);
          return {
            name: data.kind,
            data,
            opts: {
              jobId: fleetJobId(plan.id, target.index),
              attempts: JOB_ATTEMPTS,
              backoff: { type: 'exponential', delay: 1000 },
              removeOnComplete: { age: 24 * 3600, count: 5000 },
              removeOnFail: { age: 7 * 24 * 3600, count: 5000 },
            },
          };
        }),
      ),
    ),
  );
  if (from !== 'running') {
    await recordAudit(core, {
      ...fleetAudit(plan),
      event: plan.approval ? 'executed' : 'direct',
      detail: `${plan.targets.length} job(s) queued on ${byHost.size} host(s); ${plan.perHost || 'worker'} per host, ${plan.maxConcurrent || 'no'} global limit`,
    });
  }
  return (await getFleetRun(core, runId))!;
}

function fleetJob(plan: FleetPlan, target: FleetTarget): SnapshotJob {
  const fleet = { runId: plan.id, index: target.index, perHost: plan.perHost, global: plan.maxConcurrent };
  const base = { host: target.host, vm: target.vm, uuid: target.uuid, requestedBy: plan.requester.id, name: target.snapshot, fleet };
  return snapshotJobSchema.parse(
    plan.action === 'snapshot'
      ? { ...base, kind: 'create', mode: plan.mode ?? 'disk-only', ...(plan.description ? { description: plan.description } : {}) }
      : { ...base, kind: 'delete' },
  );
}

function fleetAudit(plan: FleetPlan) {
  return { actor: plan.requester.id, action: `fleet-${plan.action}`, requestId: plan.id, snapshot: plan.name, detail: plan.selector };
}

// ---------------------------------------------------------------------------------------
// The summary

export type FleetCountName = FleetTargetStateName | 'lost';
export type FleetCounts = Record<FleetCountName, number>;

export interface FleetTargetView extends FleetTarget {
  state: FleetTargetState;
  /** Not finished, and its host is offline now. */
  lost: boolean;
}

export interface FleetSummary {
  runId: string;
  plan: FleetPlan;
  status: FleetRunStatus;
  total: number;
  counts: FleetCounts;
  hosts: Array<{ hostId: string; online: boolean; counts: FleetCounts }>;
  /** Failed targets first (then lost ones), each with its code. */
  failures: FleetTargetView[];
  targets: FleetTargetView[];
  startedAt: number | null;
  finishedAt: number | null;
  durationMs: number;
  cancelledBy: string | null;
}

function emptyCounts(): FleetCounts {
  return { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0, lost: 0 };
}

export function summarize(run: FleetRun, hosts: readonly HostStatus[], now = Date.now()): FleetSummary {
  const online = new Map(hosts.map((host) => [host.hostId, host.online]));
  const counts = emptyCounts();
  const perHost = new Map<string, FleetCounts>();
  const targets: FleetTargetView[] = run.plan.targets.map((target) => {
    const state = run.targets.get(target.index) ?? { state: 'queued' as const };
    const lost = !isTerminal(state.state) && online.get(target.host) !== true;
    const bucket = lost ? 'lost' : state.state;
    counts[bucket] += 1;
    const hostCounts = perHost.get(target.host) ?? emptyCounts();
    hostCounts[bucket] += 1;
    perHost.set(target.host, hostCounts);
    return { ...target, state, lost };
  });
  const failures = [...targets.filter((target) => target.state.state === 'failed'), ...targets.filter((target) => target.lost)];
  const end = run.finishedAt ?? now;
  return {
    runId: run.plan.id,
    plan: run.plan,
    status: run.status,
    total: targets.length,
    counts,
    hosts: [...perHost].map(([hostId, hostCounts]) => ({ hostId, online: online.get(hostId) === true, counts: hostCounts })).sort((a, b) => a.hostId.localeCompare(b.hostId)),
    failures,
    targets,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    durationMs: run.startedAt ? Math.max(0, end - run.startedAt) : 0,
    cancelledBy: run.cancelledBy,
  };
}

export async function fleetSummary(core: SnapbotCore, runId: string): Promise<FleetSummary | null> {
  const [run, hosts] = await Promise.all([getFleetRun(core, runId), listHosts(core)]);
  return run ? summarize(run, hosts) : null;
}

export interface WatchOptions {
  /** Called whenever the summary changed (the caller coalesces edits). */
  onUpdate?: (summary: FleetSummary) => void;
  pollMs?: number;
  /** Stop watching (the run goes on) when this resolves true, e.g. on shutdown. */
  signal?: AbortSignal;
}

/**
 * Follows a run until every target is done, failed or cancelled, and returns the final
 * summary. Targets on a host that has been silent longer than the policy's
 * `hostLostAfterSeconds` are given up (failed with HOST_OFFLINE, their jobs removed), so a
 * dead host cannot hold the run open; a host that comes back sooner carries on.
 */
export async function watchFleetRun(core: SnapbotCore, runId: string, options: WatchOptions = {}): Promise<FleetSummary> {
  const pollMs = options.pollMs ?? 250;
  const lostAfterMs = core.policy.fleet.hostLostAfterSeconds * 1000;
  const keys = fleetKeys(core.prefix, runId);
  let last = '';
  for (;;) {
    const [run, hosts] = await Promise.all([getFleetRun(core, runId), listHosts(core)]);
    if (!run) throw new SnapbotError('INTERNAL', `Fleet run ${runId} vanished from Redis.`);
    await core.redis.set(keys.watcher, '1', 'PX', Math.max(5_000, pollMs * 20));
    const summary = summarize(run, hosts);
    const unfinished = summary.targets.filter((target) => !isTerminal(target.state.state));
    if ((run.status === 'running' || run.status === 'cancelling') && unfinished.length === 0) {
      return finishRun(core, run, hosts, options);
    }
    if (run.status === 'running' || run.status === 'cancelling') {
      const givenUp = await hostsOfflineLongerThan(core, run, hosts, new Set(unfinished.map((target) => target.host)), lostAfterMs);
      for (const hostId of givenUp) {
        const message = `Host ${hostId} went offline during the run and stayed offline over ${core.policy.fleet.hostLostAfterSeconds}s; given up. A job that was running may or may not have finished on the host.`;
        const abandoned = unfinished.filter((target) => target.host === hostId);
        await settleTargets(core, run.plan, abandoned, { state: 'failed', at: Date.now(), code: 'HOST_OFFLINE', message }, true);
      }
      if (givenUp.length > 0) continue;
    }
    const fingerprint = JSON.stringify([summary.status, summary.counts, summary.hosts]);
    if (fingerprint !== last) {
      last = fingerprint;
      options.onUpdate?.(summary);
    }
    if (!['running', 'cancelling', 'approved'].includes(run.status)) return summary;
    if (options.signal?.aborted) return summary;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/**
 * The run's hosts that have been offline longer than `limitMs`, timed by Redis's clock
 * from when a watcher first saw them offline (a host's own clock may be skewed), and
 * kept in the run's record so a watcher that takes over goes on counting.
 */
async function hostsOfflineLongerThan(core: SnapbotCore, run: FleetRun, hosts: readonly HostStatus[], hostIds: ReadonlySet<string>, limitMs: number): Promise<string[]> {
  const key = fleetKeys(core.prefix, run.plan.id).run;
  const watched = hosts.filter((host) => hostIds.has(host.hostId));
  if (watched.length === 0) return [];
  const fields = watched.map((host) => `offlineSince:${host.hostId}`);
  const [[seconds, micros], recorded] = await Promise.all([core.redis.time(), core.redis.hmget(key, ...fields)]);
  const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  const givenUp: string[] = [];
  for (const [index, host] of watched.entries()) {
    const since = recorded[index];
    if (host.online) {
      if (since) await core.redis.hdel(key, fields[index]!);
    } else if (!since) {
      await core.redis.hsetnx(key, fields[index]!, String(redisNow));
    } else if (redisNow - Number(since) > limitMs) {
      givenUp.push(host.hostId);
    }
  }
  return givenUp;
}

async function finishRun(core: SnapbotCore, run: FleetRun, hosts: readonly HostStatus[], options: WatchOptions): Promise<FleetSummary> {
  const keys = fleetKeys(core.prefix, run.plan.id);
  const finishedAt = Date.now();
  const first = await core.redis.hsetnx(keys.run, 'finishedAt', String(finishedAt));
  await core.redis
    .multi()
    .hset(keys.run, 'status', 'finished')
    .srem(activeKey(core), run.plan.id)
    .expire(keys.run, FLEET_RETENTION_SECONDS)
    .expire(keys.targets, FLEET_RETENTION_SECONDS)
    .expire(keys.approvals, FLEET_RETENTION_SECONDS)
    .del(keys.watcher)
    .exec();
  const finished = summarize((await getFleetRun(core, run.plan.id))!, hosts);
  if (first === 1) {
    const { counts } = finished;
    await recordAudit(core, {
      ...fleetAudit(run.plan),
      event: counts.failed > 0 ? 'failed' : 'executed',
      detail: `finished in ${Math.round(finished.durationMs / 1000)}s: ${counts.done} done, ${counts.failed} failed, ${counts.cancelled} cancelled`,
    });
  }
  options.onUpdate?.(finished);
  return finished;
}

/** Runs that are under way and that no process is watching (their watcher died): the bot adopts them. */
export async function orphanedFleetRuns(core: SnapbotCore): Promise<string[]> {
  const active = await core.redis.smembers(activeKey(core));
  const orphans: string[] = [];
  for (const runId of active) {
    if ((await core.redis.exists(fleetKeys(core.prefix, runId).watcher)) === 0) orphans.push(runId);
  }
  return orphans;
}

/** Claims the watcher role of a run for this process (false when another has it). */
export async function claimFleetWatcher(core: SnapbotCore, runId: string): Promise<boolean> {
  return (await core.redis.set(fleetKeys(core.prefix, runId).watcher, '1', 'PX', 10_000, 'NX')) === 'OK';
}

// ---------------------------------------------------------------------------------------
// Fleet list: which VMs have which snapshots, from the inventories (no job is queued)

export interface FleetListRow {
  host: string;
  online: boolean;
  vm: string;
  state: string;
  snapshots: string[];
}

export async function fleetList(core: SnapbotCore, input: { target: string; name?: string | undefined; actor?: Actor | undefined }): Promise<FleetListRow[]> {
  if (input.actor) authorize(core.policy, input.actor, 'list');
  const matches = fleetMatcher(parseFleetSelector(input.target));
  const nameMatcher = input.name ? globToRegExp(input.name) : null;
  const rows: FleetListRow[] = [];
  for (const host of await listHosts(core)) {
    for (const vm of host.vms) {
      if (!matches(host.hostId, vm.name)) continue;
      if (input.actor && !isAllowed(core.policy, input.actor, 'list', { host: host.hostId, vm: vm.name })) continue;
      const snapshots = vm.snapshots.map((snapshot) => snapshot.name).filter((name) => !nameMatcher || nameMatcher.test(name));
      if (nameMatcher && snapshots.length === 0) continue;
      rows.push({ host: host.hostId, online: host.online, vm: vm.name, state: vm.state, snapshots });
    }
  }
  return rows.sort((a, b) => a.vm.localeCompare(b.vm) || a.host.localeCompare(b.host));
}

/** Per host: how many targets, and the first few VM names (for previews). */
export function previewByHost(plan: FleetPlan, firstNames = 5): Array<{ hostId: string; count: number; first: string[] }> {
  const byHost = new Map<string, string[]>();
  for (const target of plan.targets) {
    const list = byHost.get(target.host) ?? [];
    list.push(target.vm);
    byHost.set(target.host, list);
  }
  return [...byHost]
    .map(([hostId, vms]) => ({ hostId, count: vms.length, first: [...new Set(vms)].slice(0, firstNames) }))
    .sort((a, b) => a.hostId.localeCompare(b.hostId));
}
