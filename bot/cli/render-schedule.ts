import { describeCadence } from '../../shared/schedules/cadence.js';
import type { ScheduleFiring } from '../../shared/schedules/definition.js';
import { formatKeepSpec } from '../../shared/schedules/keep-spec.js';
import type { ScheduleRecord } from '../core/schedules/store.js';
import { revealHiddenCharacters } from '../../shared/names.js';
import { renderTable } from '../core/text-table.js';

/** One line, hidden characters written out (names and messages come from people and hosts). */
function plainText(text: string): string {
  return revealHiddenCharacters(text.replace(/\s*\n\s*/g, ' ⏎ '));
}

/** snapctl's text for schedules: a table for list, a block for show, a summary for a firing (failures first). */

export function renderScheduleList(records: readonly ScheduleRecord[]): string {
  if (records.length === 0) return 'No schedules. Create one with: snapctl schedule create NAME --target … --cron "30 2 * * *" --keep last=7';
  const rows = records.map((record) => [
    record.definition.name,
    record.status + (record.failedInARow > 1 ? ` (failed ${record.failedInARow}× in a row)` : ''),
    describeCadence(record.definition.cadence),
    formatKeepSpec(record.definition.keep),
    plainText(record.definition.target),
    record.lastFiring ? `${record.lastFiring.slot} ${record.lastFiring.outcome}` : '-',
  ]);
  return renderTable(['NAME', 'STATUS', 'CADENCE', 'KEEP', 'TARGET', 'LAST FIRING'], rows);
}

export function renderSchedule(record: ScheduleRecord, next: readonly string[]): string {
  const { definition } = record;
  const lines = [
    `Schedule ${definition.name}: ${record.status}${record.approvalId && record.status === 'pending' ? ` (approval ${record.approvalId})` : ''}`,
    `  target       ${plainText(definition.target)}`,
    `  cadence      ${describeCadence(definition.cadence)}`,
    `  keep         ${formatKeepSpec(definition.keep)}`,
    `  mode         ${definition.mode}`,
    `  names        ${plainText(definition.prefix)}-YYYYMMDD-HHMMSS`,
    `  owner        ${plainText(definition.owner.displayName)} (${plainText(definition.owner.id)})`,
    `  created      ${definition.createdAt}`,
  ];
  if (definition.description) lines.push(`  description  ${plainText(definition.description)}`);
  if (next.length > 0) lines.push(`  next         ${next.join(', ')}`);
  if (record.failedInARow > 1) lines.push(`  !! its last ${record.failedInARow} firings failed`);
  if (record.lastFiring) lines.push('', renderFiring(definition.name, record.lastFiring));
  return lines.join('\n');
}

export function renderFiring(name: string, firing: ScheduleFiring): string {
  const lines = [
    `Firing of ${name} for ${firing.slot} (fleet run ${firing.runId}): ${firing.outcome}`,
    `  ${firing.counts.done} snapshot(s) taken, ${firing.counts.failed} failed, ${firing.counts.skipped} skipped; retention pruned ${firing.pruned}, kept ${firing.kept}`,
  ];
  for (const failure of firing.failures) lines.push(`  FAILED ${plainText(failure.vm)} @ ${plainText(failure.host)}: ${failure.code}: ${plainText(failure.message)}`);
  for (const skipped of firing.retentionSkipped) lines.push(`  left ${plainText(skipped.name)} on ${plainText(skipped.vm)}: ${plainText(skipped.reason)}`);
  return lines.join('\n');
}
