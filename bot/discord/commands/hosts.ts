import { InteractionContextType, SlashCommandBuilder } from 'discord.js';
import { readHostsOverview } from '../../core/hosts.js';
import { listSchedules } from '../../core/schedules/store.js';
import { actorFromInteraction } from '../actor.js';
import type { SlashCommand } from '../context.js';
import { renderHostsReply } from '../render/render-hosts.js';
import { failingSchedules } from '../render/render-schedule.js';
import { reportFailure } from '../run-command.js';
import { fitMessage } from '../render/discord-limits.js';

export const hostsCommand: SlashCommand = {
  data: new SlashCommandBuilder()
    .setName('hosts')
    .setDescription('KVM hosts: online, stale or offline; versions, capabilities, VMs, queue depth, last error')
    .setContexts(InteractionContextType.Guild)
    .toJSON(),
  async execute(interaction, context) {
    await interaction.deferReply();
    try {
      const overview = await readHostsOverview(context.core, { actor: actorFromInteraction(interaction) });
      // The hosts view must not fail for the schedules' sake: without them it shows the hosts alone.
      const schedules = await listSchedules(context.core).catch((error: unknown) => {
        context.logger.warn({ err: error }, '/hosts: could not read the schedules');
        return [];
      });
      await interaction.editReply(fitMessage(renderHostsReply(overview, Date.now(), failingSchedules(schedules))));
    } catch (error) {
      await reportFailure(interaction, context, error, {});
    }
  },
};
