import { z } from 'zod';
import { SnapbotError } from '../../shared/errors.js';
import type { HostStatus } from '../../shared/hosts.js';
import { approvalRuleFor } from '../../shared/policy.js';
import { announce, recordAudit } from './audit.js';
import { snapshotModeSchema, type JobProgress, type ResultOf } from '../../shared/jobs.js';
import { defaultSnapshotName, descriptionSchema, snapshotNameSchema, vmNameSchema } from '../../shared/names.js';
import type { SnapbotCore } from './core.js';
import { runJob } from './dispatch.js';
import { authorize, type Actor } from './authorize.js';
import { resolveTarget, type ResolvedTarget } from './hosts.js';
import { parseInput } from './parse-input.js';

/** What Discord and snapctl pass in: raw user input, validated here once for both. */
export interface OperationRequest {
  vm: string;
  host?: string | undefined;
  name?: string | undefined;
  mode?: string | undefined;
  description?: string | undefined;
  /** `snapctl:user@machine` or `discord:<user id>`. */
  requestedBy: string;
  /** Who is asking (a chat member, or a snapctl operator the control process verified); the policy's rules decide what they may do. */
  actor?: Actor | undefined;
  /**
   * snapctl's `--break-glass`: run a revert or delete that needs approval at once. Only
   * when the policy allows it, and always audited as such.
   */
  breakGlass?: { reason: string } | undefined;
  /** Where the request came from; break-glass is for snapctl only. */
  origin?: 'discord' | 'snapctl' | undefined;
}

export interface OperationOptions {
  timeoutMs: number;
  onQueued?: (jobId: string, host: string) => void;
  onProgress?: (progress: JobProgress) => void;
}

const targetSchema = z.object({ vm: vmNameSchema, host: z.string().optional(), requestedBy: z.string().min(1) });
type PolicyAction = Parameters<typeof authorize>[2];

/** Finds the VM's host, then checks the actor (if any) may do `action` there, before anything is queued. */
async function resolveAndAuthorize(core: SnapbotCore, request: OperationRequest, action: PolicyAction, vm: string, host: string | undefined): Promise<ResolvedTarget> {
  if (request.actor) authorize(core.policy, request.actor, action, { vm });
  const target = await resolveTarget(core, vm, host);
  if (request.actor) authorize(core.policy, request.actor, action, { vm, host: target.host.hostId });
  return target;
}
const createSchema = targetSchema.extend({
  name: snapshotNameSchema.optional(),
  mode: snapshotModeSchema.default('disk-only'),
  description: descriptionSchema.optional(),
});
const namedSchema = targetSchema.extend({ name: snapshotNameSchema });


