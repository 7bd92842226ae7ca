import type { Job } from 'bullmq';
import { SnapbotError } from '../shared/errors.js';
import { splitJobMarker, withJobMarker, type SnapshotInfo, type SnapshotJob, type UndoPointOptions } from '../shared/jobs.js';
import { defaultSnapshotName } from '../shared/names.js';
import type { RawSnapshot } from './hypervisor/hypervisor.js';
import type { ResolvedVm } from './inventory.js';
import { earlierTargets, isFirstTry, reportProgress, type JobProcessorDeps } from './job-context.js';
import { guardSpace, statFilesystem } from './space-guard.js';

/**
 * The three operations that change a host — create, revert, delete — each safe to run
 * again after a crash: a later run looks for the earlier run's work (its snapshot, its
 * undo point, the snapshot gone) and reports it instead of acting twice.
 */

type Kind<K extends SnapshotJob['kind']> = Extract<SnapshotJob, { kind: K }>;

export async function createSnapshot(deps: JobProcessorDeps, job: Job, request: Kind<'create'>, vm: ResolvedVm) {
  const jobId = job.id ?? '';
  // A retry (or a run after a crash) may find the snapshot its own earlier attempt made.
  // A first try cannot, and a name taken by anyone else still fails the create itself.
  const earlier = isFirstTry(job) ? null : await findOwnSnapshot(deps, vm, request.name, jobId);
  if (earlier) return { snapshot: earlier, note: null, recovered: true };

  // A space guard must know before the create whether a full snapshot saves memory (a VM
  // that is off has none to save); otherwise the snapshot itself says so afterwards.
  const state = request.mode === 'full' && request.spaceGuard ? await deps.hypervisor.domainState(vm.uuid) : null;
  // Scheduled creates carry a space guard: refuse before creating anything when the storage is too full.
  const spaceNote = request.spaceGuard
    ? await guardSpace({
        hypervisor: deps.hypervisor,
        statfs: deps.statfs ?? statFilesystem,
        logger: deps.logger,
        uuid: vm.uuid,
        request: {
          vm: vm.name,
          minFreePercent: request.spaceGuard.minFreePercent,
          guard: request.schedule ? "the schedule's space guard" : 'the space guard',
        },
        savesMemory: state !== null && isRunningState(state),
      })
    : null;
  const noteFor = (snapshot: RawSnapshot | SnapshotInfo) => [memoryNote(request.mode, snapshot), spaceNote].filter((text) => text !== null).join(' ') || null;
  let created: RawSnapshot;
  try {
    created = await deps.hypervisor.createSnapshot(vm.uuid, {
      name: request.name,
      mode: request.mode,
      description: withJobMarker(request.description, jobId, request.schedule),
    });
  } catch (error) {
    // SNAPSHOT_EXISTS: libvirt finished an earlier attempt that this process did not see
    // end. TIMEOUT: virsh was killed, but libvirtd may still have completed the snapshot.
    if (isCode(error, 'SNAPSHOT_EXISTS') || isCode(error, 'TIMEOUT')) {
      const own = await findOwnSnapshot(deps, vm, request.name, jobId).catch(() => null);
      if (own) return { snapshot: own, note: noteFor(own), recovered: error.code === 'SNAPSHOT_EXISTS' };
    }
    if (isCode(error, 'TIMEOUT')) throw await timedOutMutation(error, () => describeCreateOutcome(deps, vm, request.name));
    throw error;
  }
  const snapshot = toSnapshotInfo(created);
  return { snapshot, note: noteFor(created), recovered: false };
}

/** The state words `virsh domstate` uses, for the state a snapshot recorded. */
const DOMSTATE_WORDS: Record<string, string> = { shutoff: 'shut off', shutdown: 'in shutdown', blocked: 'idle', nostate: 'no state' };

/**
 * A full snapshot of a VM that was not running holds its disks only: said in the result,
 * from the state and memory the snapshot itself recorded (exact, and no virsh call of its own).
 */
function memoryNote(mode: Kind<'create'>['mode'], snapshot: RawSnapshot | SnapshotInfo): string | null {
  if (mode !== 'full' || snapshot.memory) return null;
  return `VM was ${DOMSTATE_WORDS[snapshot.state] ?? snapshot.state}: there is no memory to save, so the snapshot holds the disks only.`;
}

