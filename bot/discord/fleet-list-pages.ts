import { randomBytes } from 'node:crypto';
import { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle, MessageFlags, type APIActionRowComponent, type APIButtonComponent } from 'discord.js';
import { z } from 'zod';
import { authorize, isAllowed } from '../core/authorize.js';
import type { SnapbotCore } from '../core/core.js';
import type { FleetListRow } from '../core/fleet.js';
import { actorFromInteraction } from './actor.js';
import type { ButtonHandler } from './context.js';
import type { ReplyPayload } from './live-reply.js';
import { FLEET_LIST_PREFIX, fleetListPageCount, renderFleetListFile, renderFleetListPage } from './render/render-fleet.js';
import { renderUserError } from './render/render-job.js';
import { fitMessage } from './render/discord-limits.js';

/** A listing stays pageable this long; after that the buttons say to run the command again. */
const LIST_TTL_SECONDS = 3600;

const storedListingSchema = z.object({
  query: z.object({ target: z.string(), name: z.string().optional() }),
  rows: z.array(z.object({ host: z.string(), online: z.boolean(), vm: z.string(), state: z.string(), snapshots: z.array(z.string()) })),
});
type StoredListing = z.infer<typeof storedListingSchema>;

function listKey(core: SnapbotCore, id: string): string {
  return `${core.prefix}:discord:fleet-list:${id}`;
}

function pageButtons(id: string, page: number, pages: number): APIActionRowComponent<APIButtonComponent>[] {
  if (pages <= 1) return [];
  return [
    new ActionRowBuilder<ButtonBuilder>()
      .addComponents(
        new ButtonBuilder().setCustomId(`${FLEET_LIST_PREFIX}:${id}:${page - 1}`).setLabel('◀ Previous').setStyle(ButtonStyle.Secondary).setDisabled(page <= 0),
        new ButtonBuilder()
          .setCustomId(`${FLEET_LIST_PREFIX}:${id}:${page + 1}`)
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
  await core.redis.set(listKey(core, id), JSON.stringify(stored), 'EX', LIST_TTL_SECONDS);
  return {
    embeds: [embed],
    components: pageButtons(id, 0, pages),
    files: [new AttachmentBuilder(Buffer.from(renderFleetListFile(rows)), { name: 'fleet-snapshots.txt' })],
  };
}

export const fleetListPageButton: ButtonHandler<{ id: string; page: number }> = {
  parse(customId) {
    const match = new RegExp(`^${FLEET_LIST_PREFIX}:([0-9a-f]+):(-?\\d+)$`).exec(customId);
    return match ? { id: match[1]!, page: Number(match[2]) } : undefined;
  },
  async run(interaction, { id, page }, context) {
    const stored = await context.core.redis.get(listKey(context.core, id));
    if (stored === null) {
      await interaction.reply({ content: 'This listing has expired; run /fleet list again.', flags: MessageFlags.Ephemeral });
      return;
    }
    const listing = storedListingSchema.parse(JSON.parse(stored));
    const actor = actorFromInteraction(interaction);
    try {
      authorize(context.core.policy, actor, 'list');
    } catch (error) {
      await interaction.reply({ content: renderUserError({ code: 'FORBIDDEN', message: (error as Error).message }), flags: MessageFlags.Ephemeral });
      return;
    }
    // Whoever pages sees only the VMs the policy lets them list, whoever ran the command.
    const rows = listing.rows.filter((row) => isAllowed(context.core.policy, actor, 'list', { host: row.host, vm: row.vm }));
    const pages = fleetListPageCount(rows.length);
    const shown = Math.min(Math.max(page, 0), pages - 1);
    await interaction.update(fitMessage({ embeds: [renderFleetListPage(rows, listing.query, shown)], components: pageButtons(id, shown, pages) }));
  },
};
