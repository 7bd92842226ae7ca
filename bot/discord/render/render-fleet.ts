import { ActionRowBuilder, ButtonBuilder, ButtonStyle, type APIEmbed, type APIEmbedField } from 'discord.js';
import { previewByHost, type FleetPlan, type FleetRun } from '../../core/fleet/index.js';
import { renderTable } from '../../core/text-table.js';
import { approvalButtonId, fleetButtonId } from '../buttons/ids.js';
import { COLOR } from './colors.js';
import { approverText, codeBlock, codeText, escapeText, plainText } from './escape.js';
import { actorText, clip, code, fieldLines, FIELD_LIMIT, headline, HOSTS_SHOWN, limitsSentence, requesterText, seconds, unix, whatItDoes, FAILURES_SHOWN, type Buttons, type FleetMessagePayload } from './fleet-text.js';

/** The messages before a fleet run starts: its preview and its approval request. */

export function hostCount(plan: FleetPlan): number {
  return new Set(plan.targets.map((target) => target.host)).size;
}

export function targetsSentence(plan: FleetPlan): string {
  const unit = plan.action === 'snapshot' ? 'VM' : 'snapshot';
  const count = plan.targets.length;
  return `**${count} ${unit}${count === 1 ? '' : 's'} on ${hostCount(plan)} host${hostCount(plan) === 1 ? '' : 's'}**`;
}

export function perHostBlock(plan: FleetPlan): string {
  const byHost = previewByHost(plan, 4);
  const shown = byHost.slice(0, HOSTS_SHOWN);
  const table = renderTable(
    ['HOST', plan.action === 'snapshot' ? 'VMS' : 'SNAPSHOTS', 'FIRST'],
    shown.map((host) => [codeText(host.hostId), String(host.count), clip(codeText(host.first.join(', ')) + (host.count > host.first.length ? ', …' : ''), 48)]),
  );
  const more = byHost.length > shown.length ? `\n… and ${byHost.length - shown.length} more hosts` : '';
  return `${codeBlock(table)}${more}`;
}

function approvalSentence(plan: FleetPlan): string {
  const { approval } = plan;
  if (!approval) return 'Not needed: the run starts when you confirm.';
  const who = `${approval.required} approval${approval.required === 1 ? '' : 's'} from ${approverText(approval.approvers)}${approval.allowSelfApproval ? '' : ', not the requester'}`;
  return `**Needed** (${escapeText(approval.reason)}): ${who}, within ${approval.ttlMinutes} min of confirming.`;
}


/** The fields that say what was left out of a plan, and why. */
function skippedFields(plan: FleetPlan, now: number): APIEmbedField[] {
  const fields: APIEmbedField[] = [];
  const { offlineHosts, existing, forbidden, withoutMatch } = plan.skipped;
  if (offlineHosts.length > 0) {
    fields.push({
      name: `Excluded: ${offlineHosts.length} offline host${offlineHosts.length === 1 ? '' : 's'}`,
      value: fieldLines(
        offlineHosts.map((host) => {
          const seen = Date.parse(host.lastSeen);
          const when = Number.isNaN(seen) ? escapeText(host.lastSeen) : `<t:${unix(Math.min(seen, now))}:R>`;
          return `📴 **${escapeText(host.hostId)}** — last seen ${when}; ${host.vms} VM${host.vms === 1 ? '' : 's'} not included`;
        }),
      ),
    });
  }
  if (existing.length > 0) {
    const first = existing.slice(0, 10).map((entry) => `${escapeText(entry.vm)} @ ${escapeText(entry.host)}`);
    fields.push({
      name: `Skipped: ${existing.length} VM${existing.length === 1 ? ' already holds' : 's already hold'} the name`,
      value: fieldLines([first.join(', ')], existing.length - first.length),
    });
  }
  if (forbidden.length > 0) {
    const first = forbidden.slice(0, 10).map((entry) => `${escapeText(entry.vm)} @ ${escapeText(entry.host)}`);
    fields.push({
      name: `Skipped: ${forbidden.length} VM${forbidden.length === 1 ? '' : 's'} you may not act on`,
      value: fieldLines([first.join(', ')], forbidden.length - first.length),
    });
  }
  if (withoutMatch > 0) {
    fields.push({ name: 'No matching snapshot', value: `${withoutMatch} selected VM${withoutMatch === 1 ? ' holds' : 's hold'} no snapshot matching ${code(plan.name)}.` });
  }
  return fields;
}

// ---------------------------------------------------------------------------------------
// The preview

/**
 * The preview of a fleet run: what it would do where, what it leaves out and why,
 * whether approval is needed. `note` is the line shown once the preview was acted on.
 */
