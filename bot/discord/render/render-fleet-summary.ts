import { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle, type APIEmbed, type APIEmbedField } from 'discord.js';
import { isErrorCode } from '../../../shared/errors.js';
import { fleetOutcome, type FleetCountName, type FleetSummary, type FleetTargetView } from '../../core/fleet/index.js';
import { renderTable } from '../../core/text-table.js';
import { fleetButtonId } from '../buttons/ids.js';
import { COLOR } from './colors.js';
import { codeBlock, codeText, escapeText, inlineCode, plainText } from './escape.js';
import { actorText, clip, code, fieldLines, FIELD_LIMIT, headline, HOSTS_SHOWN, limitsSentence, requesterText, seconds, unix, whatItDoes, FAILURES_SHOWN, type Buttons, type FleetMessagePayload } from './fleet-text.js';

/** Up to this many targets are listed in the summary itself; longer runs attach the per-VM report. */
export const INLINE_TARGETS = 10;

// ---------------------------------------------------------------------------------------
// The live summary

const COUNT_ORDER: FleetCountName[] = ['done', 'failed', 'running', 'queued', 'cancelled', 'lost'];
const STATE_ICON: Record<FleetCountName, string> = { done: '✅', failed: '❌', running: '⚙️', queued: '⏳', cancelled: '🚫', lost: '📴' };

function isFinished(summary: FleetSummary): boolean {
  return summary.status === 'finished';
}

function summaryTitle(summary: FleetSummary): { title: string; color: number } {
  const what = headline(summary.plan);
  const { verdict } = fleetOutcome(summary);
  switch (verdict) {
    case 'cancelling':
      return { title: `🛑 ${what} · cancelling`, color: COLOR.warning };
    case 'starting':
      return { title: `⏳ ${what} · starting`, color: COLOR.progress };
    case 'running':
      return { title: `⚙️ ${what} · running`, color: COLOR.progress };
    case 'cancelled':
      return { title: `🛑 ${what} · cancelled`, color: summary.counts.failed > 0 ? COLOR.warning : COLOR.neutral };
    case 'done':
      return { title: `✅ ${what} · done`, color: COLOR.success };
    case 'failed':
      return { title: `❌ ${what} · failed`, color: COLOR.failure };
    case 'partial':
      return { title: `⚠️ ${what} · ${summary.counts.failed} failed`, color: COLOR.warning };
  }
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
    return `❌ **${escapeText(target.vm)}** @ ${escapeText(target.host)} — **${codeName}**: ${escapeText(clip(target.state.message.replace(/\s+/g, ' '), 140))}`;
  }
  return `📴 **${escapeText(target.vm)}** @ ${escapeText(target.host)} — host offline; not finished`;
}

function perHostSummaryBlock(summary: FleetSummary): string {
  const hosts = [...summary.hosts].sort((a, b) => b.counts.failed + b.counts.lost - (a.counts.failed + a.counts.lost) || a.hostId.localeCompare(b.hostId));
  const shown = hosts.slice(0, HOSTS_SHOWN);
  const table = renderTable(
    ['HOST', 'DONE', 'FAIL', 'RUN', 'QUEUE', 'CANCEL', 'LOST'],
    shown.map((host) => [
      `${codeText(host.hostId)}${host.online ? '' : ' (offline)'}`,
      String(host.counts.done),
      String(host.counts.failed),
      String(host.counts.running),
      String(host.counts.queued),
      String(host.counts.cancelled),
      String(host.counts.lost),
    ]),
  );
  const more = hosts.length > shown.length ? `\n… and ${hosts.length - shown.length} more hosts` : '';
  return `${codeBlock(table)}${more}`;
}

