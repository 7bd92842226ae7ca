/**
 * Fleet runs: one snapshot (or delete) over every VM a selector names, on every host.
 *
 * plan.ts (preview) → decide.ts (confirm, approval, cancel) → fan-out.ts (every target an
 * ordinary job with a fixed id) → watch.ts (summary, lost hosts, finish) → summary.ts
 * (counts and outcome for every adapter); run-store.ts is the run's record, list.ts the
 * read-only listing. A target's states and their table are in shared/fleet.ts, where
 * the workers read them too.
 */
export { awaitFleetDecision, cancelFleet, confirmFleet, decideFleet, fleetMirror, type ConfirmOutcome } from './decide.js';
export { startFleetRun } from './fan-out.js';
export { fleetList, visibleFleetListRows, type FleetListRow } from './list.js';
export { approvalTerms, planFleet, planRetryOfFailed, type FleetRequest } from './plan.js';
export {
  FLEET_RUN_ID,
  fleetActionSchema,
  fleetPlanSchema,
  getFleetRun,
  setFleetMessage,
  type FleetAction,
  type FleetPlan,
  type FleetRequester,
  type FleetRun,
  type FleetRunStatus,
  type FleetTarget,
} from './run-store.js';
export { fleetOutcome, fleetSummary, previewByHost, summarize, type FleetCountName, type FleetCounts, type FleetOutcome, type FleetSummary, type FleetTargetView, type FleetVerdict } from './summary.js';
export { claimFleetWatcher, orphanedFleetRuns, watchFleetRun, type WatchOptions } from './watch.js';
