import { InteractionContextType, SlashCommandBuilder } from 'discord.js';
import { listHosts } from '../../core/hosts.js';
import { actorFromInteraction } from '../actor.js';
import type { SlashCommand } from '../context.js';
import { renderHostsReply } from '../render/render-hosts.js';
import { reportFailure } from '../run-command.js';

export const hostsCommand: SlashCommand = {
  data: new SlashCommandBuilder()
    .setName('hosts')
    .setDescription('KVM hosts: online or not, libvirt and QEMU versions, capabilities, VMs')
    .setContexts(InteractionContextType.Guild)
    .toJSON(),
  async execute(interaction, context) {
    await interaction.deferReply();
    try {
      const hosts = await listHosts(context.core, { actor: actorFromInteraction(interaction) });
      await interaction.editReply(renderHostsReply(hosts));
    } catch (error) {
      await reportFailure(interaction, context, error, {});
    }
  },
};
