import { z } from 'zod';
import { snapshotModeSchema } from '../jobs.js';
import { descriptionSchema, scheduleNameSchema } from '../names.js';
import { keepSpecSchema } from './keep-spec.js';

/**
 * A schedule as stored (Redis hash `{prefix}:schedule:<name>`, field `definition`, sealed
 * by the control process) and as snapctl and Discord show it. The control process fires
 * it through a BullMQ job scheduler of the same name on the `schedules` queue.
 */

export const SCHEDULE_QUEUE = 'schedules';

/** The free share of a VM's storage below which a firing skips that VM (policy `schedules.minFreePercent`). */
export const DEFAULT_MIN_FREE_PERCENT = 10;

export const scheduleCadenceSchema = z.union([
  z.object({ pattern: z.string().min(1).max(200), tz: z.string().min(1).max(64) }).strict(),
  z.object({ every: z.number().int().positive(), tz: z.string().min(1).max(64) }).strict(),
]);

export const scheduleOwnerSchema = z.object({ id: z.string(), userId: z.string().nullable(), displayName: z.string() });

export const scheduleDefinitionSchema = z
  .object({
    name: scheduleNameSchema,
    /** A fleet selector (`all`, `web-*`, `host:kvm-a`, …) resolved again at every firing. */
    target: z.string().min(1).max(2000),
    cadence: scheduleCadenceSchema,
    keep: keepSpecSchema,
    mode: snapshotModeSchema,
    /** Snapshot names are `<prefix>-<YYYYMMDD>-<HHMMSS>` (UTC, the firing's slot). */
    prefix: z.string().min(1).max(64),
    description: descriptionSchema.nullable(),
    /** Where Discord posts each firing's summary; null: DISCORD_CHANNEL_ID. */
    channelId: z.string().regex(/^\d{15,21}$/).nullable(),
    owner: scheduleOwnerSchema,
    createdAt: z.string(),
    /** Bumped by every change of the definition; an approval is bound to one version. */
    version: z.number().int().positive(),
  })
  .strict();
export type ScheduleDefinition = z.infer<typeof scheduleDefinitionSchema>;

/**
 * pending: waiting for approval (its deletes need it); active: fires; paused: kept, does
 * not fire; denied / expired: its approval was refused or ran out (change it to ask again).
 */
export type ScheduleStatus = 'pending' | 'active' | 'paused' | 'denied' | 'expired';

/** What the last firing did, for `schedule show`, `/hosts` and the "failed N times in a row" warning. */
export const scheduleFiringSchema = z.object({
  /** The slot (ISO) the firing was for. */
  slot: z.string(),
  runId: z.string(),
  finishedAt: z.string(),
  outcome: z.enum(['ok', 'partial', 'failed', 'nothing']),
  counts: z.object({ done: z.number().int(), failed: z.number().int(), skipped: z.number().int() }),
  pruned: z.number().int(),
  kept: z.number().int(),
  /** Snapshots retention left alone although no rule keeps them, and why. */
  retentionSkipped: z.array(z.object({ vm: z.string(), host: z.string(), name: z.string(), reason: z.string() })),
  /** Failures of the firing: targets, and retention's own (a list or a delete that failed). */
  failures: z.array(z.object({ vm: z.string(), host: z.string(), code: z.string(), message: z.string() })),
});
export type ScheduleFiring = z.infer<typeof scheduleFiringSchema>;

export function scheduleKeys(prefix: string) {
  return {
    /** Set of schedule names. */
    index: `${prefix}:schedules`,
    /** Hash: definition (JSON), seal, status, failedInARow, lastFiring (JSON), approvalId. */
    schedule: (name: string) => `${prefix}:schedule:${name}`,
    /** List of finished firings (`<name>:<runId>`) for a Discord-serving process to post. */
    toPost: `${prefix}:schedules:to-post`,
  };
}

/** The fleet name template of a schedule's snapshots: the slot's date and time, so two firings never clash. */
export function scheduleNameTemplate(definition: Pick<ScheduleDefinition, 'prefix'>): string {
  return `${definition.prefix}-{date}-{time}`;
}
