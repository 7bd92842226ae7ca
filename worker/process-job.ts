import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { decodeFailedReason, encodeFailedReason, SnapbotError } from '../shared/errors.js';
import type { Capabilities } from '../shared/hosts.js';
import {
  jobProgressSchema,
  snapshotJobSchema,
  splitJobMarker,
  withJobMarker,
  type JobProgress,
  type JobResult,
  type SnapshotInfo,
  type SnapshotJob,
  type UndoPointOptions,
} from '../shared/jobs.js';
import { defaultSnapshotName } from '../shared/names.js';
import type { Logger } from '../shared/logger.js';
import type { Hypervisor, RawSnapshot } from './hypervisor/hypervisor.js';
import type { HostInventory, ResolvedVm } from './inventory.js';
import { FleetGate } from './fleet-gate.js';
import type { HostSlots } from './host-slots.js';
import type { VmLocks } from './vm-lock.js';

export interface JobProcessorDeps {
  hostId: string;
  hypervisor: Hypervisor;
  inventory: HostInventory;
  locks: VmLocks;
  /** WORKER_CONCURRENCY: operations against libvirt at once; taken after the VM's lock. */
  slots: HostSlots;
  capabilities: () => Capabilities;
  logger: Logger;
  /** For fleet jobs: their run's limits and per-target states live in Redis. */
  redis: Redis;
  prefix: string;
  /** How long a fleet job's concurrency permit lasts if its worker dies holding it. */
  fleetPermitLeaseMs: number;
}

/** A fleet job that finds its run's limits all taken waits this long (plus jitter) in BullMQ's delayed set. */
const FLEET_PERMIT_RETRY_MS = 100;
const STEP_ASIDE = Symbol('step aside for a fleet permit');

type Kind<K extends SnapshotJob['kind']> = Extract<SnapshotJob, { kind: K }>;

/** Runs one snapshot job. Throws BullMQ errors whose message is "CODE: sentence". */
export function createJobProcessor(deps: JobProcessorDeps) {
  return async function processJob(job: Job, token?: string): Promise<JobResult> {
    const jobId = job.id ?? 'unknown';
    const parsed = snapshotJobSchema.safeParse(job.data);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
      throw new UnrecoverableError(encodeFailedReason({ code: 'VALIDATION', message: `Invalid job: ${problems}` }));
    }
    const request = parsed.data;
    // Read before this run reports any progress of its own, which would replace it.
    const earlier = isFirstTry(job) ? undefined : previousTarget(job);
    if (earlier) earlierTargets.set(job, earlier);
    // `host` once per line: the worker's root logger usually carries it already.
    const hostBinding = 'host' in deps.logger.bindings() ? {} : { host: deps.hostId };
    const logger = deps.logger.child({ jobId, ...hostBinding, vm: request.vm, kind: request.kind });
    // Everything this job runs logs with its id, `virsh failed` lines included.
    const jobDeps: JobProcessorDeps = { ...deps, logger, hypervisor: deps.hypervisor.withLogger(logger) };
    const fleetRef = request.kind === 'create' || request.kind === 'delete' ? request.fleet : undefined;
    // A per-host limit of at least this worker's slots is kept by the slots themselves, and
    // waiting there is cheaper than stepping aside and coming back for a permit.
    const limits = fleetRef && fleetRef.perHost >= deps.slots.size ? { ...fleetRef, perHost: 0 } : fleetRef;
    const fleet = limits ? new FleetGate(deps.redis, deps.prefix, limits, jobId, deps.hostId, deps.fleetPermitLeaseMs) : null;
    try {
      if (request.host !== deps.hostId) {
        throw new SnapbotError('INTERNAL', `Job for host ${request.host} reached the worker of host ${deps.hostId}.`);
      }
      // A cancelled target need not wait for its VM or a slot to be refused.
      await fleet?.assertMayStart();
      const started = Date.now();
      // Locked by name (a libvirt domain name is unique on its host), and the name is
      // resolved to a UUID only under the lock: an earlier job may have replaced the VM.
      if (deps.locks.isBusy(request.vm)) {
        await reportProgress(job, { phase: 'waiting-for-vm', host: deps.hostId, message: `waiting for earlier jobs on ${request.vm}` });
      }
      const outcome = await deps.locks.withVmLock(request.vm, () =>
        deps.slots.withSlot(async () => {
          // The run's permit is taken only now, holding a slot, so that no job holds one while it waits.
          if (fleet && !(await fleet.tryAcquirePermit())) return STEP_ASIDE;
          try {
            // Checked again under the lock: a Cancel may have come while this job waited.
            await fleet?.markRunning();
            const vm = await deps.inventory.resolveVm(request.vm, request.uuid, jobDeps.hypervisor);
            await reportProgress(job, { phase: 'running', host: deps.hostId, message: `${request.kind} on ${vm.name}` });
            const result = await runOperation(jobDeps, job, request, vm, started);
            // Recorded before the permit goes back, so the run never shows more running than its limits.
            await fleet?.markDone(result.durationMs, result.kind === 'create' ? result.note : null);
            return { result, uuid: vm.uuid };
          } finally {
            await fleet?.releasePermit().catch((releaseError: unknown) => logger.warn({ err: releaseError }, 'could not release fleet permit'));
          }
        }),
      );
      if (outcome === STEP_ASIDE) {
        // The run's limits are all in use: step aside (not an attempt) so this slot serves other jobs.
        await job.moveToDelayed(Date.now() + FLEET_PERMIT_RETRY_MS + Math.floor(Math.random() * FLEET_PERMIT_RETRY_MS), token).catch((moveError: unknown) => {
          // Our job lock lapsed (an overloaded host): the job is no longer ours to move.
          // BullMQ's stall check hands it out again; nothing ran, so nothing is recorded.
          logger.warn({ err: moveError }, 'could not step aside for a fleet permit; leaving the job to the stall check');
        });
        throw new DelayedError();
      }
      const { result, uuid } = outcome;
      logger.info({ durationMs: result.durationMs }, 'job done');
      // The heartbeat's inventory follows what the job did; a revert changes more (state, undo point), so it re-reads.
      if (result.kind === 'create') deps.inventory.noteSnapshot(uuid, { added: { name: result.snapshot.name, location: result.snapshot.location } });
      else if (result.kind === 'delete') deps.inventory.noteSnapshot(uuid, { removed: result.deleted.name });
      else if (result.kind === 'revert') void deps.inventory.refreshVm(uuid);
      return result;
    } catch (error) {
      if (error instanceof DelayedError) throw error;
      const failure = toBullmqError(error, deps.hostId, logger);
      const final = failure instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      // A cancelled target keeps its state; any other failure that will not be retried is recorded.
      if (fleet && final && !(error instanceof SnapbotError && error.code === 'CANCELLED')) {
        await fleet.markFailed(decodeFailedReason(failure.message)).catch((recordError: unknown) => logger.warn({ err: recordError }, 'could not record fleet failure'));
      }
      throw failure;
    }
  };
}

