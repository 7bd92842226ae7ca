import { AttachmentBuilder, type APIEmbed } from 'discord.js';
import type { AuditEntry } from '../../core/audit.js';
import { renderTable } from '../../core/text-table.js';
import { COLOR } from './colors.js';
import { codeBlock, codeText, escapeText, plainText } from './escape.js';

const SHOWN = 15;

function table(entries: AuditEntry[]): string {
  return renderTable(
    ['WHEN (UTC)', 'EVENT', 'WHO', 'WHAT'],
    entries.map((entry) => [
      codeText(entry.at.slice(5, 16).replace('T', ' ')),
      codeText(entry.event),
      codeText(entry.actor.replace(/^discord:/, '@')).slice(0, 28),
      codeText(`${entry.action} ${entry.vm ?? ''}${entry.snapshot ? `/${entry.snapshot}` : ''}`).slice(0, 40),
    ]),
  );
}

/** The newest audit entries in a code block; all of them (with details) in an attached file. */
export function renderAuditReply(entries: AuditEntry[], vm?: string): { embeds: APIEmbed[]; files: AttachmentBuilder[] } {
  const title = `Audit${vm ? ` · ${escapeText(vm)}` : ''}`;
  if (entries.length === 0) return { embeds: [{ title, color: COLOR.neutral, description: 'No entries.' }], files: [] };
  const full = renderTable(
    ['WHEN', 'EVENT', 'ACTOR', 'ACTION', 'HOST', 'VM', 'SNAPSHOT', 'REQUEST', 'DETAIL'],
    entries.map((entry) =>
      [entry.at, entry.event, entry.actor, entry.action, entry.host ?? '-', entry.vm ?? '-', entry.snapshot ?? '-', entry.requestId ?? '-', entry.detail ?? ''].map(plainText),
    ),
  );
  return {
    embeds: [
      {
        title,
        color: COLOR.neutral,
        description: codeBlock(table(entries.slice(0, SHOWN))),
        footer: { text: `${Math.min(SHOWN, entries.length)} of ${entries.length} newest shown; all of them in the file` },
      },
    ],
    files: [new AttachmentBuilder(Buffer.from(`${full}\n`), { name: 'audit.txt' })],
  };
}
