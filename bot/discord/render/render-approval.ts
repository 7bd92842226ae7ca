import { ActionRowBuilder, ButtonBuilder, ButtonStyle, type APIActionRowComponent, type APIButtonComponent, type APIEmbed } from 'discord.js';
import type { ErrorPayload } from '../../../shared/errors.js';
import { ERROR_SENTENCES } from '../../../shared/errors.js';
import type { ApprovalState, ScheduleSubject, SnapshotSubject } from '../../core/approvals.js';
import { snapshotSubjectOf } from '../../core/snapshot-approvals.js';
import { approvalButtonId } from '../buttons/ids.js';
import { COLOR } from './colors.js';
import { clipText, DISCORD_LIMITS } from './discord-limits.js';
import { approverText, escapeText, inlineCode, requesterText } from './escape.js';

function unix(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

function age(fromIso: string, now: number): string {
  const minutes = Math.max(0, Math.round((now - Date.parse(fromIso)) / 60_000));
  if (minutes < 120) return `${minutes} min`;
  if (minutes < 48 * 60) return `${Math.round(minutes / 60)} h`;
  return `${Math.round(minutes / 1440)} days`;
}

function whatIsLost(request: SnapshotSubject, now: number): string {
  const vm = escapeText(request.vm);
  if (request.action === 'delete') return `The snapshot itself. ${vm} keeps running as it is.`;
  const since = `Everything written on ${vm} since ${escapeText(request.snapshot.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'))} (${age(request.snapshot.createdAt, now)} ago)`;
  return request.snapshot.memory
    ? `${since}. The VM comes back **running** in the state it was in at that moment.`
    : `${since}. The disks return to that point; the VM was ${escapeText(request.snapshot.state)} then.`;
}

const STATUS_LINE: Record<ApprovalState['status'], string> = {
  pending: 'Waiting for approval',
  approved: 'Approved',
  denied: 'Denied',
  expired: 'Expired: nothing was done',
  withdrawn: 'Withdrawn: nothing was done',
};

/**
 * The approval request message: who asks, exactly what, what is lost, the undo point, the
 * expiry, the votes. `outcome` is the bot's own markdown (names in it already escaped).
 */
export function renderApprovalRequest(state: ApprovalState, now: number = Date.now(), outcome?: string): APIEmbed {
  const asked = state.request;
  if (asked.subject.kind === 'schedule') return renderScheduleApproval(state, asked.subject, outcome);
  const request = snapshotSubjectOf(asked);
  const [vm, snapshot] = [escapeText(request.vm), escapeText(request.snapshot.name)];
  const verb = request.action === 'revert' ? `revert ${vm} to ${snapshot}` : `delete snapshot ${snapshot} of ${vm}`;
  const color = state.status === 'pending' ? COLOR.warning : state.status === 'approved' ? COLOR.progress : COLOR.neutral;
  return {
    title: clipText(`${statusTitle(state)}: ${verb}`, DISCORD_LIMITS.embedTitle),
    color,
    description: outcome ?? `${STATUS_LINE[state.status]}${state.deniedBy ? ` (by <@${state.deniedBy}>)` : ''}.`,
    fields: [
      { name: 'Requested by', value: requesterText(asked.requester), inline: true },
      { name: 'Host', value: escapeText(request.host), inline: true },
      { name: 'VM', value: `${vm}\n${inlineCode(request.uuid)}`, inline: true },
      {
        name: 'Snapshot',
        value: `${snapshot} — created <t:${unix(request.snapshot.createdAt)}:f> (${age(request.snapshot.createdAt, now)} ago), ${
          request.snapshot.memory ? 'memory + disk' : 'disk only'
        }, ${escapeText(request.snapshot.location)}${request.snapshot.description ? `\n“${escapeText(clipText(request.snapshot.description, 300))}”` : ''}`,
      },
      { name: 'What will be lost', value: whatIsLost(request, now) },
      ...(request.undoPoint ? [{ name: 'Undo point', value: `A ${request.undoPoint.mode} snapshot \`pre-revert-…\` of the current state is taken first.` }] : []),
      approvalsField(state),
      { name: 'Expires', value: `<t:${unix(asked.expiresAt)}:R> (${escapeText(asked.expiresAt)})`, inline: true },
      { name: 'Request', value: inlineCode(asked.id), inline: true },
    ],
  };
}

const SCHEDULE_STATUS_LINE: Record<ApprovalState['status'], string> = {
  pending: 'Waiting for approval: the schedule fires only once approved.',
  approved: 'Approved: the schedule is active.',
  denied: 'Denied: the schedule does not fire',
  expired: 'Expired: the schedule does not fire; delete it and create it again to ask again.',
  withdrawn: 'Withdrawn: the schedule was deleted before anyone decided.',
};

function statusTitle(state: ApprovalState): string {
  return `🔐 Approval ${state.status === 'pending' ? 'needed' : state.status}`;
}

/** The votes so far and who may cast them. */
function approvalsField(state: ApprovalState): { name: string; value: string } {
  const asked = state.request;
  return {
    name: 'Approvals',
    value: `${state.approvals.length} of ${asked.required}${state.approvals.length ? `: ${state.approvals.map((id) => `<@${id}>`).join(', ')}` : ''} (approvers: ${approverText(asked.approvers)}${
      asked.allowSelfApproval ? '' : '; not the requester'
    })`,
  };
}

/**
 * The approval request of a schedule whose retention deletes snapshots where deletes need
 * approval: what it snapshots, when, what it keeps, how many VMs its target matches now,
 * and why it needs approval. Approved once, it fires until deleted.
 */
function renderScheduleApproval(state: ApprovalState, subject: ScheduleSubject, outcome?: string): APIEmbed {
  const asked = state.request;
  const color = state.status === 'pending' ? COLOR.warning : state.status === 'approved' ? COLOR.success : COLOR.neutral;
  const statusLine = SCHEDULE_STATUS_LINE[state.status];
  return {
    title: clipText(`${statusTitle(state)}: schedule ${escapeText(subject.name)}`, DISCORD_LIMITS.embedTitle),
    color,
    description: outcome ?? (state.status === 'denied' ? `${statusLine}${state.deniedBy ? ` (denied by <@${state.deniedBy}>)` : ''}.` : statusLine),
    fields: [
      { name: 'Requested by', value: requesterText(asked.requester), inline: true },
      { name: 'VMs matched', value: `${subject.vms} now (the target is resolved again at every firing)`, inline: true },
      { name: 'Target', value: inlineCode(subject.target) },
      { name: 'Cadence', value: inlineCode(subject.cadence), inline: true },
      { name: 'Keep', value: `${inlineCode(subject.keep)}; older snapshots of this schedule are deleted`, inline: true },
      { name: 'Why approval', value: escapeText(asked.reason) },
      approvalsField(state),
      { name: 'Expires', value: `<t:${unix(asked.expiresAt)}:R> (${escapeText(asked.expiresAt)})`, inline: true },
      { name: 'Request', value: inlineCode(asked.id), inline: true },
    ],
  };
}

export function approvalButtons(state: ApprovalState): APIActionRowComponent<APIButtonComponent>[] {
  const closed = state.status !== 'pending';
  return [
    new ActionRowBuilder<ButtonBuilder>()
      .addComponents(
        new ButtonBuilder().setCustomId(approvalButtonId.build(state.request.id, 'approve')).setLabel('Approve').setStyle(ButtonStyle.Success).setDisabled(closed),
        new ButtonBuilder().setCustomId(approvalButtonId.build(state.request.id, 'deny')).setLabel('Deny').setStyle(ButtonStyle.Danger).setDisabled(closed),
      )
      .toJSON(),
  ];
}

export function renderApprovalFailure(error: ErrorPayload): string {
  return clipText(`❌ **${error.code}** — ${ERROR_SENTENCES[error.code]}\n${escapeText(error.message)}`, DISCORD_LIMITS.embedDescription);
}