async function runOperation(
  deps: JobProcessorDeps,
  job: Job,
  request: SnapshotJob,
  vm: ResolvedVm,
  started: number,
): Promise<JobResult> {
  const base = { host: deps.hostId, vm: { name: vm.name, uuid: vm.uuid } };
  const duration = () => Date.now() - started;
  switch (request.kind) {
    case 'create': {
      const created = await createSnapshot(deps, job, request, vm);
      return { ...base, kind: 'create', mode: request.mode, ...created, durationMs: duration() };
    }
    case 'list': {
      const snapshots = (await deps.hypervisor.listSnapshots(vm.uuid)).map(toSnapshotInfo);
      return { ...base, kind: 'list', snapshots, durationMs: duration() };
    }
    case 'info': {
      const snapshot = toSnapshotInfo(await findSnapshot(deps, vm, request.name));
      return { ...base, kind: 'info', snapshot, durationMs: duration() };
    }
    case 'revert': {
      const reverted = await revertSnapshot(deps, job, request, vm);
      const vmState = await deps.hypervisor.domainState(vm.uuid);
      return { ...base, kind: 'revert', ...reverted, vmState, durationMs: duration() };
    }
    case 'delete': {
      const deleted = await deleteSnapshot(deps, job, request, vm);
      return { ...base, kind: 'delete', ...deleted, durationMs: duration() };
    }
  }
}

