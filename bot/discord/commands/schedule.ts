import { ChannelType, InteractionContextType, SlashCommandBuilder, type ChatInputCommandInteraction, type SlashCommandSubcommandBuilder } from 'discord.js';
import { getApproval } from '../../core/approvals.js';
import type { Actor } from '../../core/authorize.js';
import { createSchedule, deleteSchedule, pauseSchedule, resumeSchedule, runScheduleNow, upcomingFirings, type ScheduleCaller } from '../../core/schedules/manage.js';
import { getSchedule, listSchedules, mayReadSchedules, requireSchedule } from '../../core/schedules/store.js';
import { suggestFleetTargets, visibleInventory } from '../../core/suggest.js';
import { actorFromInteraction } from '../actor.js';
import { postApprovalRequest, refreshApprovalMessage } from '../approval-messages.js';
import type { BotContext, SlashCommand } from '../context.js';
import { fitChoices, fitMessage } from '../render/discord-limits.js';
import { escapeText } from '../render/escape.js';
import { renderScheduleEmbed, renderScheduleList } from '../render/render-schedule.js';
import { reportFailure } from '../run-command.js';

/**
 * `/schedule create|list|show|pause|resume|run|delete`: snapctl's schedule commands in
 * Discord, over the same core functions (which check the policy's `schedule` action and,
 * at creation, create and delete on every VM the target matches). Answers are public, so
 * the team sees schedules come and go; refusals and mistakes go to the user alone.
 */

type Builder = SlashCommandSubcommandBuilder;

function withName(sub: Builder, description: string): Builder {
  return sub.addStringOption((option) => option.setName('name').setDescription(description).setRequired(true).setAutocomplete(true).setMaxLength(100));
}

const data = new SlashCommandBuilder()
  .setName('schedule')
  .setDescription('Snapshots on a schedule, with retention: keep the newest N per period, prune the rest')
  .setContexts(InteractionContextType.Guild)
  .addSubcommand((sub) =>
    sub
      .setName('create')
      .setDescription("Create a schedule (it waits for approval when its VMs' deletes need it)")
      .addStringOption((option) => option.setName('name').setDescription('Lowercase letters, digits and -, e.g. nightly-web').setRequired(true).setMaxLength(100))
      .addStringOption((option) =>
        option
          .setName('target')
          .setDescription("VM globs (web-*), host:<glob>, all, !exclusions — resolved again at every firing")
          .setRequired(true)
          .setAutocomplete(true)
          .setMaxLength(1000),
      )
      .addStringOption((option) =>
        option.setName('keep').setDescription('Retention: last=N and/or hourly=N,daily=N,weekly=N,monthly=N').setRequired(true).setMaxLength(200),
      )
      .addStringOption((option) => option.setName('cron').setDescription('Cron expression, 5 fields ("30 2 * * *") or 6 with seconds first').setMaxLength(200))
      .addStringOption((option) => option.setName('every').setDescription('Interval instead of cron: 30s, 15m, 1h, 1d').setMaxLength(20))
      .addStringOption((option) => option.setName('tz').setDescription("IANA time zone for cron and retention's days and weeks (default UTC)").setMaxLength(64))
      .addStringOption((option) =>
        option
          .setName('mode')
          .setDescription('disk-only (default): atomic disk snapshot; full: memory + disk')
          .addChoices({ name: 'disk-only', value: 'disk-only' }, { name: 'full (memory + disk)', value: 'full' }),
      )
      .addStringOption((option) => option.setName('prefix').setDescription('Snapshot names are <prefix>-YYYYMMDD-HHMMSS (default: the name)').setMaxLength(64))
      .addStringOption((option) => option.setName('description').setDescription('Stored with every snapshot').setMaxLength(1000))
      .addChannelOption((option) =>
        option.setName('channel').setDescription("Where each firing's summary is posted (default: the bot's channel)").addChannelTypes(ChannelType.GuildText, ChannelType.GuildAnnouncement),
      ),
  )
  .addSubcommand((sub) => sub.setName('list').setDescription('Every schedule: status, cadence, retention, last firing'))
  .addSubcommand((sub) => withName(sub.setName('show').setDescription('One schedule, its next firings and its last one'), 'Schedule'))
  .addSubcommand((sub) => withName(sub.setName('pause').setDescription('Stop firing (kept; resume starts it again)'), 'Schedule to pause'))
  .addSubcommand((sub) => withName(sub.setName('resume').setDescription('Fire again after a pause'), 'Schedule to resume'))
  .addSubcommand((sub) => withName(sub.setName('run').setDescription('Fire it once now; its summary is posted when it ends'), 'Schedule to run'))
  .addSubcommand((sub) => withName(sub.setName('delete').setDescription('Delete the schedule (its snapshots stay)'), 'Schedule to delete'))
  .toJSON();

function callerOf(actor: Actor): ScheduleCaller {
  return { requester: { id: actor.id, userId: actor.userId, displayName: actor.displayName }, actor, origin: 'discord' };
}


/** The channel option's id as Discord sent it (the resolved channel object is not needed: core keeps the id). */
function channelOption(interaction: ChatInputCommandInteraction): string | undefined {
  const value = interaction.options.get('channel')?.value;
  return typeof value === 'string' ? value : undefined;
}

