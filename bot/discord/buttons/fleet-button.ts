import type { ButtonInteraction } from 'discord.js';
import { getApproval } from '../../core/approvals.js';
import { cancelFleet, claimFleetWatcher, confirmFleet, fleetSummary, planRetryOfFailed } from '../../core/fleet/index.js';
import { actorFromInteraction } from '../actor.js';
import { postApprovalRequest } from '../approval-messages.js';
import type { BotContext, ButtonHandler } from '../context.js';
import { FleetSummaryMessage, followRun } from '../fleet-summary-message.js';
import { fitMessage } from '../render/discord-limits.js';
import { fleetApprovalPayload, fleetPreviewPayload, renderFleetPreview } from '../render/render-fleet.js';
import { fleetSummaryPayload } from '../render/render-fleet-summary.js';
import { answerFailure, tellClicker } from './answer-clicker.js';
import { fleetButtonId, type FleetButtonAction } from './ids.js';

/** The requester's Confirm on a preview: an approval request in the channel, or the run starts with its summary message. */
async function confirm(interaction: ButtonInteraction, runId: string, context: BotContext): Promise<void> {
  const actor = actorFromInteraction(interaction);
  // Taken before the run becomes active, so no sweeper adopts it while this process posts its summary.
  await claimFleetWatcher(context.core, runId);
  const outcome = await confirmFleet(context.core, runId, actor);
  const { plan } = outcome.run;
  if (outcome.kind === 'pending') {
    const request = await getApproval(context.core, runId);
    const url = request ? await postApprovalRequest(context, request, interaction.channelId) : 'in the channel';
    const expires = outcome.run.expiresAt ? ` It expires <t:${Math.floor(Date.parse(outcome.run.expiresAt) / 1000)}:R>.` : '';
    await interaction.editReply(fitMessage({ embeds: [renderFleetPreview(plan, Date.now(), `🔐 Confirmed by <@${actor.userId}>; approval requested: ${url}${expires}`)], components: [] }));
    return;
  }
  const keeper = new FleetSummaryMessage(context, runId, null, context.channelId ?? interaction.channelId);
  const summary = await fleetSummary(context.core, runId);
  if (summary) await keeper.open(fleetSummaryPayload(summary));
  const where = keeper.url ?? 'in the channel';
  await interaction.editReply(fitMessage({ embeds: [renderFleetPreview(plan, Date.now(), `▶️ Started by <@${actor.userId}>; live summary: ${where}`)], components: [] }));
  followRun(context, runId, null, null, keeper);
}

/** Cancel on a preview (discard), Withdraw on a request, or Cancel on a running summary (what has not started never runs). */
async function cancel(interaction: ButtonInteraction, runId: string, context: BotContext): Promise<void> {
  const actor = actorFromInteraction(interaction);
  const run = await cancelFleet(context.core, runId, { id: actor.id, actor });
  if (run.status === 'discarded') {
    const onRequest = run.message?.messageId === interaction.message.id;
    await interaction.editReply(
      fitMessage(
        onRequest
          ? fleetApprovalPayload(run)
          : { embeds: [renderFleetPreview(run.plan, Date.now(), `🗑️ Cancelled by <@${actor.userId}>; nothing was queued.`)], components: [] },
      ),
    );
    return;
  }
  // Cancelling: the summary's watcher (here or in another process) shows the cancelled
  // targets; one that died is adopted by the next sweep.
  if (run.status === 'cancelling') return;
  await tellClicker(interaction, `Fleet run \`${runId}\` is ${run.status}; there is nothing left to cancel.`);
}

/** "Retry failed" on a final summary: a new preview of the failed targets the clicker may act on, with its own Confirm. */
async function retry(interaction: ButtonInteraction, runId: string, context: BotContext): Promise<void> {
  const actor = actorFromInteraction(interaction);
  const plan = await planRetryOfFailed(context.core, runId, { id: actor.id, userId: actor.userId, displayName: actor.displayName }, actor);
  await interaction.editReply(fitMessage(fleetPreviewPayload(plan)));
}

const ACTIONS: Record<FleetButtonAction, (interaction: ButtonInteraction, runId: string, context: BotContext) => Promise<void>> = { confirm, cancel, retry };

/** Confirm / Cancel on a preview, Withdraw on a fleet approval request, Cancel and Retry failed on a summary. */
export const fleetButton: ButtonHandler<{ runId: string; action: FleetButtonAction }> = {
  parse: (customId) => fleetButtonId.parse(customId),
  async run(interaction, { runId, action }, context) {
    // Acknowledge first: starting or cancelling a large run touches every target's queue.
    // Retry answers with a new message (the new preview); the others edit theirs.
    if (action === 'retry') await interaction.deferReply();
    else await interaction.deferUpdate();
    try {
      await ACTIONS[action](interaction, runId, context);
    } catch (error) {
      if (action === 'retry') await interaction.deleteReply().catch(() => undefined);
      await answerFailure(interaction, context, error);
    }
  },
};
