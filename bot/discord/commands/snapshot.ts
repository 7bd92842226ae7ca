import { InteractionContextType, SlashCommandBuilder, type ChatInputCommandInteraction, type SlashCommandSubcommandBuilder } from 'discord.js';
import type { JobKind } from '../../../shared/jobs.js';
import { suggestHosts, suggestSnapshots, suggestVms } from '../../core/suggest.js';
import {
  createSnapshot,
  deleteSnapshot,
  listSnapshots,
  revertSnapshot,
  snapshotInfo,
  type OperationOptions,
  type OperationRequest,
} from '../../core/snapshots.js';
import { actorFromInteraction } from '../actor.js';
import type { BotContext, SlashCommand } from '../context.js';
import { renderListReply } from '../list-pages.js';
import { renderJobResult, renderJobStage, type JobHeading } from '../render/render-job.js';
import { newLiveReply, reportFailure } from '../run-command.js';

type Builder = SlashCommandSubcommandBuilder;

function withTarget(sub: Builder, snapshotName: 'none' | 'optional' | 'required') {
  sub
    .addStringOption((option) => option.setName('vm').setDescription('VM (libvirt domain)').setRequired(true).setAutocomplete(true).setMaxLength(200))
    .addStringOption((option) =>
      option.setName('host').setDescription('KVM host (only needed when the VM name is on several hosts)').setAutocomplete(true).setMaxLength(63),
    );
  if (snapshotName === 'required') {
    sub.addStringOption((option) => option.setName('name').setDescription('Snapshot').setRequired(true).setAutocomplete(true).setMaxLength(128));
  } else if (snapshotName === 'optional') {
    sub.addStringOption((option) => option.setName('name').setDescription('Snapshot name (default: snap-YYYYMMDD-HHMMSS)').setMaxLength(128));
  }
  return sub;
}

const data = new SlashCommandBuilder()
  .setName('snapshot')
  .setDescription('KVM snapshots: create, list, info, revert, delete')
  .setContexts(InteractionContextType.Guild)
  // Everyone may list and look by default; the policy decides the rest per role.
  .addSubcommand((sub) =>
    withTarget(sub.setName('create').setDescription('Take a snapshot of a VM'), 'optional')
      .addStringOption((option) =>
        option
          .setName('mode')
          .setDescription('disk-only (default): atomic disk snapshot; full: memory + disk')
          .addChoices({ name: 'disk-only', value: 'disk-only' }, { name: 'full (memory + disk)', value: 'full' }),
      )
      .addStringOption((option) => option.setName('description').setDescription('Stored with the snapshot').setMaxLength(1000)),
  )
  .addSubcommand((sub) => withTarget(sub.setName('list').setDescription("List a VM's snapshots"), 'none'))
  .addSubcommand((sub) => withTarget(sub.setName('info').setDescription('Show one snapshot'), 'required'))
  .addSubcommand((sub) => withTarget(sub.setName('revert').setDescription('Revert a VM to a snapshot (its current state is lost)'), 'required'))
  .addSubcommand((sub) => withTarget(sub.setName('delete').setDescription('Delete a snapshot'), 'required'))
  .toJSON();

const OPERATIONS = {
  create: createSnapshot,
  list: listSnapshots,
  info: snapshotInfo,
  revert: revertSnapshot,
  delete: deleteSnapshot,
} as const;

function isJobKind(value: string): value is JobKind {
  return Object.hasOwn(OPERATIONS, value);
}

async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  // Acknowledge first: Discord gives 3 s, and looking things up in Redis comes after.
  await interaction.deferReply();
  const kind = interaction.options.getSubcommand();
  const vm = interaction.options.getString('vm', true);
  const name = interaction.options.getString('name') ?? undefined;
  const heading: JobHeading = { kind: isJobKind(kind) ? kind : 'list', vm, snapshot: name };
  const live = newLiveReply(interaction, context);
  let queuedOn: string | undefined;
  try {
    if (!isJobKind(kind)) throw new Error(`unknown subcommand ${kind}`);
    const actor = actorFromInteraction(interaction);
    const request: OperationRequest = {
      vm,
      host: interaction.options.getString('host') ?? undefined,
      name,
      mode: interaction.options.getString('mode') ?? undefined,
      description: interaction.options.getString('description') ?? undefined,
      requestedBy: actor.id,
      actor,
    };
    const options: OperationOptions = {
      timeoutMs: context.jobTimeoutMs,
      onQueued: (jobId, host) => {
        queuedOn = host;
        live.update({ embeds: [renderJobStage(heading, { stage: 'queued', host, jobId })] });
      },
      onProgress: (progress) => live.update({ embeds: [renderJobStage(heading, { stage: 'progress', progress })] }),
    };
    const result = await OPERATIONS[kind](context.core, request, options);
    await live.finish(result.kind === 'list' ? await renderListReply(context.core, result) : { embeds: [renderJobResult(result)] });
  } catch (error) {
    await reportFailure(interaction, context, error, { heading, live, queuedOn });
  }
}

export const snapshotCommand: SlashCommand = {
  data,
  execute,
  async autocomplete(interaction, context) {
    const focused = interaction.options.getFocused(true);
    const hosts = await context.inventory.hosts();
    const vm = interaction.options.getString('vm') ?? '';
    const host = interaction.options.getString('host') || undefined;
    const choices =
      focused.name === 'vm'
        ? suggestVms(hosts, focused.value)
        : focused.name === 'host'
          ? suggestHosts(hosts, focused.value, vm || undefined)
          : focused.name === 'name'
            ? suggestSnapshots(hosts, vm, host, focused.value)
            : [];
    await interaction.respond(choices.map((choice) => ({ name: choice.label, value: choice.value })));
  },
};
