import { previewByHost, type FleetListRow, type FleetPlan, type FleetSummary } from '../core/fleet/index.js';
import { revealHiddenCharacters } from '../../shared/names.js';
import { renderTable } from '../core/text-table.js';

/** Plain-text renderings of fleet previews, summaries and listings for snapctl; hidden characters written out as in render-text.ts. */

function visibleTable(header: string[], rows: string[][]): string {
  return renderTable(header, rows.map((row) => row.map(revealHiddenCharacters)));
}

export function renderFleetPreview(plan: FleetPlan): string {
  const verb = plan.action === 'snapshot' ? `snapshot '${plan.name}' (${plan.mode})` : `delete snapshots matching '${plan.name}'`;
  const lines = [`Fleet run ${plan.id}: ${verb} on '${plan.selector}'`, `${plan.targets.length} target(s):`];
  const byHost = previewByHost(plan);
  if (byHost.length > 0) {
    lines.push(visibleTable(['HOST', 'TARGETS', 'FIRST VMS'], byHost.map((host) => [host.hostId, String(host.count), host.first.join(', ') + (host.count > host.first.length ? ', …' : '')])));
  }
  for (const host of plan.skipped.offlineHosts) lines.push(`excluded: host ${host.hostId} is offline (last seen ${host.lastSeen}); ${host.vms} VM(s) not included`);
  if (plan.skipped.existing.length > 0) {
    const first = plan.skipped.existing.slice(0, 10).map((entry) => `${entry.vm}@${entry.host}`);
    lines.push(`skipped: ${plan.skipped.existing.length} VM(s) already hold that name: ${first.join(', ')}${plan.skipped.existing.length > 10 ? ', …' : ''}`);
  }
  if (plan.skipped.forbidden.length > 0) lines.push(`skipped: ${plan.skipped.forbidden.length} VM(s) you may not act on`);
  if (plan.skipped.withoutMatch > 0) lines.push(`${plan.skipped.withoutMatch} selected VM(s) hold no snapshot matching '${plan.name}'`);
  lines.push(`limits: ${plan.perHost || 'worker default'} per host, ${plan.maxConcurrent || 'no'} at once overall`);
  if (plan.approval) lines.push(`needs approval (${plan.approval.reason}): ${plan.approval.required} of ${plan.approval.approvers.join(', ')}`);
  return revealHiddenCharacters(lines.join('\n'));
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** One line for progress on stderr. */
export function renderFleetProgress(summary: FleetSummary): string {
  const { counts } = summary;
  const lost = counts.lost > 0 ? `, ${counts.lost} on offline hosts` : '';
  return `${seconds(summary.durationMs)}: ${counts.done}/${summary.total} done, ${counts.failed} failed, ${counts.running} running, ${counts.queued} queued, ${counts.cancelled} cancelled${lost}`;
}

export function renderFleetSummary(summary: FleetSummary): string {
  const { counts } = summary;
  const state = summary.status === 'finished' ? (summary.cancelledBy ? `cancelled by ${summary.cancelledBy}` : 'finished') : summary.status;
  const lines = [
    `Fleet run ${summary.runId} (${summary.plan.action} '${summary.plan.name}' on '${summary.plan.selector}'): ${state} in ${seconds(summary.durationMs)}`,
    `${counts.done} done, ${counts.failed} failed, ${counts.cancelled} cancelled, ${counts.running} running, ${counts.queued} queued${counts.lost ? `, ${counts.lost} on offline hosts` : ''} — of ${summary.total}`,
  ];
  if (summary.hosts.length > 0) {
    lines.push(
      visibleTable(
        ['HOST', 'ONLINE', 'DONE', 'FAILED', 'RUNNING', 'QUEUED', 'CANCELLED'],
        summary.hosts.map((host) => [
          host.hostId,
          host.online ? 'yes' : 'NO',
          String(host.counts.done),
          String(host.counts.failed),
          String(host.counts.running),
          String(host.counts.queued + host.counts.lost),
          String(host.counts.cancelled),
        ]),
      ),
    );
  }
  if (summary.failures.length > 0) {
    lines.push('Failures:');
    for (const target of summary.failures) {
      const why = target.state.state === 'failed' ? `${target.state.code}: ${target.state.message}` : `host ${target.host} is offline`;
      lines.push(`  ${target.vm}@${target.host} ${target.snapshot}: ${why}`);
    }
  }
  return revealHiddenCharacters(lines.join('\n'));
}

export function renderFleetList(rows: FleetListRow[]): string {
  if (rows.length === 0) return 'no matching VMs';
  return visibleTable(
    ['VM', 'HOST', 'STATE', 'SNAPSHOTS'],
    rows.map((row) => [row.vm, row.online ? row.host : `${row.host} (offline)`, row.state, row.snapshots.join(', ') || '-']),
  );
}
