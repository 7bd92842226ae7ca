import {
  ActionRowBuilder,
  AttachmentBuilder,
  ButtonBuilder,
  ButtonStyle,
  type APIActionRowComponent,
  type APIButtonComponent,
  type APIEmbed,
  type APIEmbedField,
} from 'discord.js';
import { isErrorCode } from '../../../shared/errors.js';
import { previewByHost, type FleetCountName, type FleetListRow, type FleetPlan, type FleetRun, type FleetSummary, type FleetTargetView } from '../../core/fleet.js';
import { renderTable } from '../../core/text-table.js';
import { COLOR } from './colors.js';

/** `fleet:<runId>:confirm|cancel|retry`: previews, summaries and approval requests (Withdraw). */
export const FLEET_BUTTON_PREFIX = 'fleet';
/** `fleet-approval:<runId>:approve|deny`. */
export const FLEET_APPROVAL_PREFIX = 'fleet-approval';
/** `fleet-list:<listId>:<page>`. */
export const FLEET_LIST_PREFIX = 'fleet-list';

/** Up to this many targets are listed in the summary itself; longer runs attach the per-VM report. */
export const INLINE_TARGETS = 10;
const FAILURES_SHOWN = 8;
const HOSTS_SHOWN = 15;
/** Rows of /fleet list per page: keeps the code block far below the embed limit. */
export const FLEET_LIST_ROWS_PER_PAGE = 20;
const FIELD_LIMIT = 1024;

type Buttons = APIActionRowComponent<APIButtonComponent>[];

/** What one fleet message shows; `files` only on the final summary of a long run. */
export interface FleetMessagePayload {
  content?: string;
  embeds: APIEmbed[];
  components: Buttons;
  files?: AttachmentBuilder[];
}

function unix(ms: number): number {
  return Math.floor(ms / 1000);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Inline code that survives backticks in VM or snapshot names. */
function code(text: string): string {
  return `\`${text.replace(/`/g, "'")}\``;
}

/** Lines joined under a field's 1,024-character limit, with "… and N more" when cut. */
function fieldLines(lines: string[], more = 0): string {
  const kept: string[] = [];
  let length = 0;
  for (const [index, line] of lines.entries()) {
    const rest = lines.length - index + more;
    const tail = `… and ${rest} more`;
    if (length + line.length + 1 + (index < lines.length - 1 || more > 0 ? tail.length + 1 : 0) > FIELD_LIMIT) {
      kept.push(tail);
      return kept.join('\n');
    }
    kept.push(line);
    length += line.length + 1;
  }
  if (more > 0) kept.push(`… and ${more} more`);
  return kept.join('\n');
}

function requesterText(plan: FleetPlan): string {
  return plan.requester.userId ? `<@${plan.requester.userId}>` : plan.requester.displayName || plan.requester.id;
}

/** "snapshot `pre-rollout-{date}` (disk-only)" or "delete snapshots matching `pre-*`". */
function whatItDoes(plan: FleetPlan): string {
  if (plan.action === 'delete') return `delete snapshots matching ${code(plan.name)}`;
  const example = plan.targets[0]?.snapshot;
  const rendered = example && example !== plan.name ? ` (e.g. ${code(example)})` : '';
  return `snapshot ${code(plan.name)}${rendered}, ${plan.mode ?? 'disk-only'}`;
}

function headline(plan: FleetPlan): string {
  return plan.action === 'snapshot' ? `Fleet snapshot · ${plan.name}` : `Fleet delete · ${plan.name}`;
}

function hostCount(plan: FleetPlan): number {
  return new Set(plan.targets.map((target) => target.host)).size;
}

function targetsSentence(plan: FleetPlan): string {
  const unit = plan.action === 'snapshot' ? 'VM' : 'snapshot';
  const count = plan.targets.length;
  return `**${count} ${unit}${count === 1 ? '' : 's'} on ${hostCount(plan)} host${hostCount(plan) === 1 ? '' : 's'}**`;
}

