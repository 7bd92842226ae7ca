import type { Actor } from '../../bot/core/authorize.js';
import type { SnapbotCore } from '../../bot/core/core.js';
import { confirmFleet, fleetSummary, getFleetRun, planFleet, watchFleetRun, type FleetSummary } from '../../bot/core/fleet/index.js';
import { listHosts } from '../../bot/core/hosts.js';
import { fleetJobId, isTerminal } from '../../shared/fleet.js';
import { DEFAULT_POLICY, type Policy } from '../../shared/policy.js';
import type { ChaosLog } from './cluster.js';
import { sleep, until } from './processes.js';

/**
 * Fleet runs as the control plane does them (plan → confirm → fan-out → watch), from
 * this process, as test/integration/fleet.test.ts does.
 */

export const CHAOS_ADMIN: Actor = { id: 'discord:1001', userId: '1001', displayName: 'ada', roleIds: [], isAdministrator: true };
export const SECOND_ADMIN: Actor = { id: 'discord:1002', userId: '1002', displayName: 'bob', roleIds: [], isAdministrator: true };

/**
 * The default policy, except that a big run needs no approval and a host that is down
 * for a while (its worker killed, starting again) is never given up: the run must finish
 * with every target done, not with targets failed HOST_OFFLINE.
 */
export function fleetChaosPolicy(): Policy {
  return {
    ...DEFAULT_POLICY,
    approvals: [],
    fleet: { ...DEFAULT_POLICY.fleet, approval: { ...DEFAULT_POLICY.fleet.approval, snapshotsAbove: 1_000_000 }, hostLostAfterSeconds: 3600 },
  };
}

/** Waits until every host is online with its whole inventory (planFleet leaves offline hosts out). */
export async function waitForHosts(core: SnapbotCore, expected: ReadonlyMap<string, number>, timeoutMs = 300_000): Promise<void> {
  await until(
    async () => {
      const hosts = await listHosts(core);
      return [...expected].every(([hostId, vms]) => hosts.some((host) => host.hostId === hostId && host.online && host.vms.length === vms));
    },
    `hosts ${[...expected.keys()].join(', ')} online with their VMs`,
    timeoutMs,
  );
}

/** Plans and confirms a fleet snapshot of every VM, named `name`; returns the run id. */
export async function startSnapshotRun(core: SnapbotCore, name: string, expectedTargets: number): Promise<string> {
  const plan = await planFleet(core, {
    action: 'snapshot',
    target: 'all',
    name,
    mode: 'disk-only',
    requester: { id: CHAOS_ADMIN.id, userId: CHAOS_ADMIN.userId, displayName: CHAOS_ADMIN.displayName },
    actor: CHAOS_ADMIN,
    origin: 'discord',
  });
  if (plan.targets.length !== expectedTargets) {
    throw new Error(`the plan has ${plan.targets.length} targets, not ${expectedTargets} (skipped: ${JSON.stringify(plan.skipped)})`);
  }
  const confirmed = await confirmFleet(core, plan.id, CHAOS_ADMIN);
  if (confirmed.kind !== 'started') throw new Error(`fleet run ${plan.id} did not start: ${confirmed.kind}`);
  return plan.id;
}

/**
 * Follows the run to its end as a bot does, going on after Redis errors (a restart): a
 * watcher that fails is replaced, as the bot's sweep adopts a run nobody follows. Throws
 * with what is stuck when the run is not finished by `timeoutMs`.
 */
export async function followRun(core: SnapbotCore, runId: string, timeoutMs: number, log: ChaosLog): Promise<FleetSummary> {
  const deadline = Date.now() + timeoutMs;
  const controller = new AbortController();
  let orphanedSince: number | null = null;
  let following = true;
  // A run whose every unfinished target has a job BullMQ has ended will never finish: say so
  // after 20 s (more than a stall check and a retry's backoff) instead of waiting for the timeout.
  const watchdog = (async () => {
    while (following && !controller.signal.aborted) {
      await sleep(2_000);
      const orphans = await orphanedTargets(core, runId).catch(() => null);
      orphanedSince = orphans === null ? null : (orphanedSince ?? Date.now());
      if ((orphanedSince !== null && Date.now() - orphanedSince > 20_000) || Date.now() > deadline) controller.abort();
    }
  })();
  let lastError = '';
  try {
    while (!controller.signal.aborted) {
      try {
        const summary = await watchFleetRun(core, runId, { pollMs: 250, signal: controller.signal });
        if (summary.status === 'finished') return summary;
      } catch (error) {
        const message = (error as Error).message;
        if (message !== lastError) log(`watching fleet run ${runId}: ${message.split('\n')[0]} (going on)`);
        lastError = message;
        await sleep(500);
      }
    }
  } finally {
    following = false;
    await watchdog;
  }
  const why = orphanedSince !== null ? `is stuck: every unfinished target's job has ended in BullMQ, and nothing will move the target` : `is not finished within ${Math.round(timeoutMs / 1000)} s`;
  throw new Error(`fleet run ${runId} ${why}:\n${(await describeUnfinished(core, runId)).join('\n')}`);
}

/**
 * The unfinished targets' job ids when every one of them has a job that BullMQ has
 * finished (completed, failed, or gone): nothing will move those targets any more. null
 * while some unfinished target still has a job waiting, delayed or active.
 */
async function orphanedTargets(core: SnapbotCore, runId: string): Promise<string | null> {
  const summary = await fleetSummary(core, runId);
  if (!summary || summary.status === 'finished') return null;
  const unfinished = summary.targets.filter((target) => !isTerminal(target.state.state));
  if (unfinished.length === 0) return null;
  for (const target of unfinished) {
    const job = await core.queueFor(target.host).getJob(fleetJobId(runId, target.index));
    const state = job ? await job.getState() : 'missing';
    if (state !== 'completed' && state !== 'failed' && state !== 'missing') return null;
  }
  return unfinished.map((target) => fleetJobId(runId, target.index)).join(', ');
}

/** Every unfinished target with its BullMQ job's state: what a "lost job" report needs. */
export async function describeUnfinished(core: SnapbotCore, runId: string): Promise<string[]> {
  const summary = await fleetSummary(core, runId).catch(() => null);
  if (!summary) return [`run ${runId}: no summary (Redis away?)`];
  const lines = [`run ${runId}: status ${summary.status}, counts ${JSON.stringify(summary.counts)}`];
  for (const target of summary.targets.filter((entry) => !isTerminal(entry.state.state)).slice(0, 20)) {
    const jobId = fleetJobId(runId, target.index);
    const job = await core.queueFor(target.host).getJob(jobId).catch(() => undefined);
    const state = job ? await job.getState().catch(() => 'unknown') : 'missing';
    const reason = job?.failedReason ?? null;
    lines.push(
      `  ${target.vm}@${target.host} (target ${target.index}, job ${jobId}): target ${target.state.state}; job ${state}` +
        (job ? `, attempts ${job.attemptsMade}, stalled ${job.stalledCounter ?? 0}` : '') +
        (reason ? `, failed: ${reason}` : ''),
    );
  }
  return lines;
}

/** The run's record as it is now (for progress-based triggers: kill Redis after a third is done). */
export async function doneCount(core: SnapbotCore, runId: string): Promise<number> {
  const run = await getFleetRun(core, runId);
  if (!run) return 0;
  return [...run.targets.values()].filter((state) => state.state === 'done').length;
}
