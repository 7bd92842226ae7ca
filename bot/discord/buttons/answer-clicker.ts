import { MessageFlags, type ButtonInteraction } from 'discord.js';
import type { BotContext } from '../context.js';
import { renderUserError } from '../render/render-job.js';
import { userFacingError } from '../user-facing-error.js';

/** Tells the clicker alone (the click was acknowledged already). */
export function tellClicker(interaction: ButtonInteraction, content: string): Promise<unknown> {
  return interaction.followUp({ content, flags: MessageFlags.Ephemeral });
}

/** Tells the clicker alone what went wrong: their mistake with its code, anything else as internal with a reference. */
export async function answerFailure(interaction: ButtonInteraction, context: BotContext, error: unknown): Promise<void> {
  await tellClicker(interaction, renderUserError(userFacingError(context.logger, error, { button: interaction.customId, user: interaction.user.id })));
}
