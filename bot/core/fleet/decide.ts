import { SnapbotError } from '../../../shared/errors.js';
import { fleetJobId, fleetKeys, FLEET_RETENTION_SECONDS, MOVE_TARGETS_SCRIPT, moveTargetsArgs, type FleetTargetState } from '../../../shared/fleet.js';
import { awaitApproval, decideApproval, markActedOn, openApproval, withdrawApproval, type ApprovalSubject, type DecisionOutcome, type FleetSubject, type MirrorKey } from '../approvals.js';
import { recordAudit } from '../audit.js';
import { isAllowed, isApprover, type Actor } from '../authorize.js';
import type { SnapbotCore } from '../core.js';
import { startFleetRun } from './fan-out.js';
import { assertGenuineRun, fleetAudit, getFleetRun, transitionRun, type FleetPlan, type FleetRun, type FleetTarget } from './run-store.js';

/**
 * What people decide about a run: the requester's Confirm (which opens an approval
 * request when the policy wants one), approvers' clicks, Cancel and Withdraw. The
 * approval itself is bot/core/approvals (the same rules as for a revert); the run's
 * status follows it inside the same atomic script.
 */

export type ConfirmOutcome = { kind: 'started'; run: FleetRun } | { kind: 'pending'; run: FleetRun };

/** The run's own record, whose status follows its approval request (`mirror` in approvals.ts). */
export function fleetMirror(core: SnapbotCore, subject: ApprovalSubject): MirrorKey {
  return subject.kind === 'fleet' ? fleetKeys(core.prefix, subject.runId).run : undefined;
}

function subjectOf(plan: FleetPlan): FleetSubject {
  return { kind: 'fleet', runId: plan.id, action: plan.action, selector: plan.selector, name: plan.name, targets: plan.targets.length };
}

/**
 * The requester's Confirm. Runs that need approval become approval requests (decided
 * like a revert: N distinct approvers, no self-approval, real expiry); others start.
 */
export async function confirmFleet(core: SnapbotCore, runId: string, actor?: Actor): Promise<ConfirmOutcome> {
  const run = await getFleetRun(core, runId);
  if (!run) throw new SnapbotError('VALIDATION', `No fleet preview ${runId} (previews last an hour).`);
  // Its approval terms decide below whether it needs approval: they must be the control process's own.
  await assertGenuineRun(core, runId);
  if (actor && run.plan.requester.userId !== actor.userId) throw new SnapbotError('FORBIDDEN', `Only ${run.plan.requester.displayName}, who asked for this run, can confirm it.`);
  if (run.status !== 'preview') throw new SnapbotError('VALIDATION', `Fleet run ${runId} is ${run.status}, not waiting for confirmation.`);
  if (run.plan.targets.length === 0) throw new SnapbotError('VALIDATION', `Fleet run ${runId} has no targets; nothing to do.`);
  if (actor) refuseForbiddenTargets(core, run.plan, actor);
  const { approval } = run.plan;
  if (!approval) return { kind: 'started', run: await startFleetRun(core, runId, 'preview') };
  if (!(await transitionRun(core, runId, 'preview', 'pending'))) throw new SnapbotError('VALIDATION', `Fleet run ${runId} was confirmed already.`);
  await core.redis.persist(fleetKeys(core.prefix, runId).run);
  await openApproval(core, {
    id: runId,
    subject: subjectOf(run.plan),
    terms: { ...approval, reason: `${run.plan.targets.length} target(s): ${approval.reason}` },
    requester: run.plan.requester,
    origin: run.plan.origin,
  });
  return { kind: 'pending', run: (await getFleetRun(core, runId))! };
}

/**
 * Every target checked again for the member who confirms: the policy may have changed
 * since the preview (or the preview was planned for someone else), and a Confirm must
 * never queue a job its clicker may not run.
 */
function refuseForbiddenTargets(core: SnapbotCore, plan: FleetPlan, actor: Actor): void {
  const action = plan.action === 'snapshot' ? 'create' : 'delete';
  const forbidden = plan.targets.filter((target) => !isAllowed(core.policy, actor, action, { host: target.host, vm: target.vm }));
  if (forbidden.length === 0) return;
  const named = forbidden.slice(0, 5).map((target) => `${target.vm} @ ${target.host}`).join(', ');
  throw new SnapbotError('FORBIDDEN', `You may not ${action} on ${forbidden.length} of this run's targets (${named}${forbidden.length > 5 ? ', …' : ''}); nothing was queued. Plan the run again.`);
}

/** One approver's click on a fleet approval request (same rules as a revert's). Starts the run when it is the deciding one. */
export async function decideFleet(
  core: SnapbotCore,
  input: { runId: string; actor: Actor; decision: 'approve' | 'deny' },
): Promise<{ outcome: DecisionOutcome; approvals: number; run: FleetRun | null }> {
  const run = await getFleetRun(core, input.runId);
  if (!run || !run.plan.approval) return { outcome: 'missing', approvals: 0, run };
  const { outcome, approvals } = await decideApproval(core, { id: input.runId, actor: input.actor, decision: input.decision, mirror: fleetKeys(core.prefix, input.runId).run });
  if (outcome === 'denied' || outcome === 'expired') await core.redis.expire(fleetKeys(core.prefix, input.runId).run, FLEET_RETENTION_SECONDS);
  if (outcome === 'approved') await startFleetRun(core, input.runId, 'approved');
  return { outcome, approvals, run: await getFleetRun(core, input.runId) };
}

