import { MessageFlags, type Client } from 'discord.js';
import { SnapbotError, toErrorPayload } from '../../shared/errors.js';
import {
  approvedNotQueued,
  decideApproval,
  executeApproved,
  expireDueApprovals,
  getApproval,
  setApprovalMessage,
  takeRequestToPost,
  type ApprovalState,
} from '../core/approvals.js';
import { takeNotice } from '../core/audit.js';
import { actorFromInteraction } from './actor.js';
import type { BotContext, ButtonHandler } from './context.js';
import type { ReplyPayload } from './reply-payload.js';
import { APPROVAL_BUTTON_PREFIX, approvalButtons, renderApprovalFailure, renderApprovalRequest } from './render/render-approval.js';
import { renderJobResult, renderUserError } from './render/render-job.js';
import { fitMessage } from './render/discord-limits.js';

function requestPayload(state: ApprovalState, outcome?: string): ReplyPayload {
  return { embeds: [renderApprovalRequest(state, Date.now(), outcome)], components: approvalButtons(state) };
}

/** Posts the approval request with its buttons in the channel, and remembers the message. */
export async function postApprovalRequest(context: BotContext, client: Client, state: ApprovalState, channelId: string | null): Promise<string> {
  const target = context.channelId ?? channelId;
  if (!target) throw new Error('no channel to post in (set DISCORD_CHANNEL_ID)');
  const message = await context.messenger.post(target, requestPayload(state));
  await setApprovalMessage(context.core, state.request.id, { channelId: message.channelId, messageId: message.id });
  return message.url;
}

async function editRequestMessage(context: BotContext, client: Client, id: string, outcome?: string, extra: Partial<ReplyPayload> = {}): Promise<void> {
  const state = await getApproval(context.core, id);
  if (!state?.message) return;
  await context.messenger.edit(state.message, { ...requestPayload(state, outcome), ...extra }, 'urgent');
}

/** Processes that are already running an approved request's job (the sweeper leaves those alone). */
const running = new Set<string>();

/**
 * Runs an approved request and shows the result on the request message. Safe to repeat
 * from another process: the job id is fixed, so the action runs once.
 */
export async function runApproved(context: BotContext, client: Client, state: ApprovalState): Promise<void> {
  if (running.has(state.request.id)) return;
  running.add(state.request.id);
  try {
    await editRequestMessage(context, client, state.request.id, `Approved — running on **${state.request.host}**…`);
    const result = await executeApproved(context.core, state.request, { timeoutMs: context.jobTimeoutMs });
    await editRequestMessage(context, client, state.request.id, `Approved and done.`, {
      embeds: [renderApprovalRequest(state, Date.now(), 'Approved and done.'), renderJobResult(result)],
    });
  } catch (error) {
    context.logger.warn({ err: error, request: state.request.id }, 'approved action failed');
    await editRequestMessage(context, client, state.request.id, renderApprovalFailure(toErrorPayload(error))).catch(() => undefined);
  } finally {
    running.delete(state.request.id);
  }
}

export const approvalButton: ButtonHandler<{ id: string; decision: 'approve' | 'deny' }> = {
  parse(customId) {
    const match = new RegExp(`^${APPROVAL_BUTTON_PREFIX}:([0-9a-f]+):(approve|deny)$`).exec(customId);
    return match ? { id: match[1]!, decision: match[2] as 'approve' | 'deny' } : undefined;
  },
  async run(interaction, { id, decision }, context) {
    const ephemeral = (content: string) => interaction.reply({ content, flags: MessageFlags.Ephemeral });
    const { outcome, approvals, state } = await decideApproval(context.core, { id, actor: actorFromInteraction(interaction), decision });
    switch (outcome) {
      case 'missing':
        return void (await ephemeral('This approval request no longer exists.'));
      case 'not-approver':
        return void (await ephemeral(renderUserError({ code: 'FORBIDDEN', message: `Only ${state?.request.approvers.join(', ')} may approve or deny this.` })));
      case 'self':
        return void (await ephemeral('You asked for this, so your click does not count: someone else must approve it.'));
      case 'duplicate':
        return void (await ephemeral(`Your approval is already counted (${approvals} of ${state?.request.required}).`));
      case 'closed:approved':
      case 'closed:denied':
        return void (await ephemeral(`This request was already ${outcome.slice('closed:'.length)}.`));
      case 'expired':
      case 'closed:expired':
      case 'closed:pending':
        await interaction.update(fitMessage(requestPayload(state!)));
        await interaction.followUp({ content: renderUserError({ code: 'APPROVAL_EXPIRED', message: `It expired at ${state?.request.expiresAt}; nothing was done.` }), flags: MessageFlags.Ephemeral });
        return;
      case 'counted':
      case 'denied':
        await interaction.update(fitMessage(requestPayload(state!)));
        return;
      case 'approved':
        await interaction.update(fitMessage(requestPayload(state!, `Approved — running on **${state!.request.host}**…`)));
        await runApproved(context, interaction.client, state!);
        return;
    }
  },
};

/**
 * What any bot process does every few seconds: expire requests past their time (and
 * disable their buttons, also after a restart), post requests that came from snapctl,
 * and run approved requests whose job was not queued because a process died.
 */
export function startApprovalSweeper(context: BotContext, client: Client, intervalMs = 2_000): () => void {
  let busy = false;
  const sweep = async () => {
    if (busy) return;
    busy = true;
    try {
      for (const state of await expireDueApprovals(context.core)) {
        await editRequestMessage(context, client, state.request.id).catch((error: unknown) => context.logger.warn({ err: error }, 'could not mark request expired'));
      }
      for (let id = await takeRequestToPost(context.core); id !== null; id = await takeRequestToPost(context.core)) {
        const state = await getApproval(context.core, id);
        if (state?.status === 'pending') await postApprovalRequest(context, client, state, null);
      }
      for (let notice = await takeNotice(context.core); notice !== null; notice = await takeNotice(context.core)) {
        if (!context.channelId) {
          context.logger.warn({ notice }, 'no DISCORD_CHANNEL_ID to post a notice in');
          continue;
        }
        await context.messenger.post(context.channelId, { content: notice });
      }
      for (const id of await approvedNotQueued(context.core)) {
        const state = await getApproval(context.core, id);
        if (state?.status === 'approved') void runApproved(context, client, state);
      }
      await context.core.redis.set(`${context.core.prefix}:bot:alive`, new Date().toISOString(), 'PX', intervalMs * 5);
    } catch (error) {
      context.logger.warn({ err: error instanceof SnapbotError ? error.message : error }, 'approval sweep failed');
    } finally {
      busy = false;
    }
  };
  void sweep();
  const timer = setInterval(() => void sweep(), intervalMs);
  return () => clearInterval(timer);
}
