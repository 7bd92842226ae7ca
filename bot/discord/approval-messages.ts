import type { APIEmbed } from 'discord.js';
import { getApproval, setApprovalMessage, type ApprovalState } from '../core/approvals.js';
import { getFleetRun, setFleetMessage } from '../core/fleet/index.js';
import { executeApproved } from '../core/snapshot-approvals.js';
import type { BotContext } from './context.js';
import type { ReplyPayload } from './reply-payload.js';
import { escapeText } from './render/escape.js';
import { approvalButtons, renderApprovalFailure, renderApprovalRequest } from './render/render-approval.js';
import { fleetApprovalPayload } from './render/render-fleet.js';
import { renderJobResult } from './render/render-job.js';
import { userFacingError } from './user-facing-error.js';

/**
 * The message of an approval request, whatever it is about: one snapshot's revert or
 * delete or a schedule (both drawn by render-approval.ts), or a fleet run (its plan).
 * Posted once, then edited as votes come in and when it closes.
 */
export async function approvalMessage(context: BotContext, state: ApprovalState, outcome?: string, extraEmbeds: APIEmbed[] = []): Promise<ReplyPayload> {
  const { subject } = state.request;
  if (subject.kind === 'fleet') {
    const run = await getFleetRun(context.core, subject.runId);
    if (!run) return { content: `Fleet run ${escapeText(subject.runId)} no longer exists.`, embeds: [], components: [] };
    return fleetApprovalPayload(run, outcome);
  }
  return { embeds: [renderApprovalRequest(state, Date.now(), outcome), ...extraEmbeds], components: approvalButtons(state) };
}

/** Posts the request with its buttons in the channel (DISCORD_CHANNEL_ID first), and remembers the message. */
export async function postApprovalRequest(context: BotContext, state: ApprovalState, channelId: string | null): Promise<string> {
  const target = context.channelId ?? channelId;
  if (!target) throw new Error('no channel to post in (set DISCORD_CHANNEL_ID)');
  const message = await context.messenger.post(target, await approvalMessage(context, state));
  await setApprovalMessage(context.core, state.request.id, { channelId: message.channelId, messageId: message.id });
  if (state.request.subject.kind === 'fleet') {
    await setFleetMessage(context.core, state.request.subject.runId, { channelId: message.channelId, messageId: message.id });
  }
  return message.url;
}

/** Redraws a request's message as it stands (an approval, a denial, the expiry). */
export async function refreshApprovalMessage(context: BotContext, id: string, outcome?: string, extraEmbeds: APIEmbed[] = []): Promise<void> {
  const state = await getApproval(context.core, id);
  if (!state?.message) return;
  await context.messenger.edit(state.message, await approvalMessage(context, state, outcome, extraEmbeds), 'urgent');
}

/** Requests whose approved action this process is running (the sweep leaves those alone). */
const running = new Set<string>();

/**
 * Runs an approved revert or delete and shows the result on the request message. Safe
 * to repeat from another process: the job id is fixed, so the action runs once.
 */
export async function runApprovedSnapshot(context: BotContext, state: ApprovalState): Promise<void> {
  const { subject } = state.request;
  if (subject.kind !== 'snapshot' || running.has(state.request.id)) return;
  running.add(state.request.id);
  try {
    await refreshApprovalMessage(context, state.request.id, `Approved — running on **${escapeText(subject.host)}**…`);
    const result = await executeApproved(context.core, state.request, { timeoutMs: context.jobTimeoutMs });
    await refreshApprovalMessage(context, state.request.id, 'Approved and done.', [renderJobResult(result)]);
  } catch (error) {
    context.logger.warn({ err: error, request: state.request.id }, 'approved action failed');
    // The request message is public: an unexpected error shows as a reference, its detail stays in the log.
    const shown = userFacingError(context.logger, error, { request: state.request.id });
    await refreshApprovalMessage(context, state.request.id, renderApprovalFailure(shown)).catch(() => undefined);
  } finally {
    running.delete(state.request.id);
  }
}
