import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { SnapbotError } from '../../shared/errors.js';
import type { JobResult, ResultOf } from '../../shared/jobs.js';
import { snapshotNameSchema, vmNameSchema } from '../../shared/names.js';
import { approvalRuleFor } from '../../shared/policy.js';
import { awaitApproval, genuineApproval, markActedOn, openApproval, type ApprovalRequest, type Requester, type SnapshotSubject } from './approvals.js';
import { recordAudit } from './audit.js';
import { authorize, type Actor } from './authorize.js';
import type { SnapbotCore } from './core.js';
import { runJob, waitForJob, type RunJobOptions } from './dispatch.js';
import { resolveTarget } from './hosts.js';
import { parseInput } from './parse-input.js';
import { deleteSnapshot, refuseUnsupportedRevert, revertSnapshot, type OperationOptions } from './snapshots.js';

/**
 * Reverts and deletes, as Discord and snapctl ask for them: run at once when the policy
 * wants no approval (or for a break-glass run it allows), else an approval request bound
 * to the exact snapshot (host, VM UUID, name, creation time) that runs once approved.
 */

export interface GuardedRequest {
  action: 'revert' | 'delete';
  vm: string;
  host?: string | undefined;
  name: string;
  requester: Requester;
  /** Who is asking (a chat member, or a verified snapctl operator); checked against the policy. */
  actor?: Actor | undefined;
  origin: ApprovalRequest['origin'];
  /** snapctl's `--break-glass`: run at once where the policy allows it, audited as such. */
  breakGlass?: { reason: string } | undefined;
}

/** Either the request that now waits for teammates, or the result of the action that ran. */
export type GuardedOutcome = { kind: 'pending'; request: ApprovalRequest & { subject: SnapshotSubject } } | { kind: 'done'; result: ResultOf<'revert'> | ResultOf<'delete'> };

const guardedSchema = z.object({ vm: vmNameSchema, name: snapshotNameSchema });

/** A revert, or an approval request for it (the policy decides). */
export function requestRevert(core: SnapbotCore, input: Omit<GuardedRequest, 'action'>, options: OperationOptions): Promise<GuardedOutcome> {
  return requestGuarded(core, { ...input, action: 'revert' }, options);
}

/** A delete, or an approval request for it (the policy decides). */
export function requestDelete(core: SnapbotCore, input: Omit<GuardedRequest, 'action'>, options: OperationOptions): Promise<GuardedOutcome> {
  return requestGuarded(core, { ...input, action: 'delete' }, options);
}

async function requestGuarded(core: SnapbotCore, input: GuardedRequest, options: OperationOptions): Promise<GuardedOutcome> {
  const { vm, name } = parseInput(guardedSchema, input);
  const direct = input.action === 'revert' ? revertSnapshot : deleteSnapshot;
  const operation = { vm, host: input.host, name, requestedBy: input.requester.id, actor: input.actor, breakGlass: input.breakGlass, origin: input.origin };
  if (input.breakGlass) return { kind: 'done', result: await direct(core, operation, options) };

  if (input.actor) authorize(core.policy, input.actor, input.action, { vm });
  const { host, uuid } = await resolveTarget(core, vm, input.host);
  if (input.actor) authorize(core.policy, input.actor, input.action, { vm, host: host.hostId });
  const rule = approvalRuleFor(core.policy, input.action, host.hostId, vm);
  if (!rule) return { kind: 'done', result: await direct(core, { ...operation, host: host.hostId }, options) };

  // The snapshot is read from the host now: its creation time binds the approval.
  const { snapshot, vm: found } = await runJob(core, { kind: 'info', host: host.hostId, vm, uuid, requestedBy: input.requester.id, name }, { timeoutMs: options.timeoutMs });
  if (input.action === 'revert') refuseUnsupportedRevert(host, vm, snapshot);
  const id = randomBytes(8).toString('hex');
  const subject: SnapshotSubject = {
    kind: 'snapshot',
    action: input.action,
    host: host.hostId,
    vm,
    uuid: found.uuid,
    snapshot,
    undoPoint: input.action === 'revert' ? core.policy.undoPoints : null,
    jobId: `approval-${id}`,
  };
  const terms = { approvers: rule.approvers, required: rule.required, allowSelfApproval: rule.allowSelfApproval, ttlMinutes: rule.ttlMinutes, reason: `the policy puts ${input.action}s on ${vm} behind approval` };
  const request = await openApproval(core, { id, subject, terms, requester: input.requester, origin: input.origin });
  return { kind: 'pending', request: { ...request, subject } };
}

/** The snapshot subject of a request, or INTERNAL when a request of another kind was passed. */
export function snapshotSubjectOf(request: ApprovalRequest): SnapshotSubject {
  if (request.subject.kind !== 'snapshot') throw new SnapbotError('INTERNAL', `Approval request ${request.id} is not about one snapshot.`);
  return request.subject;
}

/**
 * Runs an approved request's job and waits for its result. Safe to call more than once
 * (after a crash, from another bot process): the job id is fixed, so BullMQ adds it once.
 */
export async function executeApproved(core: SnapbotCore, asked: ApprovalRequest, options: Pick<RunJobOptions, 'timeoutMs' | 'onProgress'>): Promise<ResultOf<'revert'> | ResultOf<'delete'>> {
  // Read again and checked: the request and each approval must be the control process's own, whatever Redis says.
  const { request } = await genuineApproval(core, asked.id);
  const subject = snapshotSubjectOf(request);
  const base = { host: subject.host, vm: subject.vm, uuid: subject.uuid, requestedBy: request.requester.id, name: subject.snapshot.name, expected: { createdAt: subject.snapshot.createdAt } };
  const runOptions: RunJobOptions = { ...options, jobId: subject.jobId, approvalId: request.id, onQueued: () => void markActedOn(core, request.id) };
  const about = { actor: request.requester.id, action: subject.action, host: subject.host, vm: subject.vm, snapshot: subject.snapshot.name, requestId: request.id, jobId: subject.jobId };
  try {
    const result =
      subject.action === 'revert'
        ? await runJob(core, { ...base, kind: 'revert', ...(subject.undoPoint ? { undoPoint: subject.undoPoint } : {}) }, runOptions)
        : await runJob(core, { ...base, kind: 'delete' }, runOptions);
    await recordAudit(core, { ...about, event: 'executed', detail: result.kind === 'revert' && result.undoPoint ? `undo point ${result.undoPoint.name}` : 'done' });
    return result;
  } catch (error) {
    await recordAudit(core, { ...about, event: 'failed', detail: error instanceof SnapbotError ? `${error.code}: ${error.message}` : String(error) });
    throw error;
  }
}

/**
 * Waits for a request's decision and then for its job's result (which a bot runs): a
 * denial is FORBIDDEN, an expiry APPROVAL_EXPIRED, and in both cases nothing ran. For
 * callers that cannot take the clicks themselves (snapctl).
 */
export async function awaitApprovedResult(core: SnapbotCore, request: ApprovalRequest, options: { timeoutMs: number; onApproved?: (approvals: number) => void }): Promise<JobResult> {
  const subject = snapshotSubjectOf(request);
  const decided = await awaitApproval(core, request.id, { timeoutMs: options.timeoutMs });
  options.onApproved?.(decided.approvals.length);
  return waitForJob(core, subject.host, subject.jobId, options.timeoutMs);
}