function perHostBlock(plan: FleetPlan): string {
  const byHost = previewByHost(plan, 4);
  const shown = byHost.slice(0, HOSTS_SHOWN);
  const table = renderTable(
    ['HOST', plan.action === 'snapshot' ? 'VMS' : 'SNAPSHOTS', 'FIRST'],
    shown.map((host) => [host.hostId, String(host.count), clip(host.first.join(', ') + (host.count > host.first.length ? ', …' : ''), 48)]),
  );
  const more = byHost.length > shown.length ? `\n… and ${byHost.length - shown.length} more hosts` : '';
  return `\`\`\`\n${table.replace(/`/g, "'")}\n\`\`\`${more}`;
}

function approvalSentence(plan: FleetPlan): string {
  const { approval } = plan;
  if (!approval) return 'Not needed: the run starts when you confirm.';
  const who = `${approval.required} approval${approval.required === 1 ? '' : 's'} from ${approval.approvers.join(', ')}${approval.allowSelfApproval ? '' : ', not the requester'}`;
  return `**Needed** (${approval.reason}): ${who}, within ${approval.ttlMinutes} min of confirming.`;
}

function limitsSentence(plan: { perHost: number; maxConcurrent: number }): string {
  return `${plan.perHost || 'the worker’s own limit'} per host, ${plan.maxConcurrent || 'no limit'} at once across the fleet`;
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
          const when = Number.isNaN(seen) ? host.lastSeen : `<t:${unix(Math.min(seen, now))}:R>`;
          return `📴 **${host.hostId}** — last seen ${when}; ${host.vms} VM${host.vms === 1 ? '' : 's'} not included`;
        }),
      ),
    });
  }
  if (existing.length > 0) {
    const first = existing.slice(0, 10).map((entry) => `${entry.vm} @ ${entry.host}`);
    fields.push({
      name: `Skipped: ${existing.length} VM${existing.length === 1 ? ' already holds' : 's already hold'} the name`,
      value: fieldLines([first.join(', ')], existing.length - first.length),
    });
  }
  if (forbidden.length > 0) {
    const first = forbidden.slice(0, 10).map((entry) => `${entry.vm} @ ${entry.host}`);
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
    footer: { text: `fleet run ${plan.id} · only ${plan.requester.displayName} can confirm · the preview lasts an hour` },
  };
}

