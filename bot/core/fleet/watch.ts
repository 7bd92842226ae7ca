import { decodeFailedReason, SnapbotError } from '../../../shared/errors.js';
import { fleetJobId, fleetKeys, FLEET_RETENTION_SECONDS, isTerminal, STALL_LIMIT_REASON, stalledTargetMessage } from '../../../shared/fleet.js';
import type { HostStatus } from '../../../shared/hosts.js';
import { fleetIndexKeys } from '../../../shared/keys.js';
import { isRedisConnectionError } from '../../../shared/redis.js';
import { recordAudit } from '../audit.js';
import type { SnapbotCore } from '../core.js';
import { listHosts } from '../hosts.js';
import { runJob } from '../dispatch.js';
import { redisNow } from '../redis-clock.js';
import { settleTargets } from './decide.js';
import { fleetAudit, getFleetRun, type FleetRun } from './run-store.js';
import { summarize, type FleetSummary, type FleetTargetView } from './summary.js';

/**
 * Following a run to its end: the summary as it changes, hosts lost mid-run given up
 * after `fleet.hostLostAfterSeconds` (by Redis's clock), the run finished once every
 * target is settled. One process at a time watches a run (a lease in Redis); a run
 * whose watcher died is adopted by the next bot sweep.
 */

export interface WatchOptions {
  /** Called whenever the summary changed (the caller coalesces edits). */
  onUpdate?: (summary: FleetSummary) => void;
  pollMs?: number;
  /** Stop watching (the run goes on), e.g. on shutdown. */
  signal?: AbortSignal;
  /** How long a target's job must have ended `failed` or vanished before the watcher settles the target (default 30 s). */
  strandedAfterMs?: number;
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
  const stranded = new StrandedTargets(options.strandedAfterMs ?? STRANDED_AFTER_MS);
  for (;;) {
    try {
      const [run, hosts] = await Promise.all([getFleetRun(core, runId), listHosts(core)]);
      if (!run) throw new SnapbotError('INTERNAL', `Fleet run ${runId} vanished from Redis.`);
      await core.redis.set(keys.watcher, '1', 'PX', Math.max(5_000, pollMs * 20));
      const summary = summarize(run, hosts);
      const unfinished = summary.targets.filter((target) => !isTerminal(target.state.state));
      const underWay = run.status === 'running' || run.status === 'cancelling';
      if (underWay && unfinished.length === 0) return finishRun(core, run, hosts, options);
      if (underWay) {
        const givenUp = await hostsOfflineLongerThan(core, run, hosts, new Set(unfinished.map((target) => target.host)), lostAfterMs);
        for (const hostId of givenUp) {
          const message = `Host ${hostId} went offline during the run and stayed offline over ${core.policy.fleet.hostLostAfterSeconds}s; given up. A job that was running may or may not have finished on the host.`;
          const abandoned = unfinished.filter((target) => target.host === hostId);
          await settleTargets(core, run.plan, abandoned, { state: 'failed', at: Date.now(), code: 'HOST_OFFLINE', message });
        }
        if (givenUp.length > 0) continue;
        if ((await stranded.settle(core, run, unfinished)) > 0) continue;
      }
      const fingerprint = JSON.stringify([summary.status, summary.counts, summary.hosts]);
      if (fingerprint !== last) {
        last = fingerprint;
        options.onUpdate?.(summary);
      }
      if (!['running', 'cancelling', 'approved'].includes(run.status)) return summary;
      if (options.signal?.aborted) return summary;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    } catch (error) {
      // Redis restarting or failing over: the run goes on in the workers; wait and read again.
      if (!isRedisConnectionError(error) || options.signal?.aborted) throw error;
      core.logger.debug({ err: error instanceof Error ? error.message : String(error), fleetRun: runId }, 'Redis away while watching a fleet run; trying again');
      await new Promise((resolve) => setTimeout(resolve, Math.max(pollMs, 500)));
    }
  }
}

/** How long a target's job must have ended (or been missing) before the watcher settles the target itself. */
const STRANDED_AFTER_MS = 30_000;
/** How often the watcher looks at the BullMQ jobs of unfinished targets. */
const STRANDED_CHECK_EVERY_MS = 5_000;

/**
 * The safety net under the workers' own records: a target whose job ended (`completed`
 * or `failed`), or vanished from its queue, while the target still reads `queued` or
 * `running` (the worker that should have recorded it died first, BullMQ failed the job
 * for its stall limit and the worker that saw it died too, or a Redis failover lost the
 * record) would hold its run open for ever. After STRANDED_AFTER_MS of that, the watcher
 * records it as its job ended: done, or failed with the job's own reason.
 */
