import { z } from 'zod';
import { fleetJobRefSchema } from './fleet.js';
import { descriptionSchema, hostIdSchema, scheduleNameSchema, snapshotNameSchema, uuidSchema, vmNameSchema } from './names.js';

/**
 * The job contract between the bot (and snapctl) and the workers. The bot parses a
 * job with these schemas before it enqueues it; the worker parses it again on receipt.
 */

export const snapshotModeSchema = z.enum(['disk-only', 'full']);
export type SnapshotMode = z.infer<typeof snapshotModeSchema>;

const jobBase = {
  host: hostIdSchema,
  vm: vmNameSchema,
  /** The UUID the requester saw in the inventory; the worker refuses if the VM by that name now has another. */
  uuid: uuidSchema.optional(),
  /** Who asked, for logs and audit: `snapctl:user@machine` or `discord:<user id>`. */
  requestedBy: z.string().min(1).max(200),
  /** The control process's signature; workers run no create, revert or delete without a valid one (shared/job-signing.ts). */
  auth: z
    .object({
      keyId: z.string().max(64),
      /** Milliseconds since the epoch: a worker refuses to start a job it first sees after this. */
      expiresAt: z.number().int().nonnegative(),
      /** The approval request this job carries out; a worker runs one job per approval. */
      approvalId: z.string().max(64).optional(),
      signature: z.string().max(128),
    })
    .strict()
    .optional(),
};

export const createJobSchema = z.object({
  ...jobBase,
  kind: z.literal('create'),
  name: snapshotNameSchema,
  mode: snapshotModeSchema,
  description: descriptionSchema.optional(),
  /** Set when the job is one target of a fleet run. */
  fleet: fleetJobRefSchema.optional(),
  /** The schedule that fires this create: stored with the snapshot as its marker, which only that schedule's retention prunes by. */
  schedule: scheduleNameSchema.optional(),
  /**
   * Before creating, the worker checks the free space of the storage under each of the
   * VM's disks (and, for a full snapshot, room for the guest's memory): below this share
   * free it creates nothing and fails NO_SPACE. Scheduled creates carry it.
   */
  spaceGuard: z.object({ minFreePercent: z.number().min(0).max(99) }).strict().optional(),
});
export const listJobSchema = z.object({ ...jobBase, kind: z.literal('list') });
export const infoJobSchema = z.object({ ...jobBase, kind: z.literal('info'), name: snapshotNameSchema });
/**
 * An approved action binds to the snapshot as the approvers saw it: the worker refuses
 * with APPROVAL_STALE when the snapshot by that name now has another creation time.
 */
const expectedSnapshotSchema = z.object({ createdAt: z.string() }).optional();

/** Before a revert, the worker takes this safety snapshot, so the revert can be undone. */
export const undoPointSchema = z.object({
  mode: z.enum(['disk-only', 'full']),
  /** How many of snapbot's undo points to keep per VM; older ones are deleted after a revert. */
  keep: z.number().int().min(1).max(100),
});
export type UndoPointOptions = z.infer<typeof undoPointSchema>;

export const revertJobSchema = z.object({
  ...jobBase,
  kind: z.literal('revert'),
  name: snapshotNameSchema,
  expected: expectedSnapshotSchema,
  undoPoint: undoPointSchema.optional(),
});
export const deleteJobSchema = z.object({
  ...jobBase,
  kind: z.literal('delete'),
  name: snapshotNameSchema,
  expected: expectedSnapshotSchema,
  fleet: fleetJobRefSchema.optional(),
});

export const snapshotJobSchema = z.discriminatedUnion('kind', [
  createJobSchema,
  listJobSchema,
  infoJobSchema,
  revertJobSchema,
  deleteJobSchema,
]);
export type SnapshotJob = z.infer<typeof snapshotJobSchema>;
export type JobKind = SnapshotJob['kind'];

/** One snapshot as snapbot reports it. */
export const snapshotInfoSchema = z.object({
  name: z.string(),
  /** ISO 8601, from libvirt's creationTime. */
  createdAt: z.string(),
  /** The domain state recorded in the snapshot: running, shutoff, disk-snapshot, … */
  state: z.string(),
  location: z.enum(['internal', 'external']),
  /** True when the snapshot holds the VM's memory (reverting resumes it running). */
  memory: z.boolean(),
  parent: z.string().nullable(),
  current: z.boolean(),
  /** The operator's description, without snapbot's job marker. */
  description: z.string().nullable(),
  /** The snapbot job that created it, when snapbot did. */
  jobId: z.string().nullable(),
  /** The schedule that made it (its marker); only that schedule's retention prunes it. Absent from workers before 0.3. */
  scheduleId: z.string().nullable().optional(),
});
export type SnapshotInfo = z.infer<typeof snapshotInfoSchema>;

