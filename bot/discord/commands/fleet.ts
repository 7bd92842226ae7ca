import { InteractionContextType, SlashCommandBuilder, type ChatInputCommandInteraction, type SlashCommandSubcommandBuilder } from 'discord.js';
import { fleetMatcher, parseFleetSelector } from '../../../shared/fleet.js';
import { fleetList, planFleet } from '../../core/fleet/index.js';
import { expandSuggestedName, suggestFleetSnapshotNames, suggestFleetTargets, visibleInventory } from '../../core/suggest.js';
import { actorFromInteraction } from '../actor.js';
import type { BotContext, SlashCommand } from '../context.js';
import { renderFleetListReply } from '../fleet-list-pages.js';
import { fitChoices, fitMessage } from '../render/discord-limits.js';
import { fleetPreviewPayload } from '../render/render-fleet.js';
import { reportFailure } from '../run-command.js';

type Builder = SlashCommandSubcommandBuilder;

function withSelector(sub: Builder): Builder {
  return sub.addStringOption((option) =>
    option
      .setName('target')
      .setDescription("VM globs (web-*), host:<glob>, all, !exclusions — e.g. 'web-* !web-canary'")
      .setRequired(true)
      .setAutocomplete(true)
      .setMaxLength(1000),
  );
}

const data = new SlashCommandBuilder()
  .setName('fleet')
  .setDescription('One snapshot or delete over many VMs on many hosts: preview, confirm, live summary')
  .setContexts(InteractionContextType.Guild)
  .addSubcommand((sub) =>
    withSelector(sub.setName('snapshot').setDescription('Snapshot every VM the target names (shows a preview first)'))
      .addStringOption((option) =>
        option.setName('name').setDescription('Name or template: {vm} {host} {date} {time} (default fleet-{date}-{time})').setMaxLength(128),
      )
      .addStringOption((option) =>
        option
          .setName('mode')
          .setDescription('disk-only (default): atomic disk snapshot; full: memory + disk')
          .addChoices({ name: 'disk-only', value: 'disk-only' }, { name: 'full (memory + disk)', value: 'full' }),
      )
      .addStringOption((option) => option.setName('description').setDescription('Stored with every snapshot').setMaxLength(1000)),
  )
  .addSubcommand((sub) =>
    withSelector(sub.setName('delete').setDescription('Delete a snapshot (name or glob) on every VM the target names')).addStringOption((option) =>
      option.setName('name').setDescription('Snapshot name or glob, e.g. pre-rollout-*').setRequired(true).setAutocomplete(true).setMaxLength(128),
    ),
  )
  .addSubcommand((sub) =>
    withSelector(sub.setName('list').setDescription('Which VMs have which snapshots')).addStringOption((option) =>
      option.setName('name').setDescription('Only snapshots matching this name or glob').setAutocomplete(true).setMaxLength(128),
    ),
  )
  .toJSON();

async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  // Acknowledge first: planning reads every host's inventory.
  await interaction.deferReply();
  try {
    const subcommand = interaction.options.getSubcommand();
    const actor = actorFromInteraction(interaction);
    const target = interaction.options.getString('target', true);
    const typedName = interaction.options.getString('name') ?? undefined;
    const name = typedName === undefined ? undefined : expandSuggestedName(typedName, await snapshotNamesIn(context, target));
    if (subcommand === 'list') {
      const rows = await fleetList(context.core, { target, name, actor });
      await interaction.editReply(fitMessage(await renderFleetListReply(context.core, rows, { target: parseFleetSelector(target).text, name })));
      return;
    }
    if (subcommand !== 'snapshot' && subcommand !== 'delete') throw new Error(`unknown subcommand ${subcommand}`);
    const plan = await planFleet(context.core, {
      action: subcommand,
      target,
      name,
      mode: interaction.options.getString('mode') ?? undefined,
      description: interaction.options.getString('description') ?? undefined,
      requester: { id: actor.id, userId: actor.userId, displayName: actor.displayName },
      actor,
      origin: 'discord',
    });
    // Public, so teammates see what is about to happen; core lets only the requester confirm.
    await interaction.editReply(fitMessage(fleetPreviewPayload(plan)));
  } catch (error) {
    await reportFailure(interaction, context, error, {});
  }
}

/** Every snapshot name held by the VMs the selector names (to expand an abbreviated autocomplete value). */
async function snapshotNamesIn(context: BotContext, target: string): Promise<string[]> {
  const matches = selectorMatcher(target);
  return (await context.inventory.hosts()).flatMap((host) =>
    host.vms.filter((vm) => matches(host.hostId, vm.name)).flatMap((vm) => vm.snapshots.map((snapshot) => snapshot.name)),
  );
}

/** The VMs a half-typed selector names, or every VM while it does not parse yet. */
function selectorMatcher(target: string): (hostId: string, vm: string) => boolean {
  try {
    return fleetMatcher(parseFleetSelector(target));
  } catch {
    return () => true;
  }
}

export const fleetCommand: SlashCommand = {
  data,
  execute,
  async autocomplete(interaction, context) {
    const focused = interaction.options.getFocused(true);
    const hosts = visibleInventory(context.core.policy, actorFromInteraction(interaction), await context.inventory.hosts());
    const choices =
      focused.name === 'target'
        ? suggestFleetTargets(hosts, focused.value)
        : focused.name === 'name'
          ? suggestFleetSnapshotNames(hosts, selectorMatcher(interaction.options.getString('target') ?? ''), focused.value)
          : [];
    await interaction.respond(fitChoices(choices.map((choice) => ({ name: choice.label, value: choice.value }))));
  },
};