function jobOptions(options: OperationOptions, host: string) {
  return {
    timeoutMs: options.timeoutMs,
    onQueued: (jobId: string) => options.onQueued?.(jobId, host),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
}

/** Takes a snapshot: disk-only (atomic, external) by default, or full (memory + disk). */
export async function createSnapshot(core: SnapbotCore, request: OperationRequest, options: OperationOptions): Promise<ResultOf<'create'>> {
  const input = parseInput(createSchema, request);
  const { host, uuid } = await resolveAndAuthorize(core, request, 'create', input.vm, input.host);
  const name = input.name ?? defaultSnapshotName();
  return auditDirect(core, request, { action: 'create', host: host.hostId, vm: input.vm, snapshot: name }, () =>
    runJob(
      core,
      { kind: 'create', host: host.hostId, vm: input.vm, uuid, requestedBy: input.requestedBy, name, mode: input.mode, description: input.description },
      jobOptions(options, host.hostId),
    ),
  );
}

/** FORBIDDEN unless `actor` may list the VM of a listing someone else asked for (its page buttons). */
export function authorizeListing(core: SnapbotCore, actor: Actor, listing: ResultOf<'list'>): void {
  authorize(core.policy, actor, 'list', { host: listing.host, vm: listing.vm.name });
}

/** Every snapshot of the VM, newest first, read from libvirt now (not from the inventory). */
export async function listSnapshots(core: SnapbotCore, request: OperationRequest, options: OperationOptions): Promise<ResultOf<'list'>> {
  const input = parseInput(targetSchema, request);
  const { host, uuid } = await resolveAndAuthorize(core, request, 'list', input.vm, input.host);
  return runJob(core, { kind: 'list', host: host.hostId, vm: input.vm, uuid, requestedBy: input.requestedBy }, jobOptions(options, host.hostId));
}

export async function snapshotInfo(core: SnapbotCore, request: OperationRequest, options: OperationOptions): Promise<ResultOf<'info'>> {
  const input = parseInput(namedSchema, request);
  const { host, uuid } = await resolveAndAuthorize(core, request, 'info', input.vm, input.host);
  return runJob(
    core,
    { kind: 'info', host: host.hostId, vm: input.vm, uuid, requestedBy: input.requestedBy, name: input.name },
    jobOptions(options, host.hostId),
  );
}

/**
 * UNSUPPORTED, before anything is queued or anyone is asked to approve, when the host's
 * libvirt cannot revert this kind of snapshot (external ones need 9.9; Debian 12 has 9.0).
 */
export function refuseUnsupportedRevert(host: HostStatus, vm: string, snapshot: { name: string; location: string }): void {
  if (snapshot.location !== 'external' || host.capabilities.externalRevert) return;
  throw new SnapbotError(
    'UNSUPPORTED',
    `Snapshot '${snapshot.name}' of ${vm} is external (disk-only) and libvirt ${host.libvirtVersion ?? '(unknown)'} on ${host.hostId} cannot revert external snapshots (needs 9.9 or newer). Nothing was queued.`,
  );
}

/**
 * Refuses an action that the policy puts behind approval, unless this is a break-glass
 * run that the policy allows (then it is recorded as one).
 */
async function requireNoApproval(core: SnapbotCore, request: OperationRequest, action: 'revert' | 'delete', host: string, vm: string, name: string): Promise<void> {
  const rule = approvalRuleFor(core.policy, action, host, vm);
  if (!rule) return;
  if (!request.breakGlass) {
    throw new SnapbotError(
      'APPROVAL_REQUIRED',
      `To ${action} ${vm} on ${host}, ${rule.required} approval(s) from ${rule.approvers.join(', ')} are needed: ask in Discord (/snapshot ${action}) or with snapctl ${action} (which opens the request and waits).`,
    );
  }
  if (request.origin !== 'snapctl' || !core.policy.breakGlass.snapctl) {
    throw new SnapbotError('FORBIDDEN', 'Break-glass is not allowed by the policy (breakGlass.snapctl: true allows it for snapctl).');
  }
  await recordAudit(core, { event: 'break-glass', actor: request.requestedBy, action, host, vm, snapshot: name, detail: `without approval: ${request.breakGlass.reason}` });
  await announce(core, `Break-glass: ${request.requestedBy} is running ${action} of ${vm}${name ? ` / ${name}` : ''} on ${host} without approval. Reason: ${request.breakGlass.reason}`);
}

/** Records the outcome of a change made without an approval request. */
async function auditDirect<T>(core: SnapbotCore, request: OperationRequest, about: { action: string; host: string; vm: string; snapshot?: string | undefined }, work: () => Promise<T & { kind: string }>): Promise<T> {
  try {
    const result = await work();
    await recordAudit(core, { ...about, event: 'direct', actor: request.requestedBy, detail: 'done' });
    return result;
  } catch (error) {
    if (error instanceof SnapbotError && ['VALIDATION', 'FORBIDDEN', 'APPROVAL_REQUIRED', 'HOST_OFFLINE', 'HOST_UNKNOWN'].includes(error.code)) throw error;
    await recordAudit(core, { ...about, event: 'failed', actor: request.requestedBy, detail: error instanceof SnapbotError ? `${error.code}: ${error.message}` : String(error) });
    throw error;
  }
}

/**
 * Reverts the VM to a snapshot, taking an undo point first (policy `undoPoints`). Refused
 * at once, before anything is queued, when the host's libvirt cannot revert that kind of
 * snapshot, or when the policy wants approval (see approvals.ts).
 */
export async function revertSnapshot(core: SnapbotCore, request: OperationRequest, options: OperationOptions): Promise<ResultOf<'revert'>> {
  const input = parseInput(namedSchema, request);
  const { host, uuid } = await resolveAndAuthorize(core, request, 'revert', input.vm, input.host);
  const known = host.vms.find((vm) => vm.name === input.vm)?.snapshots.find((snapshot) => snapshot.name === input.name);
  if (known) refuseUnsupportedRevert(host, input.vm, known);
  await requireNoApproval(core, request, 'revert', host.hostId, input.vm, input.name);
  return auditDirect(core, request, { action: 'revert', host: host.hostId, vm: input.vm, snapshot: input.name }, async () => {
    // A revert is bound to the snapshot as it is now (its creation time): one re-created
    // under the same name in between is refused by the worker, not reverted to.
    const { snapshot } = await runJob(core, { kind: 'info', host: host.hostId, vm: input.vm, uuid, requestedBy: input.requestedBy, name: input.name }, { timeoutMs: options.timeoutMs });
    refuseUnsupportedRevert(host, input.vm, snapshot);
    return runJob(
      core,
      {
        kind: 'revert',
        host: host.hostId,
        vm: input.vm,
        uuid,
        requestedBy: input.requestedBy,
        name: input.name,
        expected: { createdAt: snapshot.createdAt },
        undoPoint: core.policy.undoPoints,
      },
      jobOptions(options, host.hostId),
    );
  });
}

export async function deleteSnapshot(core: SnapbotCore, request: OperationRequest, options: OperationOptions): Promise<ResultOf<'delete'>> {
  const input = parseInput(namedSchema, request);
  const { host, uuid } = await resolveAndAuthorize(core, request, 'delete', input.vm, input.host);
  await requireNoApproval(core, request, 'delete', host.hostId, input.vm, input.name);
  return auditDirect(core, request, { action: 'delete', host: host.hostId, vm: input.vm, snapshot: input.name }, () =>
    runJob(
      core,
      { kind: 'delete', host: host.hostId, vm: input.vm, uuid, requestedBy: input.requestedBy, name: input.name },
      jobOptions(options, host.hostId),
    ),
  );
}
