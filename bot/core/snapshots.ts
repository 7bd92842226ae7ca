import { z } from 'zod';
import { SnapbotError } from '../../shared/errors.js';
import { snapshotModeSchema, type JobProgress, type ResultOf } from '../../shared/jobs.js';
import { defaultSnapshotName, descriptionSchema, snapshotNameSchema, vmNameSchema } from '../../shared/names.js';
import type { SnapbotCore } from './core.js';
import { runJob } from './dispatch.js';
import { authorize, type Actor } from './authorize.js';
import { resolveTarget, type ResolvedTarget } from './hosts.js';

/** What Discord and snapctl pass in: raw user input, validated here once for both. */
export interface OperationRequest {
  vm: string;
  host?: string | undefined;
  name?: string | undefined;
  mode?: string | undefined;
  description?: string | undefined;
  /** `snapctl:user@machine` or `discord:<user id>`. */
  requestedBy: string;
  /** The chat member asking; the policy decides what they may do. snapctl sends none: a shell with Redis access is trusted. */
  actor?: Actor | undefined;
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

function parseRequest<S extends z.ZodType>(schema: S, request: OperationRequest): z.infer<S> {
  const parsed = schema.safeParse(request);
  if (parsed.success) return parsed.data;
  throw new SnapbotError('VALIDATION', parsed.error.issues.map((issue) => issue.message).join('; '));
}

function jobOptions(options: OperationOptions, host: string) {
  return {
    timeoutMs: options.timeoutMs,
    onQueued: (jobId: string) => options.onQueued?.(jobId, host),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
}

/** Takes a snapshot: disk-only (atomic, external) by default, or full (memory + disk). */
export async function createSnapshot(core: SnapbotCore, request: OperationRequest, options: OperationOptions): Promise<ResultOf<'create'>> {
  const input = parseRequest(createSchema, request);
  const { host, uuid } = await resolveAndAuthorize(core, request, 'create', input.vm, input.host);
  return runJob(
    core,
    {
      kind: 'create',
      host: host.hostId,
      vm: input.vm,
      uuid,
      requestedBy: input.requestedBy,
      name: input.name ?? defaultSnapshotName(),
      mode: input.mode,
      description: input.description,
    },
    jobOptions(options, host.hostId),
  );
}

/** Every snapshot of the VM, newest first, read from libvirt now (not from the inventory). */
export async function listSnapshots(core: SnapbotCore, request: OperationRequest, options: OperationOptions): Promise<ResultOf<'list'>> {
  const input = parseRequest(targetSchema, request);
  const { host, uuid } = await resolveAndAuthorize(core, request, 'list', input.vm, input.host);
  return runJob(core, { kind: 'list', host: host.hostId, vm: input.vm, uuid, requestedBy: input.requestedBy }, jobOptions(options, host.hostId));
}

export async function snapshotInfo(core: SnapbotCore, request: OperationRequest, options: OperationOptions): Promise<ResultOf<'info'>> {
  const input = parseRequest(namedSchema, request);
  const { host, uuid } = await resolveAndAuthorize(core, request, 'info', input.vm, input.host);
  return runJob(
    core,
    { kind: 'info', host: host.hostId, vm: input.vm, uuid, requestedBy: input.requestedBy, name: input.name },
    jobOptions(options, host.hostId),
  );
}

/**
 * Reverts the VM to a snapshot. Refused at once, before anything is queued, when the
 * host's libvirt cannot revert that kind of snapshot.
 */
export async function revertSnapshot(core: SnapbotCore, request: OperationRequest, options: OperationOptions): Promise<ResultOf<'revert'>> {
  const input = parseRequest(namedSchema, request);
  const { host, uuid } = await resolveAndAuthorize(core, request, 'revert', input.vm, input.host);
  const known = host.vms.find((vm) => vm.name === input.vm)?.snapshots.find((snapshot) => snapshot.name === input.name);
  if (known?.location === 'external' && !host.capabilities.externalRevert) {
    throw new SnapbotError(
      'UNSUPPORTED',
      `Snapshot '${input.name}' of ${input.vm} is external (disk-only) and libvirt ${host.libvirtVersion ?? '(unknown)'} on ${host.hostId} cannot revert external snapshots (needs 9.9 or newer). Nothing was queued.`,
    );
  }
  return runJob(
    core,
    { kind: 'revert', host: host.hostId, vm: input.vm, uuid, requestedBy: input.requestedBy, name: input.name },
    jobOptions(options, host.hostId),
  );
}

export async function deleteSnapshot(core: SnapbotCore, request: OperationRequest, options: OperationOptions): Promise<ResultOf<'delete'>> {
  const input = parseRequest(namedSchema, request);
  const { host, uuid } = await resolveAndAuthorize(core, request, 'delete', input.vm, input.host);
  return runJob(
    core,
    { kind: 'delete', host: host.hostId, vm: input.vm, uuid, requestedBy: input.requestedBy, name: input.name },
    jobOptions(options, host.hostId),
  );
}
