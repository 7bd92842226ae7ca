import { MessageFlags, type ChatInputCommandInteraction } from 'discord.js';
import type { BotContext } from './context.js';
import { LiveReply, type ReplyPayload } from './live-reply.js';
import { renderJobFailure, renderUserError, type JobHeading } from './render/render-job.js';
import { userFacingError } from './user-facing-error.js';

/**
 * The answer to a failure, by who caused it: a user's mistake before anything was queued
 * (bad name, not allowed, unknown VM) goes to them alone, ephemerally; a job that failed
 * after being queued stays in the public reply; anything unexpected is internal, shown
 * with a reference that points to the log line with the detail.
 */
export async function reportFailure(
  interaction: ChatInputCommandInteraction,
  context: BotContext,
  error: unknown,
  where: { heading?: JobHeading; live?: LiveReply; queuedOn?: string | undefined },
): Promise<void> {
  const payload = userFacingError(context.logger, error, { command: interaction.commandName, user: interaction.user.id });
  if (where.queuedOn === undefined || !where.live || !where.heading) {
    await interaction.deleteReply().catch(() => undefined);
    await interaction.followUp({ content: renderUserError(payload), flags: MessageFlags.Ephemeral });
    return;
  }
  await where.live.finish({ embeds: [renderJobFailure(where.heading, payload, where.queuedOn)], components: [] });
}

export function newLiveReply(interaction: ChatInputCommandInteraction, context: BotContext): LiveReply {
  return new LiveReply(interaction, {
    logger: context.logger,
    messenger: context.messenger,
    fallbackChannelId: context.channelId,
    editIntervalMs: context.editIntervalMs,
  });
}

export type { ReplyPayload };