async function createSnapshot(deps: JobProcessorDeps, job: Job, request: Kind<'create'>, vm: ResolvedVm) {
  const jobId = job.id ?? '';
  // A retry (or a run after a crash) may find the snapshot its own earlier attempt made.
  // A first try cannot, and a name taken by anyone else still fails the create itself.
  const earlier = isFirstTry(job) ? null : await findOwnSnapshot(deps, vm, request.name, jobId);
  if (earlier) return { snapshot: earlier, note: null, recovered: true };

  // Only a full snapshot depends on the VM's state (no memory to save when it is off).
  const state = request.mode === 'full' ? await deps.hypervisor.domainState(vm.uuid) : null;
  const note =
    state !== null && !isRunningState(state) ? `VM was ${state}: there is no memory to save, so the snapshot holds the disks only.` : null;
  try {
    await deps.hypervisor.createSnapshot(vm.uuid, {
      name: request.name,
      mode: request.mode,
      description: withJobMarker(request.description, jobId),
    });
  } catch (error) {
    // SNAPSHOT_EXISTS: libvirt finished an earlier attempt that this process did not see
    // end. TIMEOUT: virsh was killed, but libvirtd may still have completed the snapshot.
    if (isCode(error, 'SNAPSHOT_EXISTS') || isCode(error, 'TIMEOUT')) {
      const own = await findOwnSnapshot(deps, vm, request.name, jobId).catch(() => null);
      if (own) return { snapshot: own, note, recovered: error.code === 'SNAPSHOT_EXISTS' };
    }
    if (isCode(error, 'TIMEOUT')) throw await timedOutMutation(error, () => describeCreateOutcome(deps, vm, request.name));
    throw error;
  }
  // libvirt makes a snapshot it has just created the current one.
  const snapshot = toSnapshotInfo(await deps.hypervisor.snapshotInfo(vm.uuid, request.name, { knownCurrent: true }));
  return { snapshot, note, recovered: false };
}

/** The snapshot of that name if this job made it; SNAPSHOT_EXISTS if someone else did. */
async function findOwnSnapshot(deps: JobProcessorDeps, vm: ResolvedVm, name: string, jobId: string) {
  let existing: RawSnapshot;
  try {
    existing = await deps.hypervisor.snapshotInfo(vm.uuid, name);
  } catch (error) {
    if (error instanceof SnapbotError && error.code === 'SNAPSHOT_NOT_FOUND') return null;
    throw error;
  }
  const snapshot = toSnapshotInfo(existing);
  if (snapshot.jobId === jobId) return snapshot;
  throw new SnapbotError('SNAPSHOT_EXISTS', `Snapshot '${name}' already exists on VM ${vm.name} (created ${snapshot.createdAt}).`);
}

/**
 * A first run of this job: not a retry, not a run after its worker died (a stall).
 * Stepping aside for a fleet permit is neither. Only later runs look for traces of an
 * earlier one, so a first run costs no extra virsh calls.
 */
function isFirstTry(job: Job): boolean {
  return job.attemptsMade === 0 && (job.stalledCounter ?? 0) === 0;
}

const ALREADY_DONE = "(this job's earlier run did it, then stopped before it could report)";

async function revertSnapshot(deps: JobProcessorDeps, job: Job, request: Kind<'revert'>, vm: ResolvedVm) {
  const snapshot = toSnapshotInfo(await findSnapshot(deps, vm, request.name));
  assertAsApproved(snapshot, request.expected, vm);
  if (snapshot.location === 'external' && !deps.capabilities().externalRevert) {
    throw new SnapbotError(
      'UNSUPPORTED',
      `Snapshot '${snapshot.name}' of VM ${vm.name} is external (disk-only); libvirt on ${deps.hostId} is older than 9.9 and cannot revert external snapshots. Nothing was changed.`,
    );
  }
  if (!isFirstTry(job)) {
    // Reverting a second time would throw away whatever the VM wrote since the first.
    const done = await revertAlreadyDone(deps, job, request, vm, snapshot);
    if (done) {
      deps.logger.info({ snapshot: snapshot.name }, 'revert already done by an earlier run of this job; not reverting again');
      const prunedUndoPoints =
        request.undoPoint && done.undoPoint ? await pruneUndoPoints(deps, vm, request.undoPoint.keep, [done.undoPoint.name, snapshot.name]) : [];
      const note = `VM ${vm.name} had already been reverted to '${snapshot.name}' ${ALREADY_DONE}; it was not reverted again, so nothing it wrote since was lost.`;
      return { snapshot, undoPoint: done.undoPoint, prunedUndoPoints, note, recovered: true };
    }
  }
  const undoPoint = request.undoPoint ? await takeUndoPoint(deps, job, vm, snapshot, request.undoPoint) : null;
  await reportProgress(job, { phase: 'running', host: deps.hostId, message: `reverting ${vm.name} to ${snapshot.name}`, target: snapshot });
  try {
    await deps.hypervisor.revertSnapshot(vm.uuid, snapshot.name);
  } catch (error) {
    if (isCode(error, 'TIMEOUT')) throw await timedOutMutation(error, () => describeRevertOutcome(deps, vm, snapshot.name));
    throw error;
  }
  const prunedUndoPoints = request.undoPoint && undoPoint ? await pruneUndoPoints(deps, vm, request.undoPoint.keep, [undoPoint.name, snapshot.name]) : [];
  return { snapshot: { ...snapshot, current: true }, undoPoint, prunedUndoPoints, note: null, recovered: false };
}