function targetLine(target: FleetTargetView): string {
  const bucket: FleetCountName = target.lost ? 'lost' : target.state.state;
  const tail = target.state.state === 'done' ? ` (${seconds(target.state.durationMs)})` : target.state.state === 'failed' ? ` — ${escapeText(target.state.code)}` : '';
  return `${STATE_ICON[bucket]} ${escapeText(target.vm)} @ ${escapeText(target.host)}${tail}`;
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
    fields.push({ name: 'Report', value: `Every VM's result is in the attached file ${inlineCode(reportFileName(summary))}.` });
  }
  if (summary.cancelledBy) fields.push({ name: 'Cancelled by', value: actorText(summary.cancelledBy), inline: true });
  fields.push({ name: 'Requested by', value: requesterText(plan), inline: true });
  if (plan.retryOf) fields.push({ name: 'Retry of', value: code(plan.retryOf), inline: true });
  return {
    title: clip(title, 256),
    color,
    description: clip(description, 4096),
    fields,
    footer: { text: `fleet run ${plainText(summary.runId)} · ${limitsSentence(plan)}` },
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

/**
 * The report file stays under this many bytes: Discord's default upload limit is 10 MiB
 * per file, and a run of thousands of VMs with long names and virsh messages passes it.
 */
export const REPORT_MAX_BYTES = 8 * 1024 * 1024;

/**
 * Every target of a run, one line each, failures first: attached to the final summary of
 * a long run. Past `maxBytes` the last lines give way to one that says how many are missing.
 */
export function renderFleetReport(summary: FleetSummary, maxBytes: number = REPORT_MAX_BYTES): string {
  const { plan, counts } = summary;
  const ordered = [...summary.targets].sort((a, b) => stateRank(a) - stateRank(b) || a.host.localeCompare(b.host) || a.vm.localeCompare(b.vm));
  const rows = ordered.map((target) => {
    const state = target.lost ? 'lost' : target.state.state;
    const duration = target.state.state === 'done' ? seconds(target.state.durationMs) : '-';
    const failure = target.state.state === 'failed' ? target.state : null;
    const detail = failure ? `${failure.code}: ${failure.message.replace(/\s+/g, ' ')}` : target.state.state === 'done' ? (target.state.note ?? '') : '';
    return [state, plainText(target.host), plainText(target.vm), plainText(target.snapshot), duration, plainText(detail)];
  });
  const header = [
    plainText(`Fleet run ${summary.runId}: ${plan.action} ${plan.name} (${plan.mode ?? '-'}) on '${plan.selector}'`),
    plainText(`Requested by ${plan.requester.displayName} (${plan.requester.id})${summary.cancelledBy ? `; cancelled by ${summary.cancelledBy}` : ''}`),
    `Status ${summary.status}; ${summary.startedAt ? `started ${new Date(summary.startedAt).toISOString()}, ` : ''}took ${seconds(summary.durationMs)}`,
    `${summary.total} targets: ${COUNT_ORDER.map((name) => `${counts[name]} ${name}`).join(', ')}`,
  ];
  const lines = renderTable(['STATE', 'HOST', 'VM', 'SNAPSHOT', 'DURATION', 'DETAIL'], rows).split('\n');
  const head = `${header.join('\n')}\n\n`;
  // Discord refuses a message whose file passes the upload limit (413), and with it the
  // final summary: keep whole lines (failures come first) and say what was left out.
  let bytes = Buffer.byteLength(head) + 1024;
  let kept = 0;
  for (const line of lines) {
    const next = bytes + Buffer.byteLength(line) + 1;
    if (next > maxBytes) break;
    bytes = next;
    kept += 1;
  }
  if (kept === lines.length) return `${head}${lines.join('\n')}\n`;
  const left = lines.length - kept;
  const note = `… ${left} more target${left === 1 ? '' : 's'} not in this file (Discord's upload limit); \`snapctl fleet status ${summary.runId}\` shows every one.`;
  return `${head}${lines.slice(0, kept).join('\n')}\n${note}\n`;
}

/** Cancel while the run goes on; "Retry failed" once it is over and something failed. */
export function fleetSummaryButtons(summary: FleetSummary): Buttons {
  if (!isFinished(summary)) {
    return [
      new ActionRowBuilder<ButtonBuilder>()
        .addComponents(
          new ButtonBuilder()
            .setCustomId(fleetButtonId.build(summary.runId, 'cancel'))
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
        new ButtonBuilder().setCustomId(fleetButtonId.build(summary.runId, 'retry')).setLabel(`Retry failed (${summary.counts.failed})`).setStyle(ButtonStyle.Primary),
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