const resultBase = {
  host: hostIdSchema,
  vm: z.object({ name: z.string(), uuid: z.string() }),
  durationMs: z.number(),
};

export const createResultSchema = z.object({
  ...resultBase,
  kind: z.literal('create'),
  mode: snapshotModeSchema,
  snapshot: snapshotInfoSchema,
  /** Set when the result differs from what was asked, e.g. a full snapshot of a shut-off VM. */
  note: z.string().nullable(),
  /** True when a retry found the snapshot its own earlier attempt had made. */
  recovered: z.boolean(),
});
export const listResultSchema = z.object({ ...resultBase, kind: z.literal('list'), snapshots: z.array(snapshotInfoSchema) });
export const infoResultSchema = z.object({ ...resultBase, kind: z.literal('info'), snapshot: snapshotInfoSchema });
/**
 * A revert or delete run again after its worker died (a retry or a stalled job) that
 * finds an earlier run of the same job already did it does not do it again.
 * Optional: workers from before this field leave it out.
 */
const alreadyDone = {
  /** True when an earlier run of this job had already done it; nothing was done again. */
  recovered: z.boolean().optional(),
  /** A sentence for the user when there is something to say (the recovery). */
  note: z.string().nullable().optional(),
};

export const revertResultSchema = z.object({
  ...resultBase,
  kind: z.literal('revert'),
  snapshot: snapshotInfoSchema,
  /** The VM's state after the revert, as `virsh domstate` says it. */
  vmState: z.string(),
  /** The safety snapshot taken just before, to undo the revert with; null when none was asked for. */
  undoPoint: snapshotInfoSchema.nullable(),
  /** Older undo points deleted by retention. */
  prunedUndoPoints: z.array(z.string()),
  ...alreadyDone,
});
export const deleteResultSchema = z.object({ ...resultBase, kind: z.literal('delete'), deleted: snapshotInfoSchema, ...alreadyDone });

export const jobResultSchema = z.discriminatedUnion('kind', [
  createResultSchema,
  listResultSchema,
  infoResultSchema,
  revertResultSchema,
  deleteResultSchema,
]);
export type JobResult = z.infer<typeof jobResultSchema>;
export type ResultOf<K extends JobKind> = Extract<JobResult, { kind: K }>;

/** Progress a worker reports while a job runs (BullMQ `job.updateProgress`). */
export const jobProgressSchema = z.object({
  phase: z.enum(['waiting-for-vm', 'running']),
  host: z.string(),
  message: z.string(),
  /**
   * The snapshot a revert or delete is about to act on, recorded before acting, so that
   * a retry after a crash can tell "already deleted by my first attempt" from "never there".
   */
  target: snapshotInfoSchema.optional(),
});
export type JobProgress = z.infer<typeof jobProgressSchema>;

/**
 * The worker marks the snapshots it creates with the job id (and, for a scheduled one,
 * the schedule's name), inside the description, so that a retry after a crash recognises
 * its own snapshot instead of failing or making a second one, and a schedule's retention
 * prunes only what that schedule made. The marker is stripped before descriptions are
 * shown.
 */
const JOB_MARKER = /\n?\[snapbot job ([^\]\n ]+)(?: schedule ([^\]\n ]+))?\]$/;

export function withJobMarker(description: string | undefined, jobId: string, scheduleId?: string): string {
  return `${description ?? ''}${description ? '\n' : ''}[snapbot job ${jobId}${scheduleId ? ` schedule ${scheduleId}` : ''}]`;
}

export function splitJobMarker(raw: string | null): { description: string | null; jobId: string | null; scheduleId: string | null } {
  if (raw === null) return { description: null, jobId: null, scheduleId: null };
  const match = JOB_MARKER.exec(raw);
  if (!match) return { description: raw === '' ? null : raw, jobId: null, scheduleId: null };
  const description = raw.slice(0, match.index);
  return { description: description === '' ? null : description, jobId: match[1]!, scheduleId: match[2] ?? null };
}
