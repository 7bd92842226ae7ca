import type { APIEmbed } from 'discord.js';
import type { ResultOf } from '../../../shared/jobs.js';
import { renderTable } from '../../core/text-table.js';
import { COLOR } from './colors.js';
import { codeBlock, codeText, escapeText, plainText } from './escape.js';

/** Snapshots per page: keeps the code block far below the 4,096-character embed limit. */
export const SNAPSHOTS_PER_PAGE = 15;
const MAX_CELL = 40;

function cell(text: string): string {
  const flat = codeText(text.replace(/\s*\n\s*/g, ' ⏎ '));
  return flat.length <= MAX_CELL ? flat : `${flat.slice(0, MAX_CELL - 1)}…`;
}

export function pageCount(total: number): number {
  return Math.max(1, Math.ceil(total / SNAPSHOTS_PER_PAGE));
}

/**
 * One page of a VM's snapshots as a monospaced table, newest first, `*` for the current
 * one. Long names and descriptions are cut here; the attached file has them whole.
 */
export function renderSnapshotListPage(result: ResultOf<'list'>, page: number): APIEmbed {
  const pages = pageCount(result.snapshots.length);
  const index = Math.min(Math.max(page, 0), pages - 1);
  const slice = result.snapshots.slice(index * SNAPSHOTS_PER_PAGE, (index + 1) * SNAPSHOTS_PER_PAGE);
  const table =
    slice.length === 0
      ? 'no snapshots'
      : renderTable(
          ['', 'NAME', 'CREATED', 'LOCATION', 'MEMORY', 'DESCRIPTION'],
          slice.map((snapshot) => [
            snapshot.current ? '*' : '',
            cell(snapshot.name),
            cell(snapshot.createdAt.slice(0, 16).replace('T', ' ')),
            cell(snapshot.location),
            snapshot.memory ? 'yes' : 'no',
            cell(snapshot.description ?? ''),
          ]),
        );
  return {
    title: `Snapshots of ${escapeText(result.vm.name)} on ${escapeText(result.host)}`,
    color: COLOR.neutral,
    description: codeBlock(table),
    footer: {
      text: `${result.snapshots.length} snapshot(s), newest first · * current${pages > 1 ? ` · page ${index + 1}/${pages}` : ''}`,
    },
  };
}

/** The whole list as text, attached when it does not fit on one page. */
export function renderSnapshotListFile(result: ResultOf<'list'>): string {
  const rows = result.snapshots.map((snapshot) => [
    snapshot.current ? '*' : '',
    plainText(snapshot.name),
    plainText(snapshot.createdAt),
    plainText(snapshot.state),
    plainText(snapshot.location),
    plainText(snapshot.parent ?? '-'),
    plainText((snapshot.description ?? '').replace(/\n/g, ' ⏎ ')),
  ]);
  return `${renderTable(['', 'NAME', 'CREATED', 'STATE', 'LOCATION', 'PARENT', 'DESCRIPTION'], rows)}\n`;
}
