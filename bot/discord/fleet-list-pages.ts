import { randomBytes } from 'node:crypto';
import { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle, type APIActionRowComponent, type APIButtonComponent } from 'discord.js';
import { z } from 'zod';
import { discordKeys } from '../../shared/keys.js';
import type { SnapbotCore } from '../core/core.js';
import { visibleFleetListRows, type FleetListRow } from '../core/fleet/index.js';
import { actorFromInteraction } from './actor.js';
import { answerFailure, tellClicker } from './buttons/answer-clicker.js';
import { fleetListButtonId } from './buttons/ids.js';
import type { ButtonHandler } from './context.js';
import type { ReplyPayload } from './reply-payload.js';
import { fitMessage } from './render/discord-limits.js';
import { fleetListPageCount, renderFleetListFile, renderFleetListPage } from './render/render-fleet-list.js';

/** A listing stays pageable this long; after that the buttons say to run the command again. */
const LIST_TTL_SECONDS = 3600;

const storedListingSchema = z.object({
  query: z.object({ target: z.string(), name: z.string().optional() }),
  rows: z.array(z.object({ host: z.string(), online: z.boolean(), vm: z.string(), state: z.string(), snapshots: z.array(z.string()) })),
});
type StoredListing = z.infer<typeof storedListingSchema>;

function pageButtons(id: string, page: number, pages: number): APIActionRowComponent<APIButtonComponent>[] {
  if (pages <= 1) return [];
  return [
    new ActionRowBuilder<ButtonBuilder>()
      .addComponents(
        new ButtonBuilder().setCustomId(fleetListButtonId.build(id, page - 1)).setLabel('◀ Previous').setStyle(ButtonStyle.Secondary).setDisabled(page <= 0),
        new ButtonBuilder()
          .setCustomId(fleetListButtonId.build(id, page + 1))
          .setLabel('Next ▶')
          .setStyle(ButtonStyle.Secondary)
          .setDisabled(page >= pages - 1),
      )
      .toJSON(),
  ];
}

/**
 * The reply to /fleet list: the first page, and when there are more, page buttons and
 * the whole table as an attached file. The rows are kept in Redis (with a TTL) so the
 * buttons work from any bot process, also after a restart.
 */
export async function renderFleetListReply(core: SnapbotCore, rows: FleetListRow[], query: { target: string; name?: string | undefined }): Promise<ReplyPayload> {
  const pages = fleetListPageCount(rows.length);
  const embed = renderFleetListPage(rows, query, 0);
  if (pages <= 1) return { embeds: [embed], components: [] };
  const id = randomBytes(6).toString('hex');
  const stored: StoredListing = { query: query.name ? { target: query.target, name: query.name } : { target: query.target }, rows };
  await core.redis.set(discordKeys(core.prefix).fleetListPages(id), JSON.stringify(stored), 'EX', LIST_TTL_SECONDS);
  return {
    embeds: [embed],
    components: pageButtons(id, 0, pages),
    files: [new AttachmentBuilder(Buffer.from(renderFleetListFile(rows)), { name: 'fleet-snapshots.txt' })],
  };
}

/** Older / newer pages of a /fleet list; whoever pages sees only the VMs the policy lets them list. */
export const fleetListPageButton: ButtonHandler<{ id: string; page: number }> = {
  parse: (customId) => fleetListButtonId.parse(customId),
  async run(interaction, { id, page }, context) {
    await interaction.deferUpdate();
    try {
      const stored = await context.core.redis.get(discordKeys(context.core.prefix).fleetListPages(id));
      if (stored === null) {
        await tellClicker(interaction, 'This listing has expired; run /fleet list again.');
        return;
      }
      const listing = storedListingSchema.parse(JSON.parse(stored));
      const rows = visibleFleetListRows(context.core, listing.rows, actorFromInteraction(interaction));
      const pages = fleetListPageCount(rows.length);
      const shown = Math.min(Math.max(page, 0), pages - 1);
      await interaction.editReply(fitMessage({ embeds: [renderFleetListPage(rows, listing.query, shown)], components: pageButtons(id, shown, pages) }));
    } catch (error) {
      await answerFailure(interaction, context, error);
    }
  },
};
