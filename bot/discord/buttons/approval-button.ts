import { getApproval, type ApprovalState, type DecisionOutcome } from '../../core/approvals.js';
import { decideApproval } from '../../core/approvals.js';
import { claimFleetWatcher, decideFleet } from '../../core/fleet/index.js';
import { activateApprovedSchedule } from '../../core/schedules/manage.js';
import { actorFromInteraction } from '../actor.js';
import { approvalMessage, runApprovedSnapshot } from '../approval-messages.js';
import type { ButtonHandler } from '../context.js';
import { fitMessage } from '../render/discord-limits.js';
import { escapeText } from '../render/escape.js';
import { renderUserError } from '../render/render-job.js';
import { followRun } from '../fleet-summary-message.js';
import { answerFailure, tellClicker } from './answer-clicker.js';
import { approvalButtonId } from './ids.js';

/**
 * Approve / Deny on any approval request (a revert, a delete, a fleet run, a schedule). The click is
 * acknowledged at once; core decides (who may, how many, not the requester, before the
 * expiry, exactly once), the message is redrawn, and the click that approves starts
 * the action.
 */
export const approvalButton: ButtonHandler<{ id: string; decision: 'approve' | 'deny' }> = {
  parse: (customId) => approvalButtonId.parse(customId),
  async run(interaction, { id, decision }, context) {
    await interaction.deferUpdate();
    try {
      const actor = actorFromInteraction(interaction);
      const asked = await getApproval(context.core, id);
      const fleetRunId = asked?.request.subject.kind === 'fleet' ? asked.request.subject.runId : null;
      // If this click is the deciding one, this process follows the run: no sweeper should adopt it meanwhile.
      if (fleetRunId && decision === 'approve') await claimFleetWatcher(context.core, fleetRunId);
      const decided = fleetRunId
        ? await decideFleet(context.core, { runId: fleetRunId, actor, decision })
        : await decideApproval(context.core, { id, actor, decision });
      const state = await getApproval(context.core, id);
      await answer(decided.outcome, decided.approvals, state);
    } catch (error) {
      await answerFailure(interaction, context, error);
    }

    async function answer(outcome: DecisionOutcome, approvals: number, state: ApprovalState | null): Promise<void> {
      const redraw = async (note?: string) => {
        if (state) await interaction.editReply(fitMessage(await approvalMessage(context, state, note)));
      };
      switch (outcome) {
        case 'missing':
          return void (await tellClicker(interaction, 'This approval request no longer exists.'));
        case 'forged':
          return void (await tellClicker(interaction, renderUserError({ code: 'FORBIDDEN', message: 'This request was not opened by snapbot, or was changed in Redis since: it cannot be approved, and nothing was done.' })));
        case 'not-approver':
          return void (await tellClicker(interaction, renderUserError({ code: 'FORBIDDEN', message: `Only ${state?.request.approvers.join(', ')} may approve or deny this.` })));
        case 'self':
          return void (await tellClicker(interaction, 'You asked for this, so your click does not count: someone else must approve it.'));
        case 'duplicate':
          return void (await tellClicker(interaction, `Your approval is already counted (${approvals} of ${state?.request.required}).`));
        case 'expired':
        case 'closed:expired':
          await redraw();
          return void (await tellClicker(interaction, renderUserError({ code: 'APPROVAL_EXPIRED', message: `It expired at ${state?.request.expiresAt}; nothing was done.` })));
        case 'counted':
        case 'denied':
          return redraw();
        case 'approved': {
          if (!state) return;
          const { subject } = state.request;
          if (subject.kind === 'fleet') {
            // The run's summary takes the request message's place.
            followRun(context, subject.runId, state.message ?? { channelId: interaction.channelId, messageId: interaction.message.id }, null);
            return;
          }
          if (subject.kind === 'schedule') {
            const schedule = await activateApprovedSchedule(context.core, state.request.id);
            const name = escapeText(subject.name);
            await redraw(
              schedule?.status === 'active'
                ? `Approved by <@${interaction.user.id}> — schedule **${name}** is active.`
                : `Approved by <@${interaction.user.id}>, but schedule **${name}** was deleted or changed since it was asked: nothing fires.`,
            );
            return;
          }
          await redraw(`Approved — running on **${subject.host}**…`);
          await runApprovedSnapshot(context, state);
          return;
        }
        default:
          return void (await tellClicker(interaction, `This request is already ${outcome.replace(/^closed:/, '')}.`));
      }
    }
  },
};
