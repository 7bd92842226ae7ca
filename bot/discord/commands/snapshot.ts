import { InteractionContextType, MessageFlags, SlashCommandBuilder, type ChatInputCommandInteraction, type SlashCommandSubcommandBuilder } from 'discord.js';
import type { JobKind } from '../../../shared/jobs.js';
import { expandSuggestedName, suggestHosts, suggestSnapshots, suggestVms, visibleInventory } from '../../core/suggest.js';
import {
  createSnapshot,
  deleteSnapshot,
  listSnapshots,
  revertSnapshot,
  snapshotInfo,
  type OperationOptions,
  type OperationRequest,
} from '../../core/snapshots.js';
import { getApproval } from '../../core/approvals.js';
import { readAuditFor } from '../../core/audit.js';
import { requestDelete, requestRevert } from '../../core/snapshot-approvals.js';
import { renderAuditReply } from '../render/render-audit.js';
import { fitChoices, fitMessage } from '../render/discord-limits.js';
import { actorFromInteraction } from '../actor.js';
import { postApprovalRequest } from '../approval-messages.js';
import type { BotContext, SlashCommand } from '../context.js';
import { renderListReply } from '../list-pages.js';
import { renderJobResult, renderJobStage, type JobHeading } from '../render/render-job.js';
import { newLiveReply, reportFailure } from '../run-command.js';

type Builder = SlashCommandSubcommandBuilder;

/**
 * `vm`, then `name` when the subcommand has one, then `host`: Discord refuses a command
 * whose required options do not all come before the optional ones (and with it every
 * command of the bulk registration).
 */
function withTarget(sub: Builder, snapshotName: 'none' | 'optional' | 'required') {
  sub.addStringOption((option) => option.setName('vm').setDescription('VM (libvirt domain)').setRequired(true).setAutocomplete(true).setMaxLength(200));
  if (snapshotName === 'required') {
    sub.addStringOption((option) => option.setName('name').setDescription('Snapshot').setRequired(true).setAutocomplete(true).setMaxLength(128));
  } else if (snapshotName === 'optional') {
    sub.addStringOption((option) => option.setName('name').setDescription('Snapshot name (default: snap-YYYYMMDD-HHMMSS)').setMaxLength(128));
  }
  return sub.addStringOption((option) =>
    option.setName('host').setDescription('KVM host (only needed when the VM name is on several hosts)').setAutocomplete(true).setMaxLength(63),
  );
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
  .addSubcommand((sub) =>
    sub
      .setName('audit')
      .setDescription('Who did what: requests, approvals, denials, expiries, results')
      .addStringOption((option) => option.setName('vm').setDescription('Only this VM').setAutocomplete(true).setMaxLength(200)),
  )
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

/** /snapshot audit: the newest entries of the audit trail, privately. */
async function showAudit(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  try {
    const vm = interaction.options.getString('vm') ?? undefined;
    const entries = await readAuditFor(context.core, actorFromInteraction(interaction), { vm, limit: 200 });
    await interaction.editReply(fitMessage(renderAuditReply(entries, vm)));
  } catch (error) {
    await reportFailure(interaction, context, error, {});
  }
}

/** The names behind autocomplete values that stood for names longer than Discord's 100-character values. */
async function expandSuggested(context: BotContext, typed: { vm: string; name: string | undefined }): Promise<{ vm: string; name: string | undefined }> {
  const hosts = await context.inventory.hosts();
  const vms = hosts.flatMap((host) => host.vms);
  const vm = expandSuggestedName(typed.vm, vms.map((entry) => entry.name));
  const snapshots = vms.filter((entry) => entry.name === vm).flatMap((entry) => entry.snapshots.map((snapshot) => snapshot.name));
  return { vm, name: typed.name === undefined ? undefined : expandSuggestedName(typed.name, snapshots) };
}

async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  const kind = interaction.options.getSubcommand();
  if (kind === 'audit') return showAudit(interaction, context);
  const guarded = kind === 'revert' || kind === 'delete';
  // Acknowledge first: Discord gives 3 s, and looking things up in Redis comes after.
  // Reverts and deletes answer the requester privately; the approval request is public.
  await interaction.deferReply(guarded ? { flags: MessageFlags.Ephemeral } : {});
  const typed = { vm: interaction.options.getString('vm', true), name: interaction.options.getString('name') ?? undefined };
  const { vm, name } = await expandSuggested(context, typed);
  const heading: JobHeading = { kind: isJobKind(kind) ? kind : 'list', vm, snapshot: name };
  const live = newLiveReply(interaction, context);
  let queuedOn: string | undefined;
  try {
    if (!isJobKind(kind)) throw new Error(`unknown subcommand ${kind}`);
    const actor = actorFromInteraction(interaction);
    const host = interaction.options.getString('host') ?? undefined;
    const options: OperationOptions = {
      timeoutMs: context.jobTimeoutMs,
      onQueued: (jobId, queuedHost) => {
        queuedOn = queuedHost;
        live.update({ embeds: [renderJobStage(heading, { stage: 'queued', host: queuedHost, jobId })] });
      },
      onProgress: (progress) => live.update({ embeds: [renderJobStage(heading, { stage: 'progress', progress })] }),
    };
    if (guarded) {
      const requester = { id: actor.id, userId: actor.userId, displayName: actor.displayName };
      const ask = kind === 'revert' ? requestRevert : requestDelete;
      const outcome = await ask(context.core, { vm, host, name: name ?? '', requester, actor, origin: 'discord' }, options);
      if (outcome.kind === 'done') {
        await live.finish({ embeds: [renderJobResult(outcome.result)] });
        return;
      }
      const state = await getApproval(context.core, outcome.request.id);
      const url = state ? await postApprovalRequest(context, state, interaction.channelId) : 'in the channel';
      const expires = Math.floor(Date.parse(outcome.request.expiresAt) / 1000);
      await interaction.editReply(`Approval requested: ${url}\nIt needs ${outcome.request.required} approval(s) and expires <t:${expires}:R>. Request \`${outcome.request.id}\`.`);
      return;
    }
    const request: OperationRequest = {
      vm,
      host,
      name,
      mode: interaction.options.getString('mode') ?? undefined,
      description: interaction.options.getString('description') ?? undefined,
      requestedBy: actor.id,
      actor,
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
    const hosts = visibleInventory(context.core.policy, actorFromInteraction(interaction), await context.inventory.hosts());
    const vms = hosts.flatMap((entry) => entry.vms.map((vm) => vm.name));
    const vm = expandSuggestedName(interaction.options.getString('vm') ?? '', vms);
    const host = interaction.options.getString('host') || undefined;
    const choices =
      focused.name === 'vm'
        ? suggestVms(hosts, focused.value)
        : focused.name === 'host'
          ? suggestHosts(hosts, focused.value, vm || undefined)
          : focused.name === 'name'
            ? suggestSnapshots(hosts, vm, host, focused.value)
            : [];
    await interaction.respond(fitChoices(choices.map((choice) => ({ name: choice.label, value: choice.value }))));
  },
};