class StrandedTargets {
  private lastCheck = 0;
  /** Job id → when it was first seen failed or missing (this process's clock). */
  private readonly since = new Map<string, number>();

  constructor(private readonly afterMs: number) {}

  async settle(core: SnapbotCore, run: FleetRun, unfinished: readonly FleetTargetView[]): Promise<number> {
    const now = Date.now();
    if (now - this.lastCheck < Math.min(STRANDED_CHECK_EVERY_MS, this.afterMs)) return 0;
    this.lastCheck = now;
    let settled = 0;
    for (const target of unfinished) {
      if (target.lost) continue; // its host's loss is judged by hostLostAfterSeconds
      const jobId = fleetJobId(run.plan.id, target.index);
      const queue = core.queueFor(target.host);
      const state = await queue.getJobState(jobId);
      if (state !== 'failed' && state !== 'unknown' && state !== 'completed') {
        this.since.delete(jobId);
        continue;
      }
      const first = this.since.get(jobId) ?? now;
      this.since.set(jobId, first);
      if (now - first < this.afterMs) continue;
      if (state === 'completed') {
        // The job finished but its record of the target was lost (a Redis failover took the write): done, as the job says.
        const job = await queue.getJob(jobId);
        settled += await settleTargets(core, run.plan, [target], { state: 'done', at: now, durationMs: typeof job?.returnvalue?.durationMs === 'number' ? job.returnvalue.durationMs : 0, note: 'Recorded from its completed job (the worker\'s own record of it was lost).' });
        this.since.delete(jobId);
        continue;
      }
      if (state === 'unknown' && run.plan.action === 'snapshot' && (await madeByItsJob(core, target, jobId))) {
        settled += await settleTargets(core, run.plan, [target], { state: 'done', at: now, durationMs: 0, note: 'Its job vanished from the queue (a Redis failover lost it); its snapshot was found on the VM, made by that job.' });
        this.since.delete(jobId);
        continue;
      }
      const job = state === 'failed' ? await queue.getJob(jobId) : undefined;
      const failure = job
        ? job.failedReason === STALL_LIMIT_REASON
          ? { code: 'INTERNAL' as const, message: stalledTargetMessage(run.plan.action === 'delete' ? 'delete' : 'create', target.vm) }
          : decodeFailedReason(job.failedReason)
        : { code: 'INTERNAL' as const, message: `Its job ${jobId} is no longer in the queue of host ${target.host}, so it cannot run; nothing records whether it did.` };
      settled += await settleTargets(core, run.plan, [target], { state: 'failed', at: now, code: failure.code, message: failure.message });
      this.since.delete(jobId);
    }
    return settled;
  }
}

/** Whether the target's snapshot is on its VM, made by its own job (the marker in its description): a read, through the host's worker. */
async function madeByItsJob(core: SnapbotCore, target: FleetTargetView, jobId: string): Promise<boolean> {
  try {
    const { snapshot } = await runJob(core, { kind: 'info', host: target.host, vm: target.vm, uuid: target.uuid, name: target.snapshot, requestedBy: 'snapbot' }, { timeoutMs: 30_000 });
    return snapshot.jobId === jobId;
  } catch {
    return false; // not there, or the host cannot say: reported as failed below
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
  const [now, recorded] = await Promise.all([redisNow(core), core.redis.hmget(key, ...fields)]);
  const givenUp: string[] = [];
  for (const [index, host] of watched.entries()) {
    const since = recorded[index];
    if (host.online) {
      if (since) await core.redis.hdel(key, fields[index]!);
    } else if (!since) {
      await core.redis.hsetnx(key, fields[index]!, String(now));
    } else if (now - Number(since) > limitMs) {
      givenUp.push(host.hostId);
    }
  }
  return givenUp;
}

async function finishRun(core: SnapbotCore, run: FleetRun, hosts: readonly HostStatus[], options: WatchOptions): Promise<FleetSummary> {
  const keys = fleetKeys(core.prefix, run.plan.id);
  const first = await core.redis.hsetnx(keys.run, 'finishedAt', String(Date.now()));
  await core.redis
    .multi()
    .hset(keys.run, 'status', 'finished')
    .srem(fleetIndexKeys(core.prefix).active, run.plan.id)
    .expire(keys.run, FLEET_RETENTION_SECONDS)
    .expire(keys.targets, FLEET_RETENTION_SECONDS)
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
  const active = await core.redis.smembers(fleetIndexKeys(core.prefix).active);
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