/**
 * Whether an earlier run of this job already reverted the VM. With an undo point: this
 * job's undo point exists (marked with the job id) and the target is the VM's current
 * snapshot — taking the undo point made it current, so only the revert can have made the
 * target current again. Without one: the earlier run recorded the target as not current
 * just before reverting, and now it is. (Without an undo point, a revert to the snapshot
 * that was already current cannot be told from one that did not happen, and runs again;
 * the bot and snapctl always ask for an undo point.)
 */
async function revertAlreadyDone(
  deps: JobProcessorDeps,
  job: Job,
  request: Kind<'revert'>,
  vm: ResolvedVm,
  target: SnapshotInfo,
): Promise<{ undoPoint: SnapshotInfo | null } | null> {
  if (!target.current) return null;
  if (request.undoPoint) {
    const undoPoint = await findOwnSnapshot(deps, vm, undoPointName(job), job.id ?? '');
    return undoPoint ? { undoPoint: { ...undoPoint, current: false } } : null;
  }
  const recorded = earlierTargets.get(job);
  const reverted = recorded?.name === target.name && recorded.createdAt === target.createdAt && !recorded.current;
  return reverted ? { undoPoint: null } : null;
}

/** What the host shows after a revert whose virsh was killed: the current snapshot and the VM's state. */
async function describeRevertOutcome(deps: JobProcessorDeps, vm: ResolvedVm, target: string): Promise<string> {
  const [snapshots, state] = await Promise.all([deps.hypervisor.listSnapshots(vm.uuid), deps.hypervisor.domainState(vm.uuid)]);
  const current = snapshots.find((snapshot) => snapshot.current)?.name ?? null;
  const where =
    current === target
      ? `'${target}' is the current snapshot of VM ${vm.name} (the revert may have completed)`
      : `the current snapshot of VM ${vm.name} is ${current === null ? 'none' : `'${current}'`}, not '${target}' (the revert may not have happened)`;
  return `${where}, and the VM is ${state}`;
}

/** What the host shows after a create whose virsh was killed and that left no snapshot of this job's. */
async function describeCreateOutcome(deps: JobProcessorDeps, vm: ResolvedVm, name: string): Promise<string> {
  try {
    await deps.hypervisor.snapshotInfo(vm.uuid, name, { knownCurrent: false });
    return `VM ${vm.name} has a snapshot '${name}' that this job did not make`;
  } catch (error) {
    if (isCode(error, 'SNAPSHOT_NOT_FOUND')) return `VM ${vm.name} has no snapshot '${name}' (yet)`;
    throw error;
  }
}

/** What the host shows after a delete whose virsh was killed: whether the snapshot is still there. */
async function describeDeleteOutcome(deps: JobProcessorDeps, vm: ResolvedVm, name: string): Promise<string> {
  try {
    await deps.hypervisor.snapshotInfo(vm.uuid, name, { knownCurrent: false });
    return `snapshot '${name}' of VM ${vm.name} is still there`;
  } catch (error) {
    if (isCode(error, 'SNAPSHOT_NOT_FOUND')) return `snapshot '${name}' of VM ${vm.name} is gone (the delete may have completed)`;
    throw error;
  }
}

/**
 * virsh was killed at VIRSH_TIMEOUT_MS, but libvirtd may have finished (or still finish)
 * the change. Still TIMEOUT, and not retried, but the message says what the host shows now.
 */
async function timedOutMutation(error: SnapbotError, describe: () => Promise<string>): Promise<SnapbotError> {
  let shows: string;
  try {
    shows = `The host now shows: ${await describe()}.`;
  } catch (checkError) {
    shows = `What the host shows now could not be read (${checkError instanceof Error ? checkError.message : String(checkError)}).`;
  }
  return new SnapbotError('TIMEOUT', `${error.message}; it may have completed anyway. ${shows}`, {
    detail: error.detail,
    permanent: true,
    cause: error,
  });
}

function isCode(error: unknown, code: SnapbotError['code']): error is SnapbotError {
  return error instanceof SnapbotError && error.code === code;
}

