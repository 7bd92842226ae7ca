import { AttachmentBuilder, type APIEmbed } from 'discord.js';
import type { HostOverview } from '../../../shared/hosts.js';
import type { HostsOverview, HostsSummary } from '../../core/hosts.js';
import { renderTable } from '../../core/text-table.js';
import { COLOR } from './colors.js';
import { codeBlock, codeText, escapeText, plainText } from './escape.js';
import { failingSchedulesField, type FailingSchedule } from './render-schedule.js';

/** Discord's limit for an embed description. */
const DESCRIPTION_LIMIT = 4096;
/** A note line is cut here so one long libvirt error cannot crowd out the others. */
const NOTE_LIMIT = 200;

const LEGEND = 'EXT: external snapshots it can r(evert) and d(elete) · QUEUE: waiting + delayed jobs · RUN: running';

function summaryLine(summary: HostsSummary): string {
  return `**${summary.online} online** · ${summary.stale} stale · ${summary.offline} offline · ${summary.queued} queued · ${summary.running} running`;
}

function externalCapabilities(host: HostOverview): string {
  const letters = `${host.capabilities.externalRevert ? 'r' : ''}${host.capabilities.externalDelete ? 'd' : ''}`;
  return letters === '' ? '-' : letters.split('').join('+');
}

/** `42s`, `4m`, `5h`, `3d`: short enough for a table cell. */
function shortAge(iso: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}

function count(value: number | undefined): string {
  return value === undefined ? '?' : String(value);
}

/** One short line per host: what fits a chat window. */
function compactTable(hosts: readonly HostOverview[], now: number): string {
  return renderTable(
    ['HOST', 'STATUS', 'LIBVIRT', 'QEMU', 'EXT', 'VMS', 'QUEUE', 'RUN', 'LAST ERROR'],
    hosts.map((host) =>
      [
        host.hostId,
        host.state,
        host.libvirtVersion ?? '?',
        host.qemuVersion ?? '?',
        externalCapabilities(host),
        String(host.vms.length),
        count(host.queue ? host.queue.waiting + host.queue.delayed : undefined),
        count(host.queue?.active),
        host.lastError ? `${host.lastError.code} ${shortAge(host.lastError.at, now)}` : '-',
      ].map(codeText),
    ),
  );
}

/** Every column, for the attached file. */
function detailedTable(hosts: readonly HostOverview[]): string {
  return renderTable(
    ['HOST', 'STATUS', 'LAST SEEN', 'WORKER', 'LIBVIRT', 'QEMU', 'EXT-REVERT', 'EXT-DELETE', 'VMS', 'WAITING', 'DELAYED', 'ACTIVE', 'LAST ERROR'],
    hosts.map((host) =>
      [
        host.hostId,
        host.state,
        host.lastSeen,
        host.workerVersion,
        host.libvirtVersion ?? '?',
        host.qemuVersion ?? '?',
        host.capabilities.externalRevert ? 'yes' : 'no',
        host.capabilities.externalDelete ? 'yes' : 'no',
        String(host.vms.length),
        count(host.queue?.waiting),
        count(host.queue?.delayed),
        count(host.queue?.active),
        host.lastError ? `${host.lastError.code} at ${host.lastError.at}` : '-',
      ].map(plainText),
    ),
  );
}

function oneLine(text: string, limit: number): string {
  const flat = text.replace(/\s*\n\s*/g, ' ');
  return flat.length > limit ? `${flat.slice(0, limit - 1)}…` : flat;
}