/**
 * Waits for a fleet approval request's decision, for callers that cannot take the clicks
 * (snapctl): returns once the run is approved (and started); a denial is FORBIDDEN, an
 * expiry APPROVAL_EXPIRED, a withdrawal CANCELLED, and in each case nothing ran.
 */
export async function awaitFleetDecision(core: SnapbotCore, runId: string, options: { timeoutMs: number; pollMs?: number }): Promise<FleetRun> {
  await awaitApproval(core, runId, { ...options, mirrorOf: (subject) => fleetMirror(core, subject) });
  const run = await getFleetRun(core, runId);
  if (!run) throw new SnapbotError('INTERNAL', `Fleet run ${runId} vanished from Redis.`);
  return run;
}

/** Discards a preview (its Cancel button), withdraws a request, or cancels a run; returns the run as it is after. */
export async function cancelFleet(core: SnapbotCore, runId: string, who: { id: string; actor?: Actor | undefined }): Promise<FleetRun> {
  const run = await getFleetRun(core, runId);
  if (!run) throw new SnapbotError('VALIDATION', `No fleet run ${runId}.`);
  if (who.actor && !mayCancel(core, run, who.actor)) {
    throw new SnapbotError('FORBIDDEN', `Only ${run.plan.requester.displayName} or a fleet approver can cancel fleet run ${runId}.`);
  }
  const keys = fleetKeys(core.prefix, runId);
  if (run.status === 'preview') {
    if (await transitionRun(core, runId, 'preview', 'discarded')) await core.redis.multi().hset(keys.run, 'cancelledBy', who.id).expire(keys.run, FLEET_RETENTION_SECONDS).exec();
    return (await getFleetRun(core, runId))!;
  }
  if (run.status === 'pending') {
    if (await withdrawApproval(core, { id: runId, by: who.id, mirror: keys.run })) await core.redis.multi().hset(keys.run, 'cancelledBy', who.id).expire(keys.run, FLEET_RETENTION_SECONDS).exec();
    return (await getFleetRun(core, runId))!;
  }
  if (run.status !== 'running' && run.status !== 'approved') return run;
  if (run.status === 'approved' && run.startedAt === null) {
    // Approved but not fanned out yet (the approving process died): nothing was queued, so it ends here.
    if (await transitionRun(core, runId, 'approved', 'finished')) {
      const cancelled = JSON.stringify({ state: 'cancelled', at: Date.now() });
      const ending = core.redis.multi().hset(keys.run, { cancelledBy: who.id, finishedAt: String(Date.now()), startedAt: String(Date.now()) });
      for (const target of run.plan.targets) ending.hsetnx(keys.targets, String(target.index), cancelled);
      await ending.expire(keys.run, FLEET_RETENTION_SECONDS).expire(keys.targets, FLEET_RETENTION_SECONDS).exec();
      await markActedOn(core, runId);
      await recordAudit(core, { ...fleetAudit(run.plan), actor: who.id, event: 'cancelled', detail: `approved but not started; none of ${run.plan.targets.length} target(s) will run` });
    }
    return (await getFleetRun(core, runId))!;
  }
  await core.redis.hset(keys.run, 'cancelledBy', who.id);
  await transitionRun(core, runId, run.status, 'cancelling');
  const notStarted = run.plan.targets.filter((target) => run.targets.get(target.index)?.state === 'queued');
  const changed = await settleTargets(core, run.plan, notStarted, { state: 'cancelled', at: Date.now() });
  await recordAudit(core, { ...fleetAudit(run.plan), actor: who.id, event: 'cancelled', detail: `${changed} target(s) had not started and will not run` });
  return (await getFleetRun(core, runId))!;
}

function mayCancel(core: SnapbotCore, run: FleetRun, actor: Actor): boolean {
  return run.plan.requester.userId === actor.userId || actor.isAdministrator || isApprover(run.plan.approval?.approvers ?? core.policy.fleet.approval.approvers, actor);
}

/**
 * Moves targets to a final state through the targets' state table (a cancel stops only
 * those not started; a host given up fails those running too), atomically against the
 * workers starting them, and takes their jobs off the queues so nothing runs behind the
 * operator's back later. Returns how many changed.
 */
export async function settleTargets(core: SnapbotCore, plan: FleetPlan, targets: FleetTarget[], state: FleetTargetState): Promise<number> {
  if (targets.length === 0) return 0;
  const keys = fleetKeys(core.prefix, plan.id);
  const moved: FleetTarget[] = [];
  for (let start = 0; start < targets.length; start += 500) {
    const chunk = targets.slice(start, start + 500);
    const outcomes = (await core.redis.eval(MOVE_TARGETS_SCRIPT, 1, keys.targets, ...moveTargetsArgs(state, chunk.map((target) => target.index)))) as string[];
    chunk.forEach((target, i) => {
      if (outcomes[i] === 'ok') moved.push(target);
    });
  }
  // Only a target stopped (cancelled, given up) loses its job, so that it does not run later.
  // Best effort: a job already taken by a worker cannot be removed, and will refuse to start.
  // A target settled done keeps its job: the job is the record that it ran.
  if (state.state !== 'done') {
    await Promise.allSettled(moved.map((target) => core.queueFor(target.host).remove(fleetJobId(plan.id, target.index))));
  }
  return moved.length;
}