/** Undo points are named after the job's creation time, so a retried job finds its own. */
export const UNDO_POINT_PREFIX = 'pre-revert-';

function undoPointName(job: Job): string {
  return `${UNDO_POINT_PREFIX}${defaultSnapshotName(new Date(job.timestamp)).slice('snap-'.length)}`;
}

/**
 * The safety snapshot of the VM as it is now, taken before a revert throws that state
 * away. A host that cannot revert external snapshots gets an internal (full) one, or
 * the undo point could not be used.
 */
async function takeUndoPoint(deps: JobProcessorDeps, job: Job, vm: ResolvedVm, target: SnapshotInfo, options: UndoPointOptions) {
  const jobId = job.id ?? '';
  const name = undoPointName(job);
  const earlier = await findOwnSnapshot(deps, vm, name, jobId);
  if (earlier) return earlier;
  const mode = options.mode === 'disk-only' && !deps.capabilities().externalRevert ? 'full' : options.mode;
  await reportProgress(job, { phase: 'running', host: deps.hostId, message: `taking undo point ${name} of ${vm.name}` });
  await deps.hypervisor.createSnapshot(vm.uuid, {
    name,
    mode,
    description: withJobMarker(`undo point before reverting to '${target.name}'`, jobId),
  });
  return toSnapshotInfo(await deps.hypervisor.snapshotInfo(vm.uuid, name));
}

/** Keeps the newest `keep` of snapbot's undo points on the VM; deletes older internal ones. */
async function pruneUndoPoints(deps: JobProcessorDeps, vm: ResolvedVm, keep: number, protectedNames: string[]): Promise<string[]> {
  const undoPoints = (await deps.hypervisor.listSnapshots(vm.uuid))
    .map(toSnapshotInfo)
    .filter((snapshot) => snapshot.name.startsWith(UNDO_POINT_PREFIX) && snapshot.jobId !== null && snapshot.location === 'internal');
  const pruned: string[] = [];
  // listSnapshots is newest first.
  for (const snapshot of undoPoints.slice(keep)) {
    if (protectedNames.includes(snapshot.name)) continue;
    try {
      await deps.hypervisor.deleteSnapshot(vm.uuid, snapshot.name);
      pruned.push(snapshot.name);
    } catch (error) {
      deps.logger.warn({ err: error, vm: vm.name, snapshot: snapshot.name }, 'could not prune an old undo point');
    }
  }
  return pruned;
}

/** Refuses when the snapshot is not the one that was approved (deleted and made again since). */
function assertAsApproved(snapshot: SnapshotInfo, expected: { createdAt: string } | undefined, vm: ResolvedVm): void {
  if (expected === undefined || Date.parse(expected.createdAt) === Date.parse(snapshot.createdAt)) return;
  throw new SnapbotError(
    'APPROVAL_STALE',
    `Snapshot '${snapshot.name}' of VM ${vm.name} was created at ${snapshot.createdAt}, but the approval was for the one created at ${expected.createdAt}. Nothing was done; ask again.`,
  );
}

async function deleteSnapshot(deps: JobProcessorDeps, job: Job, request: Kind<'delete'>, vm: ResolvedVm) {
  let raw: RawSnapshot;
  try {
    raw = await findSnapshot(deps, vm, request.name);
  } catch (error) {
    // Gone, and this job's earlier run recorded it as its target just before deleting it:
    // that run deleted it and died before it could report. Done; nothing to do again.
    const earlier = earlierTargets.get(job);
    if (isCode(error, 'SNAPSHOT_NOT_FOUND') && earlier?.name === request.name) {
      deps.logger.info({ snapshot: request.name }, 'delete already done by an earlier run of this job');
      const note = `Snapshot '${request.name}' of VM ${vm.name} had already been deleted ${ALREADY_DONE}; nothing was deleted again.`;
      return { deleted: earlier, note, recovered: true };
    }
    throw error;
  }
  const snapshot = toSnapshotInfo(raw);
  assertAsApproved(snapshot, request.expected, vm);
  if (snapshot.location === 'external') {
    if (!deps.capabilities().externalDelete) {
      throw new SnapbotError(
        'UNSUPPORTED',
        `Snapshot '${snapshot.name}' of VM ${vm.name} is external; libvirt on ${deps.hostId} is older than 9.0 and cannot delete external snapshots. Nothing was changed.`,
      );
    }
    await refuseIfInternalSnapshotsDependOn(deps, vm, snapshot);
  }
  await reportProgress(job, { phase: 'running', host: deps.hostId, message: `deleting ${snapshot.name} of ${vm.name}`, target: snapshot });
  try {
    await deps.hypervisor.deleteSnapshot(vm.uuid, snapshot.name);
  } catch (error) {
    if (isCode(error, 'TIMEOUT')) throw await timedOutMutation(error, () => describeDeleteOutcome(deps, vm, snapshot.name));
    throw error;
  }
  return { deleted: snapshot, note: null, recovered: false };
}