/** Why each stale host is stale, since when offline hosts are silent, then the last errors, newest first. */
function noteLines(hosts: readonly HostOverview[], limit: number, markdown: boolean): string[] {
  // Host ids, reasons and libvirt's messages come from the hosts: escaped for Discord, hidden characters shown in the file.
  const text = markdown ? escapeText : plainText;
  const bold = (value: string) => (markdown ? `**${escapeText(value)}**` : plainText(value));
  // Discord shows <t:…:R> as "5 minutes ago" in the reader's locale, and keeps it current.
  const when = (iso: string) => (markdown && !Number.isNaN(Date.parse(iso)) ? `<t:${Math.floor(Date.parse(iso) / 1000)}:R>` : text(iso));
  const stale = hosts
    .filter((host) => host.state === 'stale' && host.staleReason !== null)
    .map((host) => `⚠ ${bold(host.hostId)} stale: ${text(oneLine(host.staleReason ?? '', limit))}`);
  const offline = hosts.filter((host) => host.state === 'offline').map((host) => `⏻ ${bold(host.hostId)} offline, last seen ${when(host.lastSeen)}`);
  const failures = hosts
    .flatMap((host) => (host.lastError ? [{ hostId: host.hostId, failure: host.lastError }] : []))
    .sort((a, b) => Date.parse(b.failure.at) - Date.parse(a.failure.at))
    .map(({ hostId, failure }) => {
      const job = [failure.kind, failure.vm].filter((part) => part !== null).join(' ');
      return `✖ ${bold(hostId)} ${text(failure.code)} ${when(failure.at)}${job ? ` (${text(job)})` : ''}: ${text(oneLine(failure.message, limit))}`;
    });
  return [...stale, ...offline, ...failures];
}

/** The longest prefix of `hosts` whose table, with a closing "… and N more" row, fits `budget`. */
function tableWithin(hosts: readonly HostOverview[], budget: number, now: number): { block: string; shown: number } {
  for (let shown = hosts.length; shown > 0; shown -= 1) {
    const more = hosts.length - shown;
    const block = codeBlock(`${compactTable(hosts.slice(0, shown), now)}${more ? `\n… and ${more} more` : ''}`);
    if (block.length <= budget) return { block, shown };
  }
  return { block: '', shown: 0 };
}

/**
 * The fleet view for `/hosts`: summary counts first, then one compact line per host,
 * then notes (why hosts are stale, since when offline ones are silent, last errors). With too many hosts for one embed,
 * the table narrows to the hosts that are stale or offline, and the full table (every
 * column, every note) comes as a file. Schedules that failed at least twice in a row
 * get a field of their own below.
 */
export function renderHostsReply(overview: HostsOverview, now: number = Date.now(), schedules: readonly FailingSchedule[] = []): { embeds: APIEmbed[]; files: AttachmentBuilder[] } {
  const { hosts, summary } = overview;
  const failing = failingSchedulesField(schedules);
  const scheduleFields = failing ? { fields: [failing] } : {};
  if (hosts.length === 0) {
    return {
      embeds: [{ title: 'KVM hosts', color: COLOR.neutral, description: 'No host has reported yet. Start a worker on each KVM host.', ...scheduleFields }],
      files: [],
    };
  }
  const head = summaryLine(summary);
  let description = `${head}\n${codeBlock(compactTable(hosts, now))}`;
  let complete = true;
  if (description.length > DESCRIPTION_LIMIT) {
    complete = false;
    const attention = hosts.filter((host) => host.state !== 'online');
    const intro = attention.length === 0 ? `All ${hosts.length} hosts are online; the full table is attached.` : `Stale and offline hosts (the full table is attached):`;
    const budget = DESCRIPTION_LIMIT - head.length - intro.length - 2;
    const { block } = tableWithin(attention, budget, now);
    description = [head, intro, block].filter((part) => part !== '').join('\n');
  }

  const notes = noteLines(hosts, NOTE_LIMIT, true);
  let added = 0;
  for (const note of notes) {
    const more = notes.length - added - 1;
    // Room for this note and, if any stay out, the line that says so.
    const reserve = more > 0 ? 50 : 0;
    if (description.length + 1 + note.length + reserve > DESCRIPTION_LIMIT) break;
    description += `\n${note}`;
    added += 1;
  }
  if (added < notes.length) {
    complete = false;
    description += `\n… ${notes.length - added} more note(s) in the attached file`;
  }

  const fileNotes = noteLines(hosts, Number.POSITIVE_INFINITY, false);
  const file = [detailedTable(hosts), ...(fileNotes.length > 0 ? ['', ...fileNotes] : [])].join('\n');
  return {
    embeds: [
      {
        title: 'KVM hosts',
        color: summary.online === summary.total ? COLOR.success : summary.offline === summary.total ? COLOR.failure : COLOR.warning,
        description,
        ...scheduleFields,
        footer: { text: LEGEND },
      },
    ],
    files: complete ? [] : [new AttachmentBuilder(Buffer.from(`${file}\n`), { name: 'hosts.txt' })],
  };
}
