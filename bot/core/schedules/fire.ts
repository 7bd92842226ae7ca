import { Worker, type Job } from 'bullmq';
import { createHash } from 'node:crypto';
import { SnapbotError, toErrorPayload } from '../../../shared/errors.js';
import { SCHEDULE_QUEUE, scheduleKeys, scheduleNameTemplate, type ScheduleDefinition, type ScheduleFiring } from '../../../shared/schedules/definition.js';
import { chooseRetention } from '../../../shared/schedules/retention.js';
import { duplicateRedisClient } from '../../../shared/redis.js';
import { recordAudit } from '../audit.js';
import type { SnapbotCore } from '../core.js';
import { runJob } from '../dispatch.js';
import { claimFleetWatcher, getFleetRun, planFleet, startFleetRun, watchFleetRun, type FleetSummary, type FleetTargetView } from '../fleet/index.js';
import { ensureSchedulers } from './manage.js';
import { getSchedule, listSchedules, publishFiring } from './store.js';

/**
 * A schedule's firing, in the control process: a BullMQ job of the schedule's job
 * scheduler (or of `schedule run`) becomes one fleet run of snapshots (the same plan,
 * fan-out, per-VM locks and summary as a /fleet snapshot), then retention per VM, then
 * one record of what happened (the summary Discord posts, the audit trail, the count of
 * failed firings in a row).
 *
 * A firing taken again after its control process died plans the same run (its id and
 * snapshot names come from the job's id and slot), so nothing is made twice.
 */

export interface FiringData {
  schedule: string;
  version: number;
  manual?: boolean;
}

export interface FiringOptions {
  /** How long a firing waits for each retention job (list, delete). */
  jobTimeoutMs: number;
  /** Watcher poll interval (tests shorten it). */
  pollMs?: number;
}

/** Runs one firing to its end and returns its record (also stored on the schedule). */
export async function fireSchedule(core: SnapbotCore, job: Pick<Job<FiringData>, 'id' | 'data' | 'timestamp'>, options: FiringOptions): Promise<ScheduleFiring | null> {
  const { schedule: name, manual } = job.data;
  const record = await getSchedule(core, name);
  if (!record) return null; // deleted meanwhile
  if (record.status !== 'active' && !(manual && record.status === 'paused')) return null;
  const { definition } = record;
  const slot = slotOf(job);
  const runId = createHash('sha256').update(`${name}|${job.id ?? ''}`).digest('hex').slice(0, 12);

  let run = await getFleetRun(core, runId);
  if (!run) {
    const plan = await planFleet(
      core,
      {
        action: 'snapshot',
        target: definition.target,
        name: scheduleNameTemplate(definition),
        mode: definition.mode,
        description: definition.description ?? undefined,
        requester: { id: `schedule:${name}`, userId: definition.owner.userId, displayName: `schedule ${name} (${definition.owner.displayName})` },
        origin: 'snapctl',
      },
      { runId, at: slot, schedule: { name, minFreePercent: core.policy.schedules.minFreePercent } },
    );
    if (plan.targets.length === 0) return finish(core, definition, slot, runId, null, [], { pruned: 0, kept: 0, skipped: [], failures: [] }, plan.skipped.existing.length + plan.skipped.offlineHosts.length);
    run = await startFleetRun(core, runId, 'preview');
  } else if (run.status === 'preview') {
    run = await startFleetRun(core, runId, 'preview');
  }
  await claimFleetWatcher(core, runId);
  const summary = await watchFleetRun(core, runId, { pollMs: options.pollMs ?? 500 });
  const retention = await pruneAfterFiring(core, definition, summary.targets.filter((target) => target.state.state === 'done'), runId, options);
  const skippedTargets = run.plan.skipped.existing.length + run.plan.skipped.offlineHosts.reduce((sum, host) => sum + host.vms, 0);
  return finish(core, definition, slot, runId, summary, summary.failures, retention, skippedTargets);
}

