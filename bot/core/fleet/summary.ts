import { isTerminal, type FleetTargetState, type FleetTargetStateName } from '../../../shared/fleet.js';
import type { HostStatus } from '../../../shared/hosts.js';
import type { SnapbotCore } from '../core.js';
import { listHosts } from '../hosts.js';
import { getFleetRun, type FleetPlan, type FleetRun, type FleetRunStatus, type FleetTarget } from './run-store.js';

/**
 * A run's summary, the same for every adapter: counts overall and per host, failures
 * first, timing, and the run's outcome (`fleetOutcome`), which Discord and snapctl render
 * each in their own way.
 */

export type FleetCountName = FleetTargetStateName | 'lost';
export type FleetCounts = Record<FleetCountName, number>;

export interface FleetTargetView extends FleetTarget {
  state: FleetTargetState;
  /** Not finished, and its host is offline now. */
  lost: boolean;
}

export interface FleetSummary {
  runId: string;
  plan: FleetPlan;
  status: FleetRunStatus;
  total: number;
  counts: FleetCounts;
  hosts: Array<{ hostId: string; online: boolean; counts: FleetCounts }>;
  /** Failed targets first (then lost ones), each with its code. */
  failures: FleetTargetView[];
  targets: FleetTargetView[];
  startedAt: number | null;
  finishedAt: number | null;
  durationMs: number;
  cancelledBy: string | null;
}

function emptyCounts(): FleetCounts {
  return { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0, lost: 0 };
}

export function summarize(run: FleetRun, hosts: readonly HostStatus[], now = Date.now()): FleetSummary {
  const online = new Map(hosts.map((host) => [host.hostId, host.online]));
  const counts = emptyCounts();
  const perHost = new Map<string, FleetCounts>();
  const targets: FleetTargetView[] = run.plan.targets.map((target) => {
    const state = run.targets.get(target.index) ?? { state: 'queued' as const };
    // Only an unfinished target can be lost: one that ended before its host went away has ended.
    const lost = !isTerminal(state.state) && online.get(target.host) !== true;
    const bucket = lost ? 'lost' : state.state;
    counts[bucket] += 1;
    const hostCounts = perHost.get(target.host) ?? emptyCounts();
    hostCounts[bucket] += 1;
    perHost.set(target.host, hostCounts);
    return { ...target, state, lost };
  });
  const failures = [...targets.filter((target) => target.state.state === 'failed'), ...targets.filter((target) => target.lost)];
  const end = run.finishedAt ?? now;
  return {
    runId: run.plan.id,
    plan: run.plan,
    status: run.status,
    total: targets.length,
    counts,
    hosts: [...perHost].map(([hostId, hostCounts]) => ({ hostId, online: online.get(hostId) === true, counts: hostCounts })).sort((a, b) => a.hostId.localeCompare(b.hostId)),
    failures,
    targets,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    durationMs: run.startedAt ? Math.max(0, end - run.startedAt) : 0,
    cancelledBy: run.cancelledBy,
  };
}

export async function fleetSummary(core: SnapbotCore, runId: string): Promise<FleetSummary | null> {
  const [run, hosts] = await Promise.all([getFleetRun(core, runId), listHosts(core)]);
  return run ? summarize(run, hosts) : null;
}

/**
 * What a run came to, for every adapter: still `running` (or cancelling, starting);
 * `done` when every target is done; otherwise, once it ended, `cancelled` (someone
 * stopped it), `failed` (nothing was done) or `partial` (some done, some not). A run
 * that did not complete every target is a failure for scripts (snapctl's PARTIAL).
 */
export type FleetVerdict = 'running' | 'cancelling' | 'starting' | 'done' | 'cancelled' | 'failed' | 'partial';

export interface FleetOutcome {
  verdict: FleetVerdict;
  /** Every target done. */
  complete: boolean;
  /** Targets that did not complete: failed, cancelled or on offline hosts. */
  incomplete: number;
}

export function fleetOutcome(summary: FleetSummary): FleetOutcome {
  const { counts, total } = summary;
  const complete = counts.done === total;
  const incomplete = total - counts.done;
  if (summary.status !== 'finished') {
    const verdict = summary.status === 'cancelling' ? 'cancelling' : summary.status === 'approved' ? 'starting' : 'running';
    return { verdict, complete, incomplete };
  }
  if (summary.cancelledBy) return { verdict: 'cancelled', complete, incomplete };
  if (complete) return { verdict: 'done', complete, incomplete };
  return { verdict: counts.done === 0 ? 'failed' : 'partial', complete, incomplete };
}

/** Per host: how many targets, and the first few VM names (for previews). */
export function previewByHost(plan: FleetPlan, firstNames = 5): Array<{ hostId: string; count: number; first: string[] }> {
  const byHost = new Map<string, string[]>();
  for (const target of plan.targets) byHost.set(target.host, [...(byHost.get(target.host) ?? []), target.vm]);
  return [...byHost]
    .map(([hostId, vms]) => ({ hostId, count: vms.length, first: [...new Set(vms)].slice(0, firstNames) }))
    .sort((a, b) => a.hostId.localeCompare(b.hostId));
}