export function renderFleetPreview(plan: FleetPlan, now: number = Date.now(), note?: string): APIEmbed {
  const nothing = plan.targets.length === 0;
  const lines = [
    ...(note ? [note, ''] : []),
    nothing ? '**Nothing to do**: no VM matches what is left after the exclusions below.' : `${targetsSentence(plan)} — ${whatItDoes(plan)}`,
    `Target: ${code(plan.selector)}${plan.retryOf ? ` · retrying the failures of run ${code(plan.retryOf)}` : ''}`,
  ];
  if (!nothing) lines.push(perHostBlock(plan));
  return {
    title: clip(`${headline(plan)} — preview`, 256),
    color: nothing ? COLOR.neutral : plan.approval ? COLOR.warning : COLOR.progress,
    description: clip(lines.join('\n'), 4096),
    fields: [
      ...skippedFields(plan, now),
      ...(nothing ? [] : [{ name: 'Approval', value: approvalSentence(plan) }]),
      { name: 'Limits', value: limitsSentence(plan), inline: true },
      { name: 'Requested by', value: requesterText(plan), inline: true },
    ],
    footer: { text: `fleet run ${plainText(plan.id)} · only ${plainText(plan.requester.displayName)} can confirm · the preview lasts an hour` },
  };
}

/** Confirm and Cancel under a preview; none once it was acted on. */
export function fleetPreviewButtons(plan: FleetPlan): Buttons {
  return [
    new ActionRowBuilder<ButtonBuilder>()
      .addComponents(
        new ButtonBuilder()
          .setCustomId(fleetButtonId.build(plan.id, 'confirm'))
          .setLabel(plan.approval ? 'Confirm and ask for approval' : `Confirm (${plan.targets.length})`)
          .setStyle(ButtonStyle.Success)
          .setDisabled(plan.targets.length === 0),
        new ButtonBuilder().setCustomId(fleetButtonId.build(plan.id, 'cancel')).setLabel('Cancel').setStyle(ButtonStyle.Secondary),
      )
      .toJSON(),
  ];
}

export function fleetPreviewPayload(plan: FleetPlan, now: number = Date.now()): FleetMessagePayload {
  return { embeds: [renderFleetPreview(plan, now)], components: fleetPreviewButtons(plan) };
}

// ---------------------------------------------------------------------------------------
// The approval request

const REQUEST_STATUS: Partial<Record<FleetRun['status'], string>> = {
  pending: 'Waiting for approval',
  approved: 'Approved — starting',
  denied: 'Denied: nothing was done',
  expired: 'Expired: nothing was done',
  discarded: 'Withdrawn: nothing was done',
};

/** The approval request of a fleet run: who asks, what, where, why approval, the votes, the expiry. */
export function renderFleetApprovalRequest(run: FleetRun, outcome?: string, now: number = Date.now()): APIEmbed {
  const { plan } = run;
  const approval = plan.approval;
  const label = run.status === 'pending' ? 'needed' : run.status === 'discarded' ? 'withdrawn' : run.status;
  const closedBy = run.status === 'denied' && run.deniedBy ? ` (by <@${run.deniedBy}>)` : run.status === 'discarded' && run.cancelledBy ? ` (by ${actorText(run.cancelledBy)})` : '';
  const votes = approval
    ? `${run.approvals.length} of ${approval.required}${run.approvals.length ? `: ${run.approvals.map((id) => `<@${id}>`).join(', ')}` : ''} (approvers: ${approverText(approval.approvers)}${
        approval.allowSelfApproval ? '' : '; not the requester'
      })`
    : 'none needed';
  return {
    title: clip(`🔐 Approval ${label}: ${plan.action === 'snapshot' ? 'fleet snapshot' : 'fleet delete'} of ${plan.targets.length} target${plan.targets.length === 1 ? '' : 's'}`, 256),
    color: run.status === 'pending' ? COLOR.warning : run.status === 'approved' ? COLOR.progress : COLOR.neutral,
    description: clip(
      [outcome ?? `${REQUEST_STATUS[run.status] ?? run.status}${closedBy}.`, '', `${targetsSentence(plan)} — ${whatItDoes(plan)}`, `Target: ${code(plan.selector)}`, perHostBlock(plan)].join('\n'),
      4096,
    ),
    fields: [
      { name: 'Requested by', value: requesterText(plan), inline: true },
      { name: 'Why approval', value: approval ? escapeText(approval.reason) : '—', inline: true },
      ...skippedFields(plan, now),
      { name: 'Approvals', value: votes },
      ...(run.expiresAt ? [{ name: 'Expires', value: `<t:${unix(Date.parse(run.expiresAt))}:R> (${escapeText(run.expiresAt)})`, inline: true }] : []),
      { name: 'Fleet run', value: code(plan.id), inline: true },
    ],
  };
}

/** Approve / Deny, and Withdraw for the requester; all disabled once the request is closed. */
export function fleetApprovalButtons(run: FleetRun): Buttons {
  const closed = run.status !== 'pending';
  const id = run.plan.id;
  return [
    new ActionRowBuilder<ButtonBuilder>()
      .addComponents(
        new ButtonBuilder().setCustomId(approvalButtonId.build(id, 'approve')).setLabel('Approve').setStyle(ButtonStyle.Success).setDisabled(closed),
        new ButtonBuilder().setCustomId(approvalButtonId.build(id, 'deny')).setLabel('Deny').setStyle(ButtonStyle.Danger).setDisabled(closed),
        new ButtonBuilder().setCustomId(fleetButtonId.build(id, 'cancel')).setLabel('Withdraw').setStyle(ButtonStyle.Secondary).setDisabled(closed),
      )
      .toJSON(),
  ];
}

export function fleetApprovalPayload(run: FleetRun, outcome?: string): FleetMessagePayload {
  return { embeds: [renderFleetApprovalRequest(run, outcome)], components: fleetApprovalButtons(run) };
}