/** The snapshot of that name if this job made it; SNAPSHOT_EXISTS if someone else did. */
export async function findOwnSnapshot(deps: JobProcessorDeps, vm: ResolvedVm, name: string, jobId: string) {
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

const ALREADY_DONE = "(this job's earlier run did it, then stopped before it could report)";

export async function revertSnapshot(deps: JobProcessorDeps, job: Job, request: Kind<'revert'>, vm: ResolvedVm) {
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
    const located = await locateUndoPoint(deps, vm, job);
    return 'own' in located ? { undoPoint: { ...located.own, current: false } } : null;
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

/** Undo points are named after the job's creation second and carry its id, so a retried job finds its own. */
export const UNDO_POINT_PREFIX = 'pre-revert-';

/** How many `-2`, `-3`… suffixes a revert tries when reverts in the same second took the plain name. */
const UNDO_POINT_NAME_TRIES = 20;

/**
 * This job's undo point if an earlier run of it took one, or else the name it should take:
 * `pre-revert-<job's creation second>`, with `-2`, `-3`… after it when other snapshots
 * (say, the undo point of a revert made the same second) already have the names before.
 */
async function locateUndoPoint(deps: JobProcessorDeps, vm: ResolvedVm, job: Job): Promise<{ own: SnapshotInfo } | { free: string }> {
  const base = `${UNDO_POINT_PREFIX}${defaultSnapshotName(new Date(job.timestamp)).slice('snap-'.length)}`;
  for (let attempt = 1; attempt <= UNDO_POINT_NAME_TRIES; attempt++) {
    const name = attempt === 1 ? base : `${base}-${attempt}`;
    let existing: SnapshotInfo;
    try {
      existing = toSnapshotInfo(await deps.hypervisor.snapshotInfo(vm.uuid, name));
    } catch (error) {
      if (isCode(error, 'SNAPSHOT_NOT_FOUND')) return { free: name };
      throw error;
    }
    if (existing.jobId === job.id) return { own: existing };
  }
  throw new SnapbotError(
    'SNAPSHOT_EXISTS',
    `VM ${vm.name} already has snapshots '${base}' to '${base}-${UNDO_POINT_NAME_TRIES}', so no undo point could be named; nothing was reverted.`,
  );
}

/**
 * The safety snapshot of the VM as it is now, taken before a revert throws that state
 * away. A host that cannot revert external snapshots gets an internal (full) one, or
 * the undo point could not be used.
 */
async function takeUndoPoint(deps: JobProcessorDeps, job: Job, vm: ResolvedVm, target: SnapshotInfo, options: UndoPointOptions) {
  const jobId = job.id ?? '';
  const located = await locateUndoPoint(deps, vm, job);
  if ('own' in located) return located.own;
  const name = located.free;
  const mode = options.mode === 'disk-only' && !deps.capabilities().externalRevert ? 'full' : options.mode;
  await reportProgress(job, { phase: 'running', host: deps.hostId, message: `taking undo point ${name} of ${vm.name}` });
  return toSnapshotInfo(
    await deps.hypervisor.createSnapshot(vm.uuid, {
      name,
      mode,
      description: withJobMarker(`undo point before reverting to '${target.name}'`, jobId),
    }),
  );
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

export async function deleteSnapshot(deps: JobProcessorDeps, job: Job, request: Kind<'delete'>, vm: ResolvedVm) {
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

export async function findSnapshot(deps: JobProcessorDeps, vm: ResolvedVm, name: string): Promise<RawSnapshot> {
  try {
    return await deps.hypervisor.snapshotInfo(vm.uuid, name);
  } catch (error) {
    if (error instanceof SnapbotError && error.code === 'SNAPSHOT_NOT_FOUND') {
      throw new SnapbotError('SNAPSHOT_NOT_FOUND', `VM ${vm.name} has no snapshot named '${name}'.`, { cause: error });
    }
    throw error;
  }
}

export function toSnapshotInfo(raw: RawSnapshot): SnapshotInfo {
  const { description, jobId, scheduleId } = splitJobMarker(raw.description);
  return { ...raw, description, jobId, scheduleId };
}

function isRunningState(state: string): boolean {
  return state === 'running' || state === 'paused' || state === 'pmsuspended';
}
