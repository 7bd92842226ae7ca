import type { APIEmbed } from 'discord.js';
import { ERROR_SENTENCES, type ErrorPayload } from '../../../shared/errors.js';
import type { JobKind, JobProgress, JobResult, SnapshotInfo } from '../../../shared/jobs.js';
import { COLOR } from './colors.js';

/** Where a chat job stands, for the live reply. */
export type JobStage =
  | { stage: 'queued'; host: string; jobId: string }
  | { stage: 'progress'; progress: JobProgress };

export interface JobHeading {
  kind: JobKind;
  vm: string;
  /** The snapshot name, when the operation has one. */
  snapshot?: string | undefined;
}

const TITLES: Record<JobKind, string> = {
  create: 'Create snapshot',
  list: 'List snapshots',
  info: 'Snapshot info',
  revert: 'Revert to snapshot',
  delete: 'Delete snapshot',
};

function headline(heading: JobHeading): string {
  return `${TITLES[heading.kind]} · ${heading.vm}${heading.snapshot ? ` · ${heading.snapshot}` : ''}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The reply while a job waits or runs. */
export function renderJobStage(heading: JobHeading, stage: JobStage): APIEmbed {
  if (stage.stage === 'queued') {
    return {
      title: headline(heading),
      color: COLOR.progress,
      description: `⏳ Queued on **${stage.host}**`,
      footer: { text: `job ${stage.jobId}` },
    };
  }
  const icon = stage.progress.phase === 'running' ? '⚙️' : '⏳';
  return {
    title: headline(heading),
    color: COLOR.progress,
    description: `${icon} ${stage.progress.phase === 'running' ? 'Running' : 'Waiting'} on **${stage.progress.host}**: ${stage.progress.message}`,
  };
}

function snapshotFields(snapshot: SnapshotInfo) {
  return [
    { name: 'Created', value: snapshot.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), inline: true },
    { name: 'Location', value: snapshot.location, inline: true },
    { name: 'Memory', value: snapshot.memory ? 'yes' : 'no (disks only)', inline: true },
  ];
}

/** The final reply of a job that succeeded. */
export function renderJobResult(result: Exclude<JobResult, { kind: 'list' }>): APIEmbed {
  const where = [
    { name: 'VM', value: result.vm.name, inline: true },
    { name: 'Host', value: result.host, inline: true },
    { name: 'Duration', value: seconds(result.durationMs), inline: true },
  ];
  switch (result.kind) {
    case 'create': {
      const mode = result.mode === 'full' && result.snapshot.memory ? 'full (memory + disk)' : result.mode;
      return {
        title: `✅ Snapshot ${result.snapshot.name} created`,
        color: result.note ? COLOR.warning : COLOR.success,
        fields: [
          ...where,
          { name: 'Mode', value: mode, inline: true },
          ...snapshotFields(result.snapshot).slice(1),
          ...(result.snapshot.description ? [{ name: 'Description', value: result.snapshot.description }] : []),
          ...(result.note ? [{ name: 'Note', value: result.note }] : []),
        ],
      };
    }
    case 'info':
      return {
        title: `Snapshot ${result.snapshot.name}`,
        color: COLOR.neutral,
        fields: [
          ...where.slice(0, 2),
          ...snapshotFields(result.snapshot),
          { name: 'State', value: result.snapshot.state, inline: true },
          { name: 'Parent', value: result.snapshot.parent ?? '—', inline: true },
          { name: 'Current', value: result.snapshot.current ? 'yes' : 'no', inline: true },
          ...(result.snapshot.description ? [{ name: 'Description', value: result.snapshot.description }] : []),
        ],
      };
    case 'revert':
      return {
        title: `✅ ${result.vm.name} reverted to ${result.snapshot.name}`,
        color: COLOR.success,
        description: `The VM is now **${result.vmState}**.${
          result.undoPoint ? ` To undo this revert, revert to **${result.undoPoint.name}**.` : ''
        }`,
        fields: [
          ...where,
          ...(result.note ? [{ name: 'Note', value: result.note }] : []),
          ...(result.undoPoint ? [{ name: 'Undo point', value: `${result.undoPoint.name} (${result.undoPoint.memory ? 'memory + disk' : 'disk only'})`, inline: true }] : []),
          ...(result.prunedUndoPoints.length ? [{ name: 'Old undo points deleted', value: result.prunedUndoPoints.join(', ').slice(0, 1024) }] : []),
        ],
      };
    case 'delete':
      return {
        title: `🗑️ Snapshot ${result.deleted.name} deleted`,
        color: COLOR.success,
        fields: [...where, ...(result.note ? [{ name: 'Note', value: result.note }] : [])],
      };
  }
}

/** The final reply of a job that failed: the code's sentence, then what happened in this case. */
export function renderJobFailure(heading: JobHeading, error: ErrorPayload, host?: string): APIEmbed {
  return {
    title: `❌ ${headline(heading)} failed`,
    color: COLOR.failure,
    description: `**${error.code}** — ${ERROR_SENTENCES[error.code]}\n${error.message}`.slice(0, 4096),
    ...(host ? { fields: [{ name: 'Host', value: host, inline: true }] } : {}),
  };
}

/** An error shown only to the person who asked (bad input, not allowed, …). */
export function renderUserError(error: ErrorPayload): string {
  return `**${error.code}** — ${ERROR_SENTENCES[error.code]}\n${error.message}`.slice(0, 2000);
}