/**
 * Deleting an external snapshot commits its overlay; internal snapshots stored inside
 * that overlay would go stale, and reverting to one later breaks the VM (notes/libvirt.md,
 * virt-manager issue 811). Refuse rather than lose them.
 */
async function refuseIfInternalSnapshotsDependOn(deps: JobProcessorDeps, vm: ResolvedVm, external: SnapshotInfo) {
  const all = await deps.hypervisor.listSnapshots(vm.uuid);
  const byName = new Map(all.map((snapshot) => [snapshot.name, snapshot]));
  const dependents = all.filter((snapshot) => {
    if (snapshot.location !== 'internal') return false;
    for (let parent = snapshot.parent; parent !== null; parent = byName.get(parent)?.parent ?? null) {
      if (parent === external.name) return true;
    }
    return false;
  });
  if (dependents.length > 0) {
    throw new SnapbotError(
      'UNSUPPORTED',
      `Snapshot '${external.name}' of VM ${vm.name} is external and internal snapshots were taken on top of it (${dependents
        .map((snapshot) => snapshot.name)
        .join(', ')}); deleting it would make them unusable. Delete those first. Nothing was changed.`,
    );
  }
}

async function findSnapshot(deps: JobProcessorDeps, vm: ResolvedVm, name: string): Promise<RawSnapshot> {
  try {
    return await deps.hypervisor.snapshotInfo(vm.uuid, name);
  } catch (error) {
    if (error instanceof SnapbotError && error.code === 'SNAPSHOT_NOT_FOUND') {
      throw new SnapbotError('SNAPSHOT_NOT_FOUND', `VM ${vm.name} has no snapshot named '${name}'.`, { cause: error });
    }
    throw error;
  }
}

/**
 * The target an earlier run of this job recorded just before acting. A job BullMQ hands
 * out again (after a stall or a failed attempt) carries its progress as the JSON text
 * stored in Redis, not as the object the earlier run passed to `updateProgress`.
 */
function previousTarget(job: Job): SnapshotInfo | undefined {
  let raw: unknown = job.progress;
  if (typeof raw === 'string') {
    try {
      raw = JSON.parse(raw);
    } catch {
      return undefined;
    }
  }
  const progress = jobProgressSchema.safeParse(raw);
  return progress.success ? progress.data.target : undefined;
}

export function toSnapshotInfo(raw: RawSnapshot): SnapshotInfo {
  const { description, jobId } = splitJobMarker(raw.description);
  return { ...raw, description, jobId };
}

function isRunningState(state: string): boolean {
  return state === 'running' || state === 'paused' || state === 'pmsuspended';
}

/**
 * The target an earlier run of a job recorded, for the job's current run. Its progress
 * reports carry it on, so a run that dies before reaching its own target report does
 * not erase what the run before it did.
 */
const earlierTargets = new WeakMap<Job, SnapshotInfo>();

async function reportProgress(job: Job, progress: JobProgress): Promise<void> {
  const target = progress.target ?? earlierTargets.get(job);
  await job.updateProgress(target ? { ...progress, target } : progress);
}

/**
 * Permanent failures become UnrecoverableError (no retry); transient ones plain errors
 * that BullMQ retries with backoff. Errors that are not SnapbotErrors are internal: the
 * user gets a reference, the log gets the detail.
 */
function toBullmqError(error: unknown, hostId: string, logger: Logger): Error {
  if (error instanceof UnrecoverableError) return error;
  if (error instanceof SnapbotError) {
    logger.warn({ code: error.code, detail: error.detail }, error.message);
    const reason = encodeFailedReason(error.toPayload());
    return error.permanent ? new UnrecoverableError(reason) : new Error(reason);
  }
  const reference = randomBytes(4).toString('hex');
  logger.error({ err: error, reference }, 'internal error in job');
  return new UnrecoverableError(
    encodeFailedReason({ code: 'INTERNAL', message: `Internal error on host ${hostId} (ref ${reference}); see the worker's log.` }),
  );
}
