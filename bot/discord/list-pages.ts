import { randomBytes } from 'node:crypto';
import { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle, MessageFlags, type APIActionRowComponent, type APIButtonComponent } from 'discord.js';
import { listResultSchema, type ResultOf } from '../../shared/jobs.js';
import { authorize } from '../core/authorize.js';
import type { SnapbotCore } from '../core/core.js';
import { actorFromInteraction } from './actor.js';
import type { BotContext, ButtonHandler } from './context.js';
import type { ReplyPayload } from './live-reply.js';
import { renderUserError } from './render/render-job.js';
import { pageCount, renderSnapshotListFile, renderSnapshotListPage } from './render/render-snapshot-list.js';
import { fitMessage } from './render/discord-limits.js';

/** A listing stays pageable this long; after that the buttons say to run the command again. */
const LIST_TTL_SECONDS = 3600;
const PREFIX = 'snapshot-list';

function listKey(core: SnapbotCore, id: string): string {
  return `${core.prefix}:discord:list:${id}`;
}

function pageButtons(id: string, page: number, pages: number): APIActionRowComponent<APIButtonComponent>[] {
  if (pages <= 1) return [];
  const row = new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder().setCustomId(`${PREFIX}:${id}:${page - 1}`).setLabel('◀ Newer').setStyle(ButtonStyle.Secondary).setDisabled(page <= 0),
    new ButtonBuilder()
      .setCustomId(`${PREFIX}:${id}:${page + 1}`)
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
  await core.redis.set(listKey(core, id), JSON.stringify(result), 'EX', LIST_TTL_SECONDS);
  return {
    embeds: [renderSnapshotListPage(result, 0)],
    components: pageButtons(id, 0, pages),
    files: [new AttachmentBuilder(Buffer.from(renderSnapshotListFile(result)), { name: `snapshots-${result.vm.name.replace(/[^\w.-]+/g, '_')}.txt` })],
  };
}

export const listPageButton: ButtonHandler<{ id: string; page: number }> = {
  parse(customId) {
    const match = new RegExp(`^${PREFIX}:([0-9a-f]+):(-?\\d+)$`).exec(customId);
    return match ? { id: match[1]!, page: Number(match[2]) } : undefined;
  },
  async run(interaction, { id, page }, context) {
    const stored = await context.core.redis.get(listKey(context.core, id));
    if (stored === null) {
      await interaction.reply({ content: 'This listing has expired; run /snapshot list again.', flags: MessageFlags.Ephemeral });
      return;
    }
    const result = listResultSchema.parse(JSON.parse(stored));
    try {
      authorize(context.core.policy, actorFromInteraction(interaction), 'list', { host: result.host, vm: result.vm.name });
    } catch (error) {
      await interaction.reply({ content: renderUserError({ code: 'FORBIDDEN', message: (error as Error).message }), flags: MessageFlags.Ephemeral });
      return;
    }
    const pages = pageCount(result.snapshots.length);
    const shown = Math.min(Math.max(page, 0), pages - 1);
    await interaction.update(fitMessage({ embeds: [renderSnapshotListPage(result, shown)], components: pageButtons(id, shown, pages) }));
  },
};
