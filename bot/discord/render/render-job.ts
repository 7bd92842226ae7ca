import type { APIEmbed } from 'discord.js';
import { ERROR_SENTENCES, type ErrorPayload } from '../../../shared/errors.js';
import type { JobKind, JobProgress, JobResult, SnapshotInfo } from '../../../shared/jobs.js';
import { COLOR } from './colors.js';
import { clipText, DISCORD_LIMITS } from './discord-limits.js';
import { escapeText, plainText } from './escape.js';

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
  return `${TITLES[heading.kind]} · ${escapeText(heading.vm)}${heading.snapshot ? ` · ${escapeText(heading.snapshot)}` : ''}`;
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
      description: `⏳ Queued on **${escapeText(stage.host)}**`,
      footer: { text: `job ${plainText(stage.jobId)}` },
    };
  }
  const icon = stage.progress.phase === 'running' ? '⚙️' : '⏳';
  return {
    title: headline(heading),
    color: COLOR.progress,
    description: `${icon} ${stage.progress.phase === 'running' ? 'Running' : 'Waiting'} on **${escapeText(stage.progress.host)}**: ${escapeText(stage.progress.message)}`,
  };
}

function snapshotFields(snapshot: SnapshotInfo) {
  return [
    { name: 'Created', value: escapeText(snapshot.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')), inline: true },
    { name: 'Location', value: escapeText(snapshot.location), inline: true },
    { name: 'Memory', value: snapshot.memory ? 'yes' : 'no (disks only)', inline: true },
  ];
}

/** The final reply of a job that succeeded. */
export function renderJobResult(result: Exclude<JobResult, { kind: 'list' }>): APIEmbed {
  const where = [
    { name: 'VM', value: escapeText(result.vm.name), inline: true },
    { name: 'Host', value: escapeText(result.host), inline: true },
    { name: 'Duration', value: seconds(result.durationMs), inline: true },
  ];
  switch (result.kind) {
    case 'create': {
      const mode = result.mode === 'full' && result.snapshot.memory ? 'full (memory + disk)' : result.mode;
      return {
        title: `✅ Snapshot ${escapeText(result.snapshot.name)} created`,
        color: result.note ? COLOR.warning : COLOR.success,
        fields: [
          ...where,
          { name: 'Mode', value: escapeText(mode), inline: true },
          ...snapshotFields(result.snapshot).slice(1),
          ...(result.snapshot.description ? [{ name: 'Description', value: escapeText(result.snapshot.description) }] : []),
          ...(result.note ? [{ name: 'Note', value: escapeText(result.note) }] : []),
        ],
      };
    }
    case 'info':
      return {
        title: `Snapshot ${escapeText(result.snapshot.name)}`,
        color: COLOR.neutral,
        fields: [
          ...where.slice(0, 2),
          ...snapshotFields(result.snapshot),
          { name: 'State', value: escapeText(result.snapshot.state), inline: true },
          { name: 'Parent', value: result.snapshot.parent ? escapeText(result.snapshot.parent) : '—', inline: true },
          { name: 'Current', value: result.snapshot.current ? 'yes' : 'no', inline: true },
          ...(result.snapshot.description ? [{ name: 'Description', value: escapeText(result.snapshot.description) }] : []),
        ],
      };
    case 'revert':
      return {
        title: `✅ ${escapeText(result.vm.name)} reverted to ${escapeText(result.snapshot.name)}`,
        color: COLOR.success,
        description: `The VM is now **${escapeText(result.vmState)}**.${
          result.undoPoint ? ` To undo this revert, revert to **${escapeText(result.undoPoint.name)}**.` : ''
        }`,
        fields: [
          ...where,
          ...(result.note ? [{ name: 'Note', value: escapeText(result.note) }] : []),
          ...(result.undoPoint ? [{ name: 'Undo point', value: `${escapeText(result.undoPoint.name)} (${result.undoPoint.memory ? 'memory + disk' : 'disk only'})`, inline: true }] : []),
          ...(result.prunedUndoPoints.length ? [{ name: 'Old undo points deleted', value: clipText(escapeText(result.prunedUndoPoints.join(', ')), DISCORD_LIMITS.fieldValue) }] : []),
        ],
      };
    case 'delete':
      return {
        title: `🗑️ Snapshot ${escapeText(result.deleted.name)} deleted`,
        color: COLOR.success,
        fields: [...where, ...(result.note ? [{ name: 'Note', value: escapeText(result.note) }] : [])],
      };
  }
}

/** The final reply of a job that failed: the code's sentence, then what happened in this case. */
export function renderJobFailure(heading: JobHeading, error: ErrorPayload, host?: string): APIEmbed {
  return {
    title: `❌ ${headline(heading)} failed`,
    color: COLOR.failure,
    description: clipText(`**${error.code}** — ${ERROR_SENTENCES[error.code]}\n${escapeText(error.message)}`, DISCORD_LIMITS.embedDescription),
    ...(host ? { fields: [{ name: 'Host', value: escapeText(host), inline: true }] } : {}),
  };
}

/** An error shown only to the person who asked (bad input, not allowed, …). */
export function renderUserError(error: ErrorPayload): string {
  return clipText(`**${error.code}** — ${ERROR_SENTENCES[error.code]}\n${escapeText(error.message)}`, 2000);
}