/** Confirm and Cancel under a preview; none once it was acted on. */
export function fleetPreviewButtons(plan: FleetPlan): Buttons {
  return [
    new ActionRowBuilder<ButtonBuilder>()
      .addComponents(
        new ButtonBuilder()
          .setCustomId(`${FLEET_BUTTON_PREFIX}:${plan.id}:confirm`)
          .setLabel(plan.approval ? 'Confirm and ask for approval' : `Confirm (${plan.targets.length})`)
          .setStyle(ButtonStyle.Success)
          .setDisabled(plan.targets.length === 0),
        new ButtonBuilder().setCustomId(`${FLEET_BUTTON_PREFIX}:${plan.id}:cancel`).setLabel('Cancel').setStyle(ButtonStyle.Secondary),
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
  const closedBy = run.status === 'denied' && run.deniedBy ? ` (by <@${run.deniedBy}>)` : run.status === 'discarded' && run.cancelledBy ? ` (by ${run.cancelledBy.replace(/^discord:(\d+)$/, '<@$1>')})` : '';
  const votes = approval
    ? `${run.approvals.length} of ${approval.required}${run.approvals.length ? `: ${run.approvals.map((id) => `<@${id}>`).join(', ')}` : ''} (approvers: ${approval.approvers.join(', ')}${
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
      { name: 'Why approval', value: approval?.reason ?? '—', inline: true },
      ...skippedFields(plan, now),
      { name: 'Approvals', value: votes },
      ...(run.expiresAt ? [{ name: 'Expires', value: `<t:${unix(Date.parse(run.expiresAt))}:R> (${run.expiresAt})`, inline: true }] : []),
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
        new ButtonBuilder().setCustomId(`${FLEET_APPROVAL_PREFIX}:${id}:approve`).setLabel('Approve').setStyle(ButtonStyle.Success).setDisabled(closed),
        new ButtonBuilder().setCustomId(`${FLEET_APPROVAL_PREFIX}:${id}:deny`).setLabel('Deny').setStyle(ButtonStyle.Danger).setDisabled(closed),
        new ButtonBuilder().setCustomId(`${FLEET_BUTTON_PREFIX}:${id}:cancel`).setLabel('Withdraw').setStyle(ButtonStyle.Secondary).setDisabled(closed),
      )
      .toJSON(),
  ];
}

export function fleetApprovalPayload(run: FleetRun, outcome?: string): FleetMessagePayload {
  return { embeds: [renderFleetApprovalRequest(run, outcome)], components: fleetApprovalButtons(run) };
}

// ---------------------------------------------------------------------------------------
// The live summary

const COUNT_ORDER: FleetCountName[] = ['done', 'failed', 'running', 'queued', 'cancelled', 'lost'];
const STATE_ICON: Record<FleetCountName, string> = { done: '✅', failed: '❌', running: '⚙️', queued: '⏳', cancelled: '🚫', lost: '📴' };

function isFinished(summary: FleetSummary): boolean {
  return summary.status === 'finished';
}

function summaryTitle(summary: FleetSummary): { title: string; color: number } {
  const { counts } = summary;
  const what = headline(summary.plan);
  if (!isFinished(summary)) {
    if (summary.status === 'cancelling') return { title: `🛑 ${what} · cancelling`, color: COLOR.warning };
    if (summary.status === 'approved') return { title: `⏳ ${what} · starting`, color: COLOR.progress };
    return { title: `⚙️ ${what} · running`, color: COLOR.progress };
  }
  if (summary.cancelledBy) return { title: `🛑 ${what} · cancelled`, color: counts.failed > 0 ? COLOR.warning : COLOR.neutral };
  if (counts.failed === 0 && counts.done === summary.total) return { title: `✅ ${what} · done`, color: COLOR.success };
  if (counts.done === 0) return { title: `❌ ${what} · failed`, color: COLOR.failure };
  return { title: `⚠️ ${what} · ${counts.failed} failed`, color: COLOR.warning };
}

function progressBar(done: number, total: number): string {
  const width = 20;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `${'▰'.repeat(filled)}${'▱'.repeat(width - filled)} ${total === 0 ? 100 : Math.floor((done / total) * 100)}%`;
}

function countsLine(summary: FleetSummary): string {
  const { counts } = summary;
  const parts = COUNT_ORDER.filter((name) => name === 'done' || counts[name] > 0).map((name) =>
    name === 'done' ? `**${counts.done}/${summary.total} done**` : `${counts[name]} ${name === 'lost' ? 'on offline hosts' : name}`,
  );
  return parts.join(' · ');
}

function timingLine(summary: FleetSummary): string {
  if (isFinished(summary)) return `Took ${seconds(summary.durationMs)}${summary.startedAt ? ` (started <t:${unix(summary.startedAt)}:f>)` : ''}.`;
  if (summary.startedAt) return `Started <t:${unix(summary.startedAt)}:R> · ${seconds(summary.durationMs)} so far.`;
  return 'Starting…';
}

function failureLine(target: FleetTargetView): string {
  if (target.state.state === 'failed') {
    const codeName = isErrorCode(target.state.code) ? target.state.code : 'INTERNAL';
    return `❌ **${target.vm}** @ ${target.host} — **${codeName}**: ${clip(target.state.message.replace(/\s+/g, ' '), 140)}`;
  }
  return `📴 **${target.vm}** @ ${target.host} — host offline; not finished`;
}

function perHostSummaryBlock(summary: FleetSummary): string {
  const hosts = [...summary.hosts].sort((a, b) => b.counts.failed + b.counts.lost - (a.counts.failed + a.counts.lost) || a.hostId.localeCompare(b.hostId));
  const shown = hosts.slice(0, HOSTS_SHOWN);
  const table = renderTable(
    ['HOST', 'DONE', 'FAIL', 'RUN', 'QUEUE', 'CANCEL', 'LOST'],
    shown.map((host) => [
      `${host.hostId}${host.online ? '' : ' (offline)'}`,
      String(host.counts.done),
      String(host.counts.failed),
      String(host.counts.running),
      String(host.counts.queued),
      String(host.counts.cancelled),
      String(host.counts.lost),
    ]),
  );
  const more = hosts.length > shown.length ? `\n… and ${hosts.length - shown.length} more hosts` : '';
  return `\`\`\`\n${table}\n\`\`\`${more}`;
}

function targetLine(target: FleetTargetView): string {
  const bucket: FleetCountName = target.lost ? 'lost' : target.state.state;
  const tail = target.state.state === 'done' ? ` (${seconds(target.state.durationMs)})` : target.state.state === 'failed' ? ` — ${target.state.code}` : '';
  return `${STATE_ICON[bucket]} ${target.vm} @ ${target.host}${tail}`;
}

/** The summary embed of a run, live or final: counts overall and per host, failures first with their codes, timing. */
export function renderFleetSummary(summary: FleetSummary): APIEmbed {
  const { title, color } = summaryTitle(summary);
  const { plan } = summary;
  const description = [
    countsLine(summary),
    progressBar(summary.counts.done + summary.counts.failed + summary.counts.cancelled, summary.total),
    timingLine(summary),
    `${whatItDoes(plan).replace(/^./, (first) => first.toUpperCase())} · target ${code(plan.selector)}`,
    perHostSummaryBlock(summary),
  ].join('\n');
  const fields: APIEmbedField[] = [];
  if (summary.failures.length > 0) {
    const shown = summary.failures.slice(0, FAILURES_SHOWN);
    fields.push({ name: `Failures (${summary.failures.length})`, value: fieldLines(shown.map(failureLine), summary.failures.length - shown.length) });
  }
  if (summary.total <= INLINE_TARGETS) {
    const ordered = [...summary.targets].sort((a, b) => stateRank(a) - stateRank(b) || a.host.localeCompare(b.host) || a.vm.localeCompare(b.vm));
    fields.push({ name: 'VMs', value: fieldLines(ordered.map(targetLine)) });
  } else if (isFinished(summary)) {
    fields.push({ name: 'Report', value: `Every VM's result is in the attached file \`${reportFileName(summary)}\`.` });
  }
  if (summary.cancelledBy) fields.push({ name: 'Cancelled by', value: summary.cancelledBy.replace(/^discord:(\d+)$/, '<@$1>'), inline: true });
  fields.push({ name: 'Requested by', value: requesterText(plan), inline: true });
  if (plan.retryOf) fields.push({ name: 'Retry of', value: code(plan.retryOf), inline: true });
  return {
    title: clip(title, 256),
    color,
    description: clip(description, 4096),
    fields,
    footer: { text: `fleet run ${summary.runId} · ${limitsSentence(plan)}` },
  };
}

/** Failed first, then lost, running, queued, cancelled, done: what needs eyes comes first. */
function stateRank(target: FleetTargetView): number {
  if (target.lost) return 1;
  return { failed: 0, running: 2, queued: 3, cancelled: 4, done: 5 }[target.state.state];
}

export function reportFileName(summary: FleetSummary): string {
  return `fleet-${summary.runId}.txt`;
}

/** Every target of a run, one line each, failures first: attached to the final summary of a long run. */
export function renderFleetReport(summary: FleetSummary): string {
  const { plan, counts } = summary;
  const ordered = [...summary.targets].sort((a, b) => stateRank(a) - stateRank(b) || a.host.localeCompare(b.host) || a.vm.localeCompare(b.vm));
  const rows = ordered.map((target) => {
    const state = target.lost ? 'lost' : target.state.state;
    const duration = target.state.state === 'done' ? seconds(target.state.durationMs) : '-';
    const failure = target.state.state === 'failed' ? target.state : null;
    const detail = failure ? `${failure.code}: ${failure.message.replace(/\s+/g, ' ')}` : target.state.state === 'done' ? (target.state.note ?? '') : '';
    return [state, target.host, target.vm, target.snapshot, duration, detail];
  });
  const header = [
    `Fleet run ${summary.runId}: ${plan.action} ${plan.name} (${plan.mode ?? '-'}) on '${plan.selector}'`,
    `Requested by ${plan.requester.displayName} (${plan.requester.id})${summary.cancelledBy ? `; cancelled by ${summary.cancelledBy}` : ''}`,
    `Status ${summary.status}; ${summary.startedAt ? `started ${new Date(summary.startedAt).toISOString()}, ` : ''}took ${seconds(summary.durationMs)}`,
    `${summary.total} targets: ${COUNT_ORDER.map((name) => `${counts[name]} ${name}`).join(', ')}`,
  ];
  return `${header.join('\n')}\n\n${renderTable(['STATE', 'HOST', 'VM', 'SNAPSHOT', 'DURATION', 'DETAIL'], rows)}\n`;
}

/** Cancel while the run goes on; "Retry failed" once it is over and something failed. */
export function fleetSummaryButtons(summary: FleetSummary): Buttons {
  if (!isFinished(summary)) {
    return [
      new ActionRowBuilder<ButtonBuilder>()
        .addComponents(
          new ButtonBuilder()
            .setCustomId(`${FLEET_BUTTON_PREFIX}:${summary.runId}:cancel`)
            .setLabel(summary.status === 'cancelling' ? 'Cancelling…' : 'Cancel the rest')
            .setStyle(ButtonStyle.Danger)
            .setDisabled(summary.status === 'cancelling'),
        )
        .toJSON(),
    ];
  }
  if (summary.counts.failed === 0) return [];
  return [
    new ActionRowBuilder<ButtonBuilder>()
      .addComponents(
        new ButtonBuilder().setCustomId(`${FLEET_BUTTON_PREFIX}:${summary.runId}:retry`).setLabel(`Retry failed (${summary.counts.failed})`).setStyle(ButtonStyle.Primary),
      )
      .toJSON(),
  ];
}

/**
 * The summary message: the embed, its buttons, and on the final summary of a run longer
 * than the embed lists, the per-VM report as a file.
 */
export function fleetSummaryPayload(summary: FleetSummary, extraEmbeds: APIEmbed[] = []): FleetMessagePayload {
  const payload: FleetMessagePayload = { embeds: [...extraEmbeds, renderFleetSummary(summary)], components: fleetSummaryButtons(summary) };
  if (isFinished(summary) && summary.total > INLINE_TARGETS) {
    payload.files = [new AttachmentBuilder(Buffer.from(renderFleetReport(summary)), { name: reportFileName(summary) })];
  }
  return payload;
}

// ---------------------------------------------------------------------------------------
// /fleet list

export function fleetListPageCount(rows: number): number {
  return Math.max(1, Math.ceil(rows / FLEET_LIST_ROWS_PER_PAGE));
}

function snapshotsCell(snapshots: string[], width = 60): string {
  if (snapshots.length === 0) return '-';
  let text = '';
  for (const [index, name] of snapshots.entries()) {
    const next = text ? `${text}, ${name}` : name;
    const rest = snapshots.length - index - 1;
    if (next.length > width - (rest > 0 ? 8 : 0)) return `${text || clip(name, width - 8)} (+${snapshots.length - (text ? index : index + 1)})`;
    text = next;
  }
  return text;
}

/** One page of /fleet list: which VMs hold which snapshots, as a monospaced table. */
export function renderFleetListPage(rows: FleetListRow[], query: { target: string; name?: string | undefined }, page: number): APIEmbed {
  const pages = fleetListPageCount(rows.length);
  const index = Math.min(Math.max(page, 0), pages - 1);
  const slice = rows.slice(index * FLEET_LIST_ROWS_PER_PAGE, (index + 1) * FLEET_LIST_ROWS_PER_PAGE);
  const table =
    slice.length === 0
      ? 'no matching VMs'
      : renderTable(
          ['VM', 'HOST', 'SNAPSHOTS'],
          slice.map((row) => [clip(row.vm, 32), `${clip(row.host, 20)}${row.online ? '' : ' (offline)'}`, snapshotsCell(row.snapshots)]),
        );
  const hosts = new Set(rows.map((row) => row.host)).size;
  const holding = rows.filter((row) => row.snapshots.length > 0).length;
  return {
    title: clip(`Fleet snapshots · ${query.target}${query.name ? ` · ${query.name}` : ''}`, 256),
    color: COLOR.neutral,
    description: clip(`\`\`\`\n${table.replace(/`/g, "'")}\n\`\`\``, 4096),
    footer: {
      text: `${rows.length} VM(s) on ${hosts} host(s), ${holding} with ${query.name ? 'matching ' : ''}snapshots${pages > 1 ? ` · page ${index + 1}/${pages}` : ''}`,
    },
  };
}

/** The whole listing as text, attached when it does not fit on one page. */
export function renderFleetListFile(rows: FleetListRow[]): string {
  return `${renderTable(
    ['VM', 'HOST', 'ONLINE', 'STATE', 'SNAPSHOTS'],
    rows.map((row) => [row.vm, row.host, row.online ? 'yes' : 'no', row.state, row.snapshots.join(', ') || '-']),
  )}\n`;
}
