import { DiscordAPIError } from 'discord.js';
import { sweepApprovals } from '../core/approval-sweep.js';
import { takeNotice } from '../core/audit.js';
import { claimFleetWatcher, getFleetRun, orphanedFleetRuns } from '../core/fleet/index.js';
import { takeFiringToPost, type FiringToPost } from '../core/schedules/store.js';
import { postApprovalRequest, refreshApprovalMessage, runApprovedSnapshot } from './approval-messages.js';
import { isRefusal, UNKNOWN_MESSAGE } from './channel-messenger.js';
import type { BotContext } from './context.js';
import { followRun } from './fleet-summary-message.js';
import { escapeText } from './render/escape.js';
import { renderFiringPost } from './render/render-schedule.js';

/**
 * What every bot process does every few seconds, so nothing is lost to a crash or a
 * restart: core's approval sweep (expiries, requests from snapctl, approved actions
 * nobody took) with this adapter's messages, notices for the channel, the summaries of
 * finished schedule firings, and adoption of fleet runs nobody follows any more (their
 * watcher died).
 */
export function startSweeper(context: BotContext, intervalMs = 2_000): () => void {
  let busy = false;
  const sweep = async () => {
    if (busy) return;
    busy = true;
    try {
      await sweepApprovals(
        context.core,
        {
          expired: (state) => showExpiry(context, state.request.id),
          toPost: async (state) => void (await postApprovalRequest(context, state, null)),
          // A fleet run was started by core; its summary is adopted below.
          approved: async (state) =>
            state.request.subject.kind === 'schedule'
              ? refreshApprovalMessage(context, state.request.id)
              : void runApprovedSnapshot(context, state),
        },
        { aliveTtlMs: intervalMs * 5 },
      );
      await postNotices(context);
      await postFirings(context);
      await adoptOrphanedRuns(context);
    } catch (error) {
      context.logger.warn({ err: error }, 'sweep failed');
    } finally {
      busy = false;
    }
  };
  void sweep();
  const timer = setInterval(() => void sweep(), intervalMs);
  return () => clearInterval(timer);
}

/**
 * Redraws an expired request's message with dead buttons. A failure that may pass (Discord
 * not reachable yet, this client not ready after a restart) throws, and core asks again at
 * the next sweep; one that cannot (the message or channel deleted, no access) is logged
 * once and taken as done: there is nothing left to redraw.
 */
async function showExpiry(context: BotContext, id: string): Promise<void> {
  try {
    await refreshApprovalMessage(context, id);
  } catch (error) {
    const gone = error instanceof DiscordAPIError && error.code === UNKNOWN_MESSAGE;
    if (!gone && !isRefusal(error)) throw error;
    context.logger.warn({ err: error, request: id }, 'could not show an expired request: Discord refused the edit for good; not trying again');
  }
}

async function postNotices(context: BotContext): Promise<void> {
  for (let notice = await takeNotice(context.core); notice !== null; notice = await takeNotice(context.core)) {
    if (!context.channelId) {
      context.logger.warn({ notice }, 'no DISCORD_CHANNEL_ID to post a notice in');
      continue;
    }
    // Plain text from core, names and reasons typed by people: escaped, so it renders as written.
    await context.messenger.post(context.channelId, { content: `⚠️ ${escapeText(notice)}` });
  }
}

async function adoptOrphanedRuns(context: BotContext): Promise<void> {
  for (const runId of await orphanedFleetRuns(context.core)) {
    if (context.fleetWatchers.has(runId) || !(await claimFleetWatcher(context.core, runId))) continue;
    const run = await getFleetRun(context.core, runId);
    context.logger.info({ fleetRun: runId }, 'adopting a fleet run nobody follows');
    followRun(context, runId, run?.message ?? null, context.channelId ?? null);
  }
}

/**
 * One message per finished schedule firing, in the schedule's channel (else the bot's).
 * Each firing is handed to one process once; a post that fails in the schedule's own
 * channel (deleted, or the bot may not write there) goes to the bot's channel instead.
 */
async function postFirings(context: BotContext): Promise<void> {
  for (let entry = await takeFiringToPost(context.core); entry !== null; entry = await takeFiringToPost(context.core)) {
    await postFiring(context, entry);
  }
}

async function postFiring(context: BotContext, entry: FiringToPost): Promise<void> {
  const payload = renderFiringPost(entry);
  const channels = [...new Set([entry.channelId, context.channelId].filter((id): id is string => Boolean(id)))];
  for (const channelId of channels) {
    try {
      await context.messenger.post(channelId, payload);
      return;
    } catch (error) {
      context.logger.warn({ err: error, schedule: entry.name, runId: entry.firing.runId, channel: channelId }, 'could not post a schedule firing there');
    }
  }
  context.logger.error({ schedule: entry.name, runId: entry.firing.runId, outcome: entry.firing.outcome }, 'a schedule firing was not posted: no channel took it (set DISCORD_CHANNEL_ID); it is in the audit trail');
}
