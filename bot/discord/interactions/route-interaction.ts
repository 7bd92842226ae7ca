import { MessageFlags, type ButtonInteraction, type Interaction } from 'discord.js';
import { randomBytes } from 'node:crypto';
import { SLASH_COMMANDS } from '../commands/index.js';
import type { BotContext, ButtonHandler } from '../context.js';
import { approvalButton } from '../buttons/approval-button.js';
import { fleetButton } from '../buttons/fleet-button.js';
import { fleetListPageButton } from '../fleet-list-pages.js';
import { listPageButton } from '../list-pages.js';
import { renderUserError } from '../render/render-job.js';
import { internalErrorMessage } from '../user-facing-error.js';

/** What someone outside DISCORD_GUILD_ID is told. */
export const OUTSIDE_GUILD_MESSAGE = 'snapbot serves only its own server: it ignores commands and buttons from any other server and from direct messages.';

/** Runs `handler` if the button's custom id is one of its own; says whether it was. */
async function tryButton<T>(handler: ButtonHandler<T>, interaction: ButtonInteraction, context: BotContext): Promise<boolean> {
  const parsed = handler.parse(interaction.customId);
  if (parsed === undefined) return false;
  await handler.run(interaction, parsed, context);
  return true;
}

/** Button families, each claiming its own custom ids. */
const BUTTONS: ReadonlyArray<(interaction: ButtonInteraction, context: BotContext) => Promise<boolean>> = [
  (interaction, context) => tryButton(listPageButton, interaction, context),
  (interaction, context) => tryButton(approvalButton, interaction, context),
  (interaction, context) => tryButton(fleetButton, interaction, context),
  (interaction, context) => tryButton(fleetListPageButton, interaction, context),
];

/**
 * Sends each interaction to its command, autocomplete or button handler, once it is
 * known to come from `servedGuildId` (DISCORD_GUILD_ID): an interaction from any other
 * server (the bot is public, anyone can add it) or from a DM is refused here, before
 * any handler or core call, whatever it is (command, autocomplete, button, modal).
 */
export async function routeInteraction(interaction: Interaction, context: BotContext, servedGuildId: string): Promise<void> {
  try {
    if (interaction.guildId !== servedGuildId) return await refuseOutsider(interaction, context);
    if (interaction.isChatInputCommand()) {
      const command = SLASH_COMMANDS.find((candidate) => candidate.data.name === interaction.commandName);
      if (command) await command.execute(interaction, context);
      return;
    }
    if (interaction.isAutocomplete()) {
      const command = SLASH_COMMANDS.find((candidate) => candidate.data.name === interaction.commandName);
      if (command?.autocomplete) await command.autocomplete(interaction, context);
      return;
    }
    if (interaction.isButton()) {
      for (const handle of BUTTONS) if (await handle(interaction, context)) return;
      // No handler knows this button (an old message, a changed id format): say so rather than leave the click spinning.
      context.logger.warn({ customId: interaction.customId, user: interaction.user.id }, 'a button no handler knows');
      await interaction.reply({ content: 'This button is no longer valid; nothing was done.', flags: MessageFlags.Ephemeral });
    }
  } catch (error) {
    const reference = randomBytes(4).toString('hex');
    context.logger.error({ err: error, reference, interaction: interaction.id, user: interaction.user.id }, 'interaction failed');
    if (interaction.isRepliable() && !interaction.replied && !interaction.deferred) {
      await interaction
        .reply({ content: `**INTERNAL** — ${internalErrorMessage(reference)}`, flags: MessageFlags.Ephemeral })
        .catch(() => undefined);
    }
  }
}

/** Autocomplete gets no choices; anything that can be answered gets FORBIDDEN, ephemerally; the refusal is logged at warn. */
async function refuseOutsider(interaction: Interaction, context: BotContext): Promise<void> {
  context.logger.warn(
    { interaction: interaction.id, type: interaction.type, user: interaction.user.id, guild: interaction.guildId ?? 'dm' },
    'refused an interaction from outside DISCORD_GUILD_ID',
  );
  if (interaction.isAutocomplete()) return void (await interaction.respond([]));
  if (interaction.isRepliable()) {
    await interaction.reply({ content: renderUserError({ code: 'FORBIDDEN', message: OUTSIDE_GUILD_MESSAGE }), flags: MessageFlags.Ephemeral });
  }
}
