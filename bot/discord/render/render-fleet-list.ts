import type { APIEmbed } from 'discord.js';
import type { FleetListRow } from '../../core/fleet/index.js';
import { renderTable } from '../../core/text-table.js';
import { COLOR } from './colors.js';
import { codeBlock, codeText, escapeText, plainText } from './escape.js';
import { clip } from './fleet-text.js';

/** Rows of /fleet list per page: keeps the code block far below the embed limit. */
export const FLEET_LIST_ROWS_PER_PAGE = 20;

// ---------------------------------------------------------------------------------------
// /fleet list

export function fleetListPageCount(rows: number): number {
  return Math.max(1, Math.ceil(rows / FLEET_LIST_ROWS_PER_PAGE));
}

function snapshotsCell(snapshots: string[], width = 60): string {
  if (snapshots.length === 0) return '-';
  let text = '';
  for (const [index, name] of snapshots.map(codeText).entries()) {
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
          slice.map((row) => [clip(codeText(row.vm), 32), `${clip(codeText(row.host), 20)}${row.online ? '' : ' (offline)'}`, snapshotsCell(row.snapshots)]),
        );
  const hosts = new Set(rows.map((row) => row.host)).size;
  const holding = rows.filter((row) => row.snapshots.length > 0).length;
  return {
    title: clip(`Fleet snapshots · ${escapeText(query.target)}${query.name ? ` · ${escapeText(query.name)}` : ''}`, 256),
    color: COLOR.neutral,
    description: clip(codeBlock(table), 4096),
    footer: {
      text: `${rows.length} VM(s) on ${hosts} host(s), ${holding} with ${query.name ? 'matching ' : ''}snapshots${pages > 1 ? ` · page ${index + 1}/${pages}` : ''}`,
    },
  };
}

/** The whole listing as text, attached when it does not fit on one page. */
export function renderFleetListFile(rows: FleetListRow[]): string {
  return `${renderTable(
    ['VM', 'HOST', 'ONLINE', 'STATE', 'SNAPSHOTS'],
    rows.map((row) => [plainText(row.vm), plainText(row.host), row.online ? 'yes' : 'no', plainText(row.state), plainText(row.snapshots.join(', ')) || '-']),
  )}\n`;
}
