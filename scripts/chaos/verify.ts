import type { SnapbotCore } from '../../bot/core/core.js';
import type { FleetSummary, FleetTargetView } from '../../bot/core/fleet/index.js';
import { decodeFailedReason } from '../../shared/errors.js';
import { fleetJobId } from '../../shared/fleet.js';
import { splitJobMarker } from '../../shared/jobs.js';
import { mutationTally, type ChaosHost } from './hosts.js';

/**
 * The end state of a fleet snapshot run, read from the hosts (the fake virsh's state,
 * its recorded calls and their exit statuses) and from Redis (the run's targets, the
 * BullMQ jobs): every target ended exactly once, as expected.
 */

export type Expectation = { state: 'done' } | { state: 'failed'; code: string };

export interface ExactlyOnceReport {
  targets: number;
  done: number;
  failed: number;
  /** Targets that should be done and are not, or are "done" without their snapshot on the host. */
  lost: number;
  /** Snapshots of the run's name beyond one per VM, and successful snapshot-create-as calls beyond one per target. */
  duplicates: number;
  /** Re-runs (after a kill or a Redis restart) that found their own snapshot and did not create it again. */
  recovered: number;
  /** Targets whose snapshot-create-as was started more than once (the earlier ones did not succeed). */
  createdAgain: number;
  /** Jobs that took more than one BullMQ attempt (transient failures retried). */
  retried: number;
  /** Jobs taken again after their worker died (BullMQ's stall check). */
  stalled: number;
  /**
   * Targets done exactly once (their snapshot there, made by their job) whose BullMQ job
   * nevertheless ended failed: a re-run after a kill refused as CANCELLED because its target
   * was already done, or failed by the stall limit after its work was done. A wrong record,
   * not a lost or duplicated job: counted and reported, not failed on.
   */
  wrongRecords: string[];
  problems: string[];
}

export async function checkSnapshotRun(
  core: SnapbotCore,
  summary: FleetSummary,
  hosts: ReadonlyMap<string, ChaosHost>,
  expect: (target: FleetTargetView) => Expectation = () => ({ state: 'done' }),
): Promise<ExactlyOnceReport> {
  const report: ExactlyOnceReport = { targets: summary.total, done: 0, failed: 0, lost: 0, duplicates: 0, recovered: 0, createdAgain: 0, retried: 0, stalled: 0, wrongRecords: [], problems: [] };
  const tallies = new Map([...hosts].map(([hostId, host]) => [hostId, mutationTally(host, 'snapshot-create-as')]));
  if (summary.status !== 'finished') report.problems.push(`run ${summary.runId} is ${summary.status}, not finished`);
  for (const target of summary.targets) {
    const host = hosts.get(target.host);
    const vm = host?.vms.find((candidate) => candidate.name === target.vm);
    if (!host || !vm) {
      report.problems.push(`target ${target.vm}@${target.host} is on no host of this run`);
      continue;
    }
    const where = `${target.vm}@${target.host}`;
    const jobId = fleetJobId(summary.runId, target.index);
    const snapshots = host.snapshotsOf(vm).filter((snapshot) => snapshot.name === target.snapshot);
    const creates = tallies.get(target.host)!.get(`${vm.uuid} ${target.snapshot}`) ?? { started: 0, succeeded: 0, failed: 0 };
    const job = await core.queueFor(target.host).getJob(jobId);
    const jobState = job ? await job.getState() : 'missing';
    if (job && job.attemptsMade > 1) report.retried += 1;
    if (job && (job.stalledCounter ?? 0) > 0) report.stalled += 1;
    if (creates.started > 1) report.createdAgain += 1;
    if (target.state.state === 'done') report.done += 1;
    if (target.state.state === 'failed') report.failed += 1;

    const expected = expect(target);
    if (expected.state === 'done') {
      if (target.state.state !== 'done') {
        report.lost += 1;
        const why = target.state.state === 'failed' ? `${target.state.code}: ${target.state.message}` : target.state.state;
        report.problems.push(`${where}: target ${why}, expected done (job ${jobId} ${jobState}${job?.failedReason ? `: ${job.failedReason}` : ''})`);
      } else if (snapshots.length === 0) {
        report.lost += 1;
        report.problems.push(`${where}: target done, but the host holds no snapshot '${target.snapshot}'`);
      }
      if (snapshots.length > 1) {
        report.duplicates += snapshots.length - 1;
        report.problems.push(`${where}: ${snapshots.length} snapshots named '${target.snapshot}'`);
      }
      if (creates.succeeded > 1) {
        report.duplicates += creates.succeeded - 1;
        report.problems.push(`${where}: snapshot-create-as succeeded ${creates.succeeded} times`);
      }
      const maker = snapshots.length === 1 ? splitJobMarker(snapshots[0]!.description).jobId : jobId;
      if (maker !== jobId) report.problems.push(`${where}: the snapshot was made by job ${maker}, not by the target's job ${jobId}`);
      if (target.state.state === 'done' && jobState !== 'completed') {
        (jobState === 'failed' && snapshots.length === 1 && creates.succeeded <= 1 ? report.wrongRecords : report.problems).push(
          `${where}: target done, but its job ${jobId} is ${jobState}` +
            (job ? ` (attempts ${job.attemptsMade}, stalled ${job.stalledCounter ?? 0}${job.failedReason ? `, failed: ${job.failedReason}` : ''})` : ''),
        );
      }
      if (job?.returnvalue && (job.returnvalue as { recovered?: boolean }).recovered) report.recovered += 1;
    } else {
      const code = target.state.state === 'failed' ? target.state.code : null;
      if (code !== expected.code) {
        report.problems.push(`${where}: target ${target.state.state}${code ? ` ${code}` : ''}, expected failed ${expected.code}`);
      }
      if (snapshots.length > 0 || creates.succeeded > 0) {
        report.problems.push(`${where}: expected to fail ${expected.code} with nothing done, but the host holds ${snapshots.length} snapshot(s) and ${creates.succeeded} create(s) succeeded`);
      }
      if (creates.started > 1) report.problems.push(`${where}: a ${expected.code} failure was tried ${creates.started} times`);
      if (jobState !== 'failed') report.problems.push(`${where}: its job is ${jobState}, expected failed`);
      else if (decodeFailedReason(job!.failedReason).code !== expected.code) report.problems.push(`${where}: its job failed ${job!.failedReason}`);
    }
  }
  // Nothing of the run's name on any VM the run did not target.
  for (const [hostId, host] of hosts) {
    for (const vm of host.vms) {
      const targeted = summary.targets.some((target) => target.host === hostId && target.vm === vm.name);
      const names = new Set(summary.targets.map((target) => target.snapshot));
      if (!targeted && host.snapshotsOf(vm).some((snapshot) => names.has(snapshot.name))) {
        report.duplicates += 1;
        report.problems.push(`${vm.name}@${hostId}: holds a snapshot of the run's name but was not a target`);
      }
    }
  }
  return report;
}