/** The slot a firing stands for: the scheduler's job id ends with it (`repeat:<name>:<millis>`); a manual run is now. */
function slotOf(job: Pick<Job, 'id' | 'timestamp'>): Date {
  const millis = /:(\d{10,})$/.exec(job.id ?? '')?.[1];
  return new Date(millis ? Number(millis) : job.timestamp);
}

interface RetentionOutcome {
  pruned: number;
  kept: number;
  skipped: ScheduleFiring['retentionSkipped'];
  failures: ScheduleFiring['failures'];
}

/**
 * Retention, per VM that got its snapshot: the VM's snapshots listed, the choice made by
 * `chooseRetention` (only this schedule's marked snapshots are candidates), and the
 * prunes deleted oldest first, one job each, through the worker's ordinary delete
 * (libvirt's snapshot-delete, bound to the creation time just read). A VM whose list or
 * delete fails stops there (the rest is for the next firing) and is reported.
 */
async function pruneAfterFiring(core: SnapbotCore, definition: ScheduleDefinition, targets: readonly FleetTargetView[], runId: string, options: FiringOptions): Promise<RetentionOutcome> {
  const outcome: RetentionOutcome = { pruned: 0, kept: 0, skipped: [], failures: [] };
  const requestedBy = `schedule:${definition.name}`;
  const jobOptions = { timeoutMs: options.jobTimeoutMs };
  const perVm = async (target: FleetTargetView) => {
    try {
      const listed = await runJob(core, { kind: 'list', host: target.host, vm: target.vm, uuid: target.uuid, requestedBy }, jobOptions);
      const choice = chooseRetention(
        listed.snapshots.map((snapshot) => ({
          name: snapshot.name,
          createdAt: snapshot.createdAt,
          marker: snapshot.scheduleId ?? null,
          parent: snapshot.parent,
          current: snapshot.current,
          location: snapshot.location,
        })),
        definition.keep,
        { scheduleId: definition.name, timeZone: definition.cadence.tz },
      );
      outcome.kept += choice.keep.length;
      for (const skipped of choice.skip) outcome.skipped.push({ vm: target.vm, host: target.host, name: skipped.name, reason: skipped.reason });
      const byName = new Map(listed.snapshots.map((snapshot) => [snapshot.name, snapshot]));
      for (const name of choice.prune) {
        const snapshot = byName.get(name)!;
        const jobId = `prune-${runId}-${target.index}-${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
        await runJob(core, { kind: 'delete', host: target.host, vm: target.vm, uuid: target.uuid, requestedBy, name, expected: { createdAt: snapshot.createdAt } }, { ...jobOptions, jobId });
        outcome.pruned += 1;
      }
      if (choice.prune.length > 0 || choice.skip.length > 0) {
        await recordAudit(core, {
          event: 'executed',
          actor: requestedBy,
          action: 'schedule-retention',
          host: target.host,
          vm: target.vm,
          detail: `pruned ${choice.prune.join(', ') || 'nothing'}; kept ${choice.keep.map((kept) => `${kept.name} (${kept.rules.join(', ')})`).join(', ')}${choice.skip.length ? `; skipped ${choice.skip.map((skipped) => `${skipped.name}: ${skipped.reason}`).join('; ')}` : ''}`,
        });
      }
    } catch (error) {
      const payload = toErrorPayload(error);
      outcome.failures.push({ vm: target.vm, host: target.host, code: payload.code, message: `retention: ${payload.message}` });
    }
  };
  // One VM at a time per host keeps retention from crowding the hosts; hosts go in parallel.
  const byHost = new Map<string, FleetTargetView[]>();
  for (const target of targets) byHost.set(target.host, [...(byHost.get(target.host) ?? []), target]);
  await Promise.all([...byHost.values()].map(async (hostTargets) => {
    for (const target of hostTargets) await perVm(target);
  }));
  return outcome;
}

async function finish(
  core: SnapbotCore,
  definition: ScheduleDefinition,
  slot: Date,
  runId: string,
  summary: FleetSummary | null,
  failedTargets: readonly FleetTargetView[],
  retention: RetentionOutcome,
  skipped: number,
): Promise<ScheduleFiring> {
  const failures = [
    ...failedTargets.map((target) => ({
      vm: target.vm,
      host: target.host,
      code: target.state.state === 'failed' ? target.state.code : 'HOST_OFFLINE',
      message: target.state.state === 'failed' ? target.state.message : 'its host went offline during the firing',
    })),
    ...retention.failures,
  ];
  const done = summary?.counts.done ?? 0;
  const firing: ScheduleFiring = {
    slot: slot.toISOString(),
    runId,
    finishedAt: new Date().toISOString(),
    outcome: summary === null ? 'nothing' : failures.length === 0 ? 'ok' : done > 0 ? 'partial' : 'failed',
    counts: { done, failed: failedTargets.length, skipped },
    pruned: retention.pruned,
    kept: retention.kept,
    retentionSkipped: retention.skipped,
    failures,
  };
  const key = scheduleKeys(core.prefix).schedule(definition.name);
  // Recorded on the schedule only while it exists (deleted mid-firing: the audit trail and the post keep it).
  const recorded = (await core.redis.eval(RECORD_FIRING_SCRIPT, 1, key, JSON.stringify(firing), failures.length > 0 ? '1' : '0')) as number;
  const failedInARow = failures.length > 0 ? Math.max(recorded, 1) : 0;
  await publishFiring(core, definition.name, firing, failedInARow);
  await recordAudit(core, {
    event: failures.length > 0 ? 'failed' : 'executed',
    actor: `schedule:${definition.name}`,
    action: 'schedule-firing',
    requestId: runId,
    detail: `slot ${firing.slot}: ${done} snapshot(s), ${failedTargets.length} failed, ${skipped} skipped; retention pruned ${retention.pruned}, kept ${retention.kept}, left ${retention.skipped.length}${failedInARow > 1 ? `; failed ${failedInARow} firings in a row` : ''}`,
  });
  return firing;
}

/** KEYS: the schedule's hash. ARGV: the firing (JSON), '1' when it failed. Returns failed-in-a-row after it (0 when the schedule is gone). */
const RECORD_FIRING_SCRIPT = `
if redis.call('HEXISTS', KEYS[1], 'definition') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'lastFiring', ARGV[1])
if ARGV[2] == '1' then return redis.call('HINCRBY', KEYS[1], 'failedInARow', 1) end
redis.call('HSET', KEYS[1], 'failedInARow', '0')
return 0
`;

export interface ScheduleRunner {
  close(): Promise<void>;
}

/**
 * The control process's consumer of the `schedules` queue. Any number of control
 * processes may run one: BullMQ hands each firing to one of them. At start, an active
 * schedule whose job scheduler is missing (Redis restored from an old backup) gets it
 * back.
 */
export async function startScheduleRunner(core: SnapbotCore, options: FiringOptions & { concurrency?: number }): Promise<ScheduleRunner> {
  const connection = duplicateRedisClient(core.redis, { maxRetriesPerRequest: null });
  const worker = new Worker<FiringData>(
    SCHEDULE_QUEUE,
    async (job) => {
      try {
        return await fireSchedule(core, job, options);
      } catch (error) {
        core.logger.warn({ err: error, schedule: job.data.schedule, jobId: job.id }, 'schedule firing failed');
        throw error instanceof SnapbotError ? new Error(`${error.code}: ${error.message}`) : error;
      }
    },
    { connection, prefix: core.prefix, concurrency: options.concurrency ?? 8, maxStalledCount: 5 },
  );
  worker.on('error', (error) => core.logger.debug({ err: error.message }, 'schedule runner error'));
  await worker.waitUntilReady();
  const started = await ensureSchedulers(core, await listSchedules(core).catch(() => []));
  if (started > 0) core.logger.info({ started }, 'started missing job schedulers of active schedules');
  return {
    async close() {
      await worker.close();
      connection.disconnect();
    },
  };
}
