import { randomBytes } from 'node:crypto';
import { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle, type APIActionRowComponent, type APIButtonComponent } from 'discord.js';
import { listResultSchema, type ResultOf } from '../../shared/jobs.js';
import { discordKeys } from '../../shared/keys.js';
import type { SnapbotCore } from '../core/core.js';
import { authorizeListing } from '../core/snapshots.js';
import { actorFromInteraction } from './actor.js';
import { answerFailure, tellClicker } from './buttons/answer-clicker.js';
import { snapshotListButtonId } from './buttons/ids.js';
import type { ButtonHandler } from './context.js';
import type { ReplyPayload } from './reply-payload.js';
import { fitMessage } from './render/discord-limits.js';
import { pageCount, renderSnapshotListFile, renderSnapshotListPage } from './render/render-snapshot-list.js';

/** A listing stays pageable this long; after that the buttons say to run the command again. */
const LIST_TTL_SECONDS = 3600;

function pageButtons(id: string, page: number, pages: number): APIActionRowComponent<APIButtonComponent>[] {
  if (pages <= 1) return [];
  const row = new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder().setCustomId(snapshotListButtonId.build(id, page - 1)).setLabel('◀ Newer').setStyle(ButtonStyle.Secondary).setDisabled(page <= 0),
    new ButtonBuilder()
      .setCustomId(snapshotListButtonId.build(id, page + 1))
      .setLabel('Older ▶')
      .setStyle(ButtonStyle.Secondary)
      .setDisabled(page >= pages - 1),
  );
  return [row.toJSON()];
}

/**
 * The reply to /snapshot list: the first page, and when there are more, page buttons
 * and the whole list as an attached file. The listing is kept in Redis (with a TTL) so
 * the buttons work from any bot process, also after a restart.
 */
export async function renderListReply(core: SnapbotCore, result: ResultOf<'list'>): Promise<ReplyPayload> {
  const pages = pageCount(result.snapshots.length);
  if (pages <= 1) return { embeds: [renderSnapshotListPage(result, 0)], components: [] };
  const id = randomBytes(6).toString('hex');
  await core.redis.set(discordKeys(core.prefix).snapshotListPages(id), JSON.stringify(result), 'EX', LIST_TTL_SECONDS);
  return {
    embeds: [renderSnapshotListPage(result, 0)],
    components: pageButtons(id, 0, pages),
    files: [new AttachmentBuilder(Buffer.from(renderSnapshotListFile(result)), { name: `snapshots-${result.vm.name.replace(/[^\w.-]+/g, '_')}.txt` })],
  };
}

/** Newer / older pages of a /snapshot list; whoever pages must be allowed to list that VM. */
export const listPageButton: ButtonHandler<{ id: string; page: number }> = {
  parse: (customId) => snapshotListButtonId.parse(customId),
  async run(interaction, { id, page }, context) {
    await interaction.deferUpdate();
    try {
      const stored = await context.core.redis.get(discordKeys(context.core.prefix).snapshotListPages(id));
      if (stored === null) {
        await tellClicker(interaction, 'This listing has expired; run /snapshot list again.');
        return;
      }
      const result = listResultSchema.parse(JSON.parse(stored));
      authorizeListing(context.core, actorFromInteraction(interaction), result);
      const pages = pageCount(result.snapshots.length);
      const shown = Math.min(Math.max(page, 0), pages - 1);
      await interaction.editReply(fitMessage({ embeds: [renderSnapshotListPage(result, shown)], components: pageButtons(id, shown, pages) }));
    } catch (error) {
      await answerFailure(interaction, context, error);
    }
  },
};
