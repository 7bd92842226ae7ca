import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { decodeFailedReason, encodeFailedReason, SnapbotError } from '../shared/errors.js';
import { STALL_LIMIT_REASON, stalledTargetMessage } from '../shared/fleet.js';
import { snapshotJobSchema, type JobResult, type SnapshotJob } from '../shared/jobs.js';
import type { Logger } from '../shared/logger.js';
import { isRedisConnectionError } from '../shared/redis.js';
import { FleetGate } from './fleet-gate.js';
import type { ResolvedVm } from './inventory.js';
import { earlierTargets, isFirstTry, previousTarget, reportProgress, type JobProcessorDeps } from './job-context.js';
import { createSnapshot, deleteSnapshot, findOwnSnapshot, findSnapshot, revertSnapshot, toSnapshotInfo } from './snapshot-operations.js';

/** A fleet job that finds its run's limits all taken waits this long (plus jitter) in BullMQ's delayed set. */
const FLEET_PERMIT_RETRY_MS = 100;
const STEP_ASIDE = Symbol('step aside for a fleet permit');

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
    // Before anything else: a job the control process did not sign touches nothing — not
    // a VM, and not the fleet target it may name (a forgery must not fail a genuine target).
    try {
      await deps.admission.admit(job, request);
    } catch (error) {
      throw toBullmqError(error, deps.hostId, logger);
    }
    const fleetRef = request.kind === 'create' || request.kind === 'delete' ? request.fleet : undefined;
    // A per-host limit of at least this worker's slots is kept by the slots themselves, and
    // waiting there is cheaper than stepping aside and coming back for a permit.
    const limits = fleetRef && fleetRef.perHost >= deps.slots.size ? { ...fleetRef, perHost: 0 } : fleetRef;
    let fleet = limits ? new FleetGate(deps.redis, deps.prefix, limits, jobId, deps.hostId, deps.fleetPermitLeaseMs) : null;
    try {
      if (request.host !== deps.hostId) {
        throw new SnapbotError('INTERNAL', `Job for host ${request.host} reached the worker of host ${deps.hostId}.`);
      }
      // A cancelled target need not wait for its VM or a slot to be refused. A job whose
      // target is already done ran before and could not report (its worker died, or a Redis
      // failover lost its completion): it runs on without the gate, the operation finds
      // what the earlier run did (a create its own snapshot: SNAPSHOT_EXISTS with this job's
      // marker), and the target's record stays as it is.
      if ((await fleet?.assertMayStart(true)) === 'finished') fleet = null;
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
            // Done meanwhile (an earlier run of this job, whose report a failover lost, shows up
            // only now): carry on as recovered, leaving the target's record as it is.
            const recording = fleet && (await fleet.markRunning()) === 'started';
            const vm = await deps.inventory.resolveVm(request.vm, request.uuid, jobDeps.hypervisor);
            // Not awaited before virsh starts: the write's round trip (an fsync with AOF
            // always) overlaps the operation instead of adding to it. The worker's Redis
            // connection sends commands in order, so it still lands before the job's end.
            const runningReported = reportProgress(job, { phase: 'running', host: deps.hostId, message: `${request.kind} on ${vm.name}` });
            // Handled at once (a rejection while virsh runs must not go unhandled), and still
            // awaited below, so that a failed write fails the job as it did before.
            runningReported.catch(() => undefined);
            const result = await runOperation(jobDeps, job, request, vm, started);
            await runningReported;
            // Recorded before the permit goes back, so the run never shows more running than its limits.
            if (recording) await fleet?.markDone(result.durationMs, result.kind === 'create' ? result.note : null);
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
      if (result.kind === 'create') deps.inventory.noteSnapshot(uuid, { added: { name: result.snapshot.name, location: result.snapshot.location, createdAt: result.snapshot.createdAt } });
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

/**
 * A fleet job that BullMQ failed for its stall limit (its workers died while it was
 * active, more often than `maxStalledCount` allows) ran no processor for that failure, so
 * its target would stay `queued` or `running` and its run would never end. Called from
 * the worker's `failed` event: settles the target unless something else already did. A
 * create whose snapshot an earlier run made (it carries this job's id) is done; anything
 * else failed, saying what happened. Only signed jobs are settled: a forgery must not
 * settle a genuine target.
 */
export async function settleStalledFleetJob(deps: JobProcessorDeps, job: Job | undefined, error: Error): Promise<void> {
  if (!job?.id || error.message !== STALL_LIMIT_REASON) return;
  const parsed = snapshotJobSchema.safeParse(job.data);
  if (!parsed.success) return;
  const request = parsed.data;
  const ref = request.kind === 'create' || request.kind === 'delete' ? request.fleet : undefined;
  if (!ref || !deps.admission.isSigned(job.id, request)) return;
  const gate = new FleetGate(deps.redis, deps.prefix, ref, job.id, deps.hostId, deps.fleetPermitLeaseMs);
  const state = await gate.state();
  if (state.state !== 'queued' && state.state !== 'running') return;
  if (request.kind === 'create') {
    const own = await deps.inventory
      .resolveVm(request.vm, request.uuid, deps.hypervisor)
      .then((vm) => findOwnSnapshot(deps, vm, request.name, job.id!))
      .catch(() => null);
    if (own) {
      await gate.markDone(0, `Made by a run of this job whose worker died before it could report; found on the VM afterwards.`);
      return;
    }
  }
  await gate.markFailed({
    code: 'INTERNAL',
    message: stalledTargetMessage(request.kind, request.vm),
  });
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

/**
 * Permanent failures become UnrecoverableError (no retry); transient ones plain errors
 * that BullMQ retries with backoff. Errors that are not SnapbotErrors are internal: the
 * user gets a reference, the log gets the detail.
 */
function toBullmqError(error: unknown, hostId: string, logger: Logger): Error {
  if (error instanceof UnrecoverableError) return error;
  // Redis restarting or failing over under the job: try again later (every operation finds what an earlier run of it did).
  if (!(error instanceof SnapbotError) && isRedisConnectionError(error)) {
    logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'Redis away during the job; it will be retried');
    return new Error(encodeFailedReason({ code: 'REDIS_UNAVAILABLE', message: `Redis was unreachable during the job on host ${hostId}; it is tried again.` }));
  }
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