async function create(interaction: ChatInputCommandInteraction, context: BotContext, actor: Actor): Promise<void> {
  const option = (name: string) => interaction.options.getString(name) ?? undefined;
  const created = await createSchedule(
    context.core,
    {
      name: interaction.options.getString('name', true),
      target: interaction.options.getString('target', true),
      keep: interaction.options.getString('keep', true),
      cron: option('cron'),
      every: option('every'),
      tz: option('tz'),
      mode: option('mode'),
      prefix: option('prefix'),
      description: option('description'),
      channelId: channelOption(interaction),
    },
    callerOf(actor),
  );
  const matched = `its target matches ${created.vms} VM${created.vms === 1 ? '' : 's'} now`;
  let note = `✅ Created by <@${actor.userId}>: active; ${matched}.`;
  if (created.approval) {
    const state = await getApproval(context.core, created.approval.id);
    const url = state ? await postApprovalRequest(context, state, interaction.channelId) : 'in the channel';
    const expires = Math.floor(Date.parse(created.approval.expiresAt) / 1000);
    note = `🔐 Created by <@${actor.userId}>; ${matched}. It fires once approved (${escapeText(created.approval.reason)}): ${url} — expires <t:${expires}:R>.`;
  }
  await interaction.editReply(fitMessage({ embeds: [renderScheduleEmbed(created.schedule, upcomingFirings(created.schedule), note)] }));
}

async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  // Acknowledge first: creating reads every host's inventory.
  await interaction.deferReply();
  try {
    const subcommand = interaction.options.getSubcommand();
    const actor = actorFromInteraction(interaction);
    const caller = callerOf(actor);
    const name = () => interaction.options.getString('name', true);
    const reply = (content: string) => interaction.editReply(fitMessage({ content }));
    switch (subcommand) {
      case 'create':
        return await create(interaction, context, actor);
      case 'list': {
        await interaction.editReply(fitMessage({ embeds: [renderScheduleList(await listSchedules(context.core, actor))] }));
        return;
      }
      case 'show': {
        const record = await requireSchedule(context.core, name(), actor);
        await interaction.editReply(fitMessage({ embeds: [renderScheduleEmbed(record, upcomingFirings(record))] }));
        return;
      }
      case 'pause': {
        const record = await pauseSchedule(context.core, name(), caller);
        await reply(`⏸️ Schedule **${escapeText(record.definition.name)}** paused by <@${actor.userId}>; \`/schedule resume\` starts it again.`);
        return;
      }
      case 'resume': {
        const record = await resumeSchedule(context.core, name(), caller);
        const next = upcomingFirings(record, 1)[0];
        await reply(`▶️ Schedule **${escapeText(record.definition.name)}** resumed by <@${actor.userId}>${next ? `; next firing <t:${Math.floor(Date.parse(next) / 1000)}:R>` : ''}.`);
        return;
      }
      case 'run': {
        const jobId = await runScheduleNow(context.core, name(), caller);
        const record = await getSchedule(context.core, name());
        const channelId = record?.definition.channelId ?? context.channelId;
        const where = channelId ? `in <#${channelId}>` : 'in the bot’s channel';
        await reply(`▶️ Schedule **${escapeText(name())}** fired by <@${actor.userId}> (\`${escapeText(jobId)}\`); its summary is posted ${where} when it ends.`);
        return;
      }
      case 'delete': {
        const before = await getSchedule(context.core, name()).catch(() => null);
        await deleteSchedule(context.core, name(), caller);
        // A pending schedule's approval request was withdrawn with it: its buttons go dead.
        if (before?.status === 'pending' && before.approvalId) await refreshApprovalMessage(context, before.approvalId).catch(() => undefined);
        await reply(`🗑️ Schedule **${escapeText(name())}** deleted by <@${actor.userId}>; its snapshots were left as they are.`);
        return;
      }
      default:
        throw new Error(`unknown subcommand ${subcommand}`);
    }
  } catch (error) {
    await reportFailure(interaction, context, error, {});
  }
}

/** Schedule names containing what was typed (those starting with it first), with their status and cadence. */
async function suggestScheduleNames(context: BotContext, actor: Actor, typed: string): Promise<Array<{ name: string; value: string }>> {
  const needle = typed.trim().toLowerCase();
  const records = (await listSchedules(context.core, actor)).filter((record) => record.definition.name.includes(needle));
  records.sort((a, b) => Number(!a.definition.name.startsWith(needle)) - Number(!b.definition.name.startsWith(needle)) || a.definition.name.localeCompare(b.definition.name));
  return records.map((record) => ({
    name: `${record.definition.name} — ${record.status}${record.failedInARow > 1 ? `, failed ${record.failedInARow} times in a row` : ''} · ${record.definition.target}`,
    value: record.definition.name,
  }));
}

export const scheduleCommand: SlashCommand = {
  data,
  execute,
  async autocomplete(interaction, context) {
    const focused = interaction.options.getFocused(true);
    const actor = actorFromInteraction(interaction);
    if (focused.name === 'target') {
      const hosts = visibleInventory(context.core.policy, actor, await context.inventory.hosts());
      await interaction.respond(fitChoices(suggestFleetTargets(hosts, focused.value).map((choice) => ({ name: choice.label, value: choice.value }))));
      return;
    }
    // Someone who may not read schedules is offered none.
    const choices = focused.name === 'name' && mayReadSchedules(context.core.policy, actor) ? await suggestScheduleNames(context, actor, focused.value) : [];
    await interaction.respond(fitChoices(choices));
  },
};
