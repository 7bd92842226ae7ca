import type { APIEmbed, APIEmbedField } from 'discord.js';
import { describeCadence } from '../../../shared/schedules/cadence.js';
import type { ScheduleFiring } from '../../../shared/schedules/definition.js';
import { formatKeepSpec } from '../../../shared/schedules/keep-spec.js';
import type { FiringToPost, ScheduleRecord } from '../../core/schedules/store.js';
import type { ReplyPayload } from '../reply-payload.js';
import { COLOR } from './colors.js';
import { clipText, DISCORD_LIMITS } from './discord-limits.js';
import { escapeText, inlineCode, plainText, requesterText } from './escape.js';
import { fieldLines } from './fleet-text.js';

/**
 * Schedules in Discord: the firing post (one message per finished firing, failures
 * first), `/schedule show` and `/schedule list`, and the failing-schedules line of
 * `/hosts`. Names are schedule names (lowercase, digits, '-'), but targets, VMs, hosts,
 * messages and descriptions come from people and hosts: escaped.
 */

/** A failure or retention line is cut here, so one long virsh message cannot crowd out the others. */
const LINE_LIMIT = 200;
/** `/schedule list` shows this many schedules; snapctl lists every one. */
const LIST_SHOWN = 25;

function oneLine(text: string, limit = LINE_LIMIT): string {
  return clipText(text.replace(/\s+/g, ' ').trim(), limit);
}

