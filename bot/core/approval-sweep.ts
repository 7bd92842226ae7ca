import {
  approvedNotActed,
  expireDueApprovals,
  expiredToShow,
  genuineApproval,
  getApproval,
  isGenuineRequest,
  markActedOn,
  markBotAlive,
  markExpiryShown,
  takeApprovalToPost,
  type ApprovalState,
} from './approvals.js';
import type { SnapbotCore } from './core.js';
import { fleetMirror, getFleetRun, startFleetRun } from './fleet/index.js';
import { activateApprovedSchedule } from './schedules/manage.js';

/** What an adapter shows for the sweep's findings; core has already done the platform-neutral part. */
export interface ApprovalSweepHandlers {
  /**
   * An expired request whose message still shows live buttons: redraw it. Asked again at
   * every sweep until it succeeds, by whichever process sweeps, also for requests another
   * process expired. Without it (no chat), they wait for a process that has one.
   */
  expired?(state: ApprovalState): Promise<void>;
  /** A request opened outside the chat (snapctl), to post. Without it (no chat to post in) the requests stay queued for a process that has one. */
  toPost?(state: ApprovalState): Promise<void>;
  /**
   * An approved request whose action was not taken, because the process that approved it
   * died: a fleet run is started here already (the adapter adopts its summary), and a
   * schedule's job scheduler (the adapter shows it active); a snapshot's job is the
   * adapter's to run and report.
   */
  approved(state: ApprovalState): Promise<void>;
}

/**
 * What some process does every few seconds, so no approval is lost to a crash or a
 * restart: expire requests past their time (by Redis's clock), hand out requests to post,
 * take the action of approved requests nobody acted on, and say a bot is alive.
 * Every step is idempotent and safe in several processes at once.
 */
export async function sweepApprovals(core: SnapbotCore, handlers: ApprovalSweepHandlers, options: { aliveTtlMs?: number } = {}): Promise<void> {
  const report = (what: string) => (error: unknown) => core.logger.warn({ err: error }, `approval sweep: ${what} failed`);
  await expireDueApprovals(core, (subject) => fleetMirror(core, subject));
  if (handlers.expired) {
    for (const id of await expiredToShow(core)) {
      const state = await getApproval(core, id);
      // Gone (past its retention) or somehow not expired: nothing to show.
      if (state?.status !== 'expired' || !state.message) {
        await markExpiryShown(core, id);
        continue;
      }
      const shown = await handlers.expired(state).then(() => true, report('showing an expiry'));
      if (shown) await markExpiryShown(core, id);
    }
  }
  const { toPost } = handlers;
  for (let id = toPost ? await takeApprovalToPost(core) : null; toPost && id !== null; id = await takeApprovalToPost(core)) {
    const state = await getApproval(core, id);
    // A request written into Redis by anyone but the control process is not posted (audited instead).
    if (state?.status === 'pending' && (await isGenuineRequest(core, id))) await toPost(state).catch(report('posting a request'));
  }
  for (const id of await approvedNotActed(core)) {
    const state = await getApproval(core, id);
    if (state?.status !== 'approved') continue;
    try {
      await genuineApproval(core, id);
    } catch {
      // Forged or altered (refused and audited): taken off the list, so it is refused once, not every sweep.
      await markActedOn(core, id);
      continue;
    }
    if (state.request.subject.kind === 'schedule') {
      // Its job scheduler is started here; the adapter only shows it.
      const started = await activateApprovedSchedule(core, id).then(() => true, report('starting an approved schedule'));
      if (started) await handlers.approved(state).catch(report('showing an approved schedule'));
      continue;
    }
    if (state.request.subject.kind === 'fleet') {
      const run = await getFleetRun(core, state.request.subject.runId);
      // 'running' but still listed: the process that started it died during the fan-out, which is safe to repeat.
      if (run?.status === 'approved' || run?.status === 'running') await startFleetRun(core, run.plan.id, run.status);
    }
    await handlers.approved(state).catch(report('acting on an approval'));
  }
  // Only a process that posts requests and takes clicks says a bot is alive.
  if (options.aliveTtlMs !== undefined) await markBotAlive(core, options.aliveTtlMs);
}
