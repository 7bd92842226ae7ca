import type { JobResult, SnapshotInfo } from '../../shared/jobs.js';
import { revealHiddenCharacters } from '../../shared/names.js';
import type { AuditEntry } from '../core/audit.js';
import type { HostsOverview } from '../core/hosts.js';
import { renderTable } from '../core/text-table.js';

/**
 * Plain-text renderings for snapctl; `--json` prints the results as they are instead.
 * Names from libvirt may hold invisible or direction-changing characters, and hosts'
 * messages terminal control characters: everything shown passes revealHiddenCharacters
 * (`baseline\u200b` is printed `baseline<U+200B>`), table cells before they are aligned.
 */

function visibleTable(header: string[], rows: string[][]): string {
  return renderTable(header.map(revealHiddenCharacters), rows.map((row) => row.map(revealHiddenCharacters)));
}

function shortTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function oneLine(text: string | null): string {
  return (text ?? '').replace(/\s*\n\s*/g, ' ⏎ ');
}

export function renderSnapshotTable(snapshots: SnapshotInfo[]): string {
  if (snapshots.length === 0) return 'no snapshots';
  return visibleTable(
    ['', 'NAME', 'CREATED', 'STATE', 'LOCATION', 'PARENT', 'DESCRIPTION'],
    snapshots.map((snapshot) => [
      snapshot.current ? '*' : '',
      snapshot.name,
      shortTime(snapshot.createdAt),
      snapshot.state,
      snapshot.location,
      snapshot.parent ?? '-',
      oneLine(snapshot.description),
    ]),
  );
}

export function renderSnapshotDetails(snapshot: SnapshotInfo): string {
  return visibleTable(
    ['Name:', snapshot.name],
    [
      ['Created:', shortTime(snapshot.createdAt)],
      ['State:', snapshot.state],
      ['Location:', snapshot.location],
      ['Memory:', snapshot.memory ? 'yes (reverting resumes the VM as it was running)' : 'no (disks only)'],
      ['Parent:', snapshot.parent ?? '-'],
      ['Current:', snapshot.current ? 'yes' : 'no'],
      ['Description:', oneLine(snapshot.description) || '-'],
      ...(snapshot.jobId ? [['Created by:', `snapbot job ${snapshot.jobId}`]] : []),
    ],
  );
}

export function renderResult(result: JobResult): string {
  const where = `${result.vm.name} on ${result.host}`;
  const took = `${(result.durationMs / 1000).toFixed(2)}s`;
  switch (result.kind) {
    case 'create': {
      const what = result.mode === 'full' && result.snapshot.memory ? 'full (memory + disk)' : result.mode;
      const lines = [`Created ${what} snapshot '${result.snapshot.name}' of ${where} in ${took}.`];
      if (result.recovered) lines.push('(A retry found the snapshot its own earlier attempt had made.)');
      if (result.note) lines.push(`Note: ${result.note}`);
      return revealHiddenCharacters(lines.join('\n'));
    }
    case 'list':
      return `${revealHiddenCharacters(where)}: ${result.snapshots.length} snapshot(s), newest first; * marks the current one\n${renderSnapshotTable(result.snapshots)}`;
    case 'info':
      return renderSnapshotDetails(result.snapshot);
    case 'revert': {
      const lines = [`Reverted ${where} to '${result.snapshot.name}' in ${took}; the VM is now ${result.vmState}.`];
      if (result.undoPoint) lines.push(`Undo point: '${result.undoPoint.name}' (revert to it to undo this).`);
      if (result.prunedUndoPoints.length) lines.push(`Old undo points deleted: ${result.prunedUndoPoints.join(', ')}`);
      if (result.note) lines.push(`Note: ${result.note}`);
      return revealHiddenCharacters(lines.join('\n'));
    }
    case 'delete':
      return revealHiddenCharacters([`Deleted snapshot '${result.deleted.name}' of ${where} in ${took}.`, ...(result.note ? [`Note: ${result.note}`] : [])].join('\n'));
  }
}

function ago(iso: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  return `${Math.round(seconds / 3600)}h ago`;
}

export function renderAudit(entries: AuditEntry[]): string {
  if (entries.length === 0) return 'no audit entries';
  return visibleTable(
    ['WHEN', 'EVENT', 'ACTOR', 'ACTION', 'HOST', 'VM', 'SNAPSHOT', 'DETAIL'],
    entries.map((entry) => [
      shortTime(entry.at),
      entry.event,
      entry.actor,
      entry.action,
      entry.host ?? '-',
      entry.vm ?? '-',
      entry.snapshot ?? '-',
      oneLine(entry.detail ?? ''),
    ]),
  );
}

/**
 * The fleet view: one row per host, then the summary counts, why stale hosts are
 * stale, and each host's last error (newest first).
 */
export function renderHosts(overview: HostsOverview, now: number = Date.now()): string {
  const { hosts, summary } = overview;
  if (hosts.length === 0) return 'No host has reported yet. Start a worker on each KVM host (npm run worker).';
  const count = (value: number | undefined) => (value === undefined ? '?' : String(value));
  const table = visibleTable(
    ['HOST', 'STATUS', 'LAST SEEN', 'WORKER', 'LIBVIRT', 'QEMU', 'EXT-REVERT', 'EXT-DELETE', 'VMS', 'QUEUED', 'RUNNING', 'LAST ERROR'],
    hosts.map((host) => [
      host.hostId,
      host.state,
      ago(host.lastSeen, now),
      host.workerVersion,
      host.libvirtVersion ?? '?',
      host.qemuVersion ?? '?',
      host.capabilities.externalRevert ? 'yes' : 'no',
      host.capabilities.externalDelete ? 'yes' : 'no',
      String(host.vms.length),
      count(host.queue ? host.queue.waiting + host.queue.delayed : undefined),
      count(host.queue?.active),
      host.lastError ? `${host.lastError.code} ${ago(host.lastError.at, now)}` : '-',
    ]),
  );
  const lines = [
    table,
    '',
    `${summary.total} host(s): ${summary.online} online, ${summary.stale} stale, ${summary.offline} offline; ${summary.queued} job(s) queued, ${summary.running} running`,
  ];
  for (const host of hosts) if (host.state === 'stale') lines.push(`${host.hostId} is stale: ${oneLine(host.staleReason)}`);
  const failures = hosts.flatMap((host) => (host.lastError ? [{ hostId: host.hostId, failure: host.lastError }] : []));
  failures.sort((a, b) => Date.parse(b.failure.at) - Date.parse(a.failure.at));
  for (const { hostId, failure } of failures) {
    const job = [failure.kind, failure.vm, failure.jobId === null ? null : `job ${failure.jobId}`].filter((part) => part !== null).join(' ');
    lines.push(`${hostId} last error ${ago(failure.at, now)}: ${failure.code}${job ? ` (${job})` : ''}: ${oneLine(failure.message)}`);
  }
  return revealHiddenCharacters(lines.join('\n'));
}