function unix(iso: string): number | null {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

/** `<t:…:f>` (each reader's own zone and locale), or the text as it is when it is no date. */
function when(iso: string, style: 'f' | 'R' = 'f'): string {
  const seconds = unix(iso);
  return seconds === null ? escapeText(iso) : `<t:${seconds}:${style}>`;
}

/** `2026-11-30 02:30 UTC` (seconds only when the slot has them): titles show no `<t:…>` tags. */
export function slotText(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return plainText(iso);
  const text = date.toISOString();
  const seconds = text.slice(17, 19);
  return `${text.slice(0, 10)} ${text.slice(11, 16)}${seconds === '00' ? '' : `:${seconds}`} UTC`;
}

function times(count: number): string {
  return count === 1 ? 'once' : `${count} times`;
}

/** The loud line of a schedule whose firings keep failing. */
export function failingLine(failedInARow: number): string {
  return `🚨 **Failed ${times(failedInARow)} in a row.**`;
}

const OUTCOME: Record<ScheduleFiring['outcome'], { icon: string; suffix: string; color: number }> = {
  ok: { icon: '✅', suffix: '', color: COLOR.success },
  partial: { icon: '⚠️', suffix: ' · partial', color: COLOR.warning },
  failed: { icon: '❌', suffix: ' · failed', color: COLOR.failure },
  nothing: { icon: '➖', suffix: ' · nothing to do', color: COLOR.neutral },
};

function countsLine(firing: ScheduleFiring): string {
  const { done, failed, skipped } = firing.counts;
  return `**${done} taken** · ${failed} failed · ${skipped} skipped`;
}

function retentionLine(firing: ScheduleFiring): string {
  const left = firing.retentionSkipped.length;
  return `Retention: pruned ${firing.pruned}, kept ${firing.kept}${left > 0 ? `, left ${left} (below)` : ''}`;
}

function failureLine(failure: ScheduleFiring['failures'][number]): string {
  return `❌ **${escapeText(failure.vm)}** @ ${escapeText(failure.host)}: **${escapeText(failure.code)}**: ${escapeText(oneLine(failure.message))}`;
}

function leftLine(skipped: ScheduleFiring['retentionSkipped'][number]): string {
  return `${escapeText(skipped.name)} on **${escapeText(skipped.vm)}** @ ${escapeText(skipped.host)}: ${escapeText(oneLine(skipped.reason))}`;
}

/** A Discord user id the owner can be mentioned by, or null (a snapctl operator not linked to Discord). */
function mentionable(owner: FiringToPost['owner']): string | null {
  return owner.userId && /^\d{15,21}$/.test(owner.userId) ? owner.userId : null;
}

/**
 * The message a finished firing posts: its outcome and slot in the title, the loud
 * "failed N times in a row" line, the counts and retention, then the failures (first,
 * since they need eyes) and what retention left alone. With failures, the schedule's
 * owner is mentioned, and only they are pinged.
 */
export function renderFiringPost(entry: FiringToPost): ReplyPayload {
  const { firing, name } = entry;
  const outcome = OUTCOME[firing.outcome];
  const loud = entry.failedInARow > 1;
  const description = [
    ...(loud ? [failingLine(entry.failedInARow)] : []),
    firing.outcome === 'nothing' ? 'Nothing to snapshot: the target matched no VM that could take one.' : countsLine(firing),
    retentionLine(firing),
  ].join('\n');
  const fields: APIEmbedField[] = [];
  if (firing.failures.length > 0) fields.push({ name: `Failures (${firing.failures.length})`, value: fieldLines(firing.failures.map(failureLine)) });
  if (firing.retentionSkipped.length > 0) fields.push({ name: `Left by retention (${firing.retentionSkipped.length})`, value: fieldLines(firing.retentionSkipped.map(leftLine)) });
  const embed: APIEmbed = {
    title: clipText(`${outcome.icon} Schedule ${escapeText(name)} · ${slotText(firing.slot)}${outcome.suffix}`, DISCORD_LIMITS.embedTitle),
    color: loud ? COLOR.failure : outcome.color,
    description,
    fields,
    footer: { text: `fleet run ${plainText(firing.runId)} · finished ${slotText(firing.finishedAt)}` },
  };
  const owner = mentionable(entry.owner);
  if (firing.failures.length > 0 && owner) {
    return { content: `<@${owner}> your schedule **${escapeText(name)}** ${loud ? `failed ${times(entry.failedInARow)} in a row` : 'had failures'}.`, embeds: [embed], allowedMentions: { users: [owner] } };
  }
  return { embeds: [embed] };
}

function statusText(record: ScheduleRecord): string {
  return record.status === 'pending' ? 'waiting for approval' : record.status;
}

function statusColor(record: ScheduleRecord): number {
  if (record.failedInARow > 1) return COLOR.failure;
  if (record.status === 'active') return COLOR.success;
  return record.status === 'pending' ? COLOR.warning : COLOR.neutral;
}

function lastFiringText(firing: ScheduleFiring): string {
  const outcome = OUTCOME[firing.outcome];
  return `${outcome.icon} ${firing.outcome} — slot ${when(firing.slot)}: ${firing.counts.done} taken, ${firing.counts.failed} failed, ${firing.counts.skipped} skipped; pruned ${firing.pruned}, kept ${firing.kept}`;
}

/**
 * One schedule, for `/schedule show` and the answer to `/schedule create`: what it
 * snapshots, when, what it keeps, where it posts, its next firings and its last one.
 * `note` (the bot's own markdown) goes first.
 */
export function renderScheduleEmbed(record: ScheduleRecord, next: readonly string[], note?: string): APIEmbed {
  const { definition } = record;
  const description = [
    ...(note ? [note] : []),
    ...(record.failedInARow > 1 ? [failingLine(record.failedInARow)] : []),
    ...(definition.description ? [`“${escapeText(oneLine(definition.description, 300))}”`] : []),
  ].join('\n');
  const fields: APIEmbedField[] = [
    { name: 'Target', value: inlineCode(definition.target) },
    { name: 'Cadence', value: inlineCode(describeCadence(definition.cadence)), inline: true },
    { name: 'Keep', value: inlineCode(formatKeepSpec(definition.keep)), inline: true },
    { name: 'Mode', value: definition.mode, inline: true },
    { name: 'Snapshot names', value: inlineCode(`${definition.prefix}-YYYYMMDD-HHMMSS`), inline: true },
    { name: 'Owner', value: requesterText(definition.owner), inline: true },
    { name: 'Posts in', value: definition.channelId ? `<#${definition.channelId}>` : 'the bot’s channel', inline: true },
  ];
  if (next.length > 0) fields.push({ name: 'Next firings', value: next.map((iso) => when(iso)).join('\n') });
  if (record.lastFiring) {
    const failures = record.lastFiring.failures.map(failureLine);
    fields.push({ name: 'Last firing', value: fieldLines([lastFiringText(record.lastFiring), ...failures]) });
  }
  if (record.status === 'pending' && record.approvalId) fields.push({ name: 'Approval request', value: inlineCode(record.approvalId), inline: true });
  return {
    title: clipText(`📅 Schedule ${escapeText(definition.name)} · ${statusText(record)}`, DISCORD_LIMITS.embedTitle),
    color: statusColor(record),
    ...(description ? { description } : {}),
    fields,
    footer: { text: `created ${slotText(definition.createdAt)} · version ${definition.version}` },
  };
}

function listLine(record: ScheduleRecord): string {
  const { definition } = record;
  const last = record.lastFiring ? ` · last ${OUTCOME[record.lastFiring.outcome].icon} ${when(record.lastFiring.slot, 'R')}` : '';
  const failing = record.failedInARow > 1 ? ` · 🚨 failed ${times(record.failedInARow)} in a row` : '';
  return `**${escapeText(definition.name)}** — ${statusText(record)} · ${inlineCode(describeCadence(definition.cadence))} · keep ${inlineCode(formatKeepSpec(definition.keep))} · ${inlineCode(oneLine(definition.target, 100))}${last}${failing}`;
}

/** Every schedule, one line each (failing ones first), for `/schedule list`. */
export function renderScheduleList(records: readonly ScheduleRecord[]): APIEmbed {
  if (records.length === 0) {
    return { title: 'Schedules', color: COLOR.neutral, description: 'No schedules. Create one with `/schedule create`.' };
  }
  const ordered = [...records].sort((a, b) => Number(b.failedInARow > 1) - Number(a.failedInARow > 1) || a.definition.name.localeCompare(b.definition.name));
  const shown = ordered.slice(0, LIST_SHOWN);
  const lines: string[] = [];
  let length = 0;
  for (const line of shown.map(listLine)) {
    // Room for the closing line that says how many are left out.
    if (length + line.length + 1 > DISCORD_LIMITS.embedDescription - 80) break;
    lines.push(line);
    length += line.length + 1;
  }
  const left = records.length - lines.length;
  if (left > 0) lines.push(`… and ${left} more (\`snapctl schedule list\` shows every one)`);
  const failing = records.filter((record) => record.failedInARow > 1).length;
  return {
    title: `Schedules (${records.length})`,
    color: failing > 0 ? COLOR.failure : COLOR.neutral,
    description: lines.join('\n'),
    footer: { text: `${records.filter((record) => record.status === 'active').length} active${failing > 0 ? ` · ${failing} failing` : ''}` },
  };
}

/** A schedule that failed at least twice in a row, as `/hosts` lists it. */
export interface FailingSchedule {
  name: string;
  status: ScheduleRecord['status'];
  failedInARow: number;
  lastSlot: string | null;
}

/** The schedules `/hosts` warns about: failed at least twice in a row. */
export function failingSchedules(records: readonly ScheduleRecord[]): FailingSchedule[] {
  return records
    .filter((record) => record.failedInARow > 1)
    .sort((a, b) => b.failedInARow - a.failedInARow || a.definition.name.localeCompare(b.definition.name))
    .map((record) => ({ name: record.definition.name, status: record.status, failedInARow: record.failedInARow, lastSlot: record.lastFiring?.slot ?? null }));
}

/** The `/hosts` field for failing schedules, or null when none fails. */
export function failingSchedulesField(schedules: readonly FailingSchedule[]): APIEmbedField | null {
  if (schedules.length === 0) return null;
  const lines = schedules.map(
    (schedule) =>
      `🚨 **${escapeText(schedule.name)}** failed ${times(schedule.failedInARow)} in a row${schedule.lastSlot ? `, last ${when(schedule.lastSlot, 'R')}` : ''}${schedule.status === 'active' ? '' : ` (${schedule.status})`}`,
  );
  return { name: `Failing schedules (${schedules.length})`, value: fieldLines(lines) };
}
