import { z } from 'zod';

export const inventorySnapshotSchema = z.object({
  name: z.string(),
  location: z.enum(['internal', 'external']),
  /** ISO 8601; absent from workers before 0.2 and when virsh's table was ambiguous. A fleet delete binds to it. */
  createdAt: z.string().optional(),
});

export const inventoryVmSchema = z.object({
  name: z.string(),
  uuid: z.string(),
  /** `virsh domstate` words: running, shut off, paused, … */
  state: z.string(),
  snapshots: z.array(inventorySnapshotSchema),
});
export type InventoryVm = z.infer<typeof inventoryVmSchema>;

export const capabilitiesSchema = z.object({
  /** libvirt ≥ 9.9 reverts external (disk-only) snapshots; older refuses. */
  externalRevert: z.boolean(),
  /** libvirt ≥ 9.0 deletes external snapshots in the current chain. */
  externalDelete: z.boolean(),
});
export type Capabilities = z.infer<typeof capabilitiesSchema>;

/** The last job that failed on a host, as its worker saw it. */
export const jobFailureSchema = z.object({
  /** An error code (shared/errors.ts); a plain string so a code from a newer worker still parses. */
  code: z.string(),
  message: z.string(),
  /** When the job failed (ISO). */
  at: z.string(),
  jobId: z.string().nullable(),
  /** The job kind (create, revert, …) and VM, when the job said. */
  kind: z.string().nullable(),
  vm: z.string().nullable(),
});
export type JobFailure = z.infer<typeof jobFailureSchema>;

/**
 * What a worker writes into Redis every few seconds. Fields added after 0.1.0 are
 * optional, so the bot still reads the heartbeat of a worker that is not upgraded yet.
 */
export const heartbeatSchema = z.object({
  hostId: z.string(),
  libvirtUri: z.string(),
  libvirtVersion: z.string().nullable(),
  qemuVersion: z.string().nullable(),
  capabilities: capabilitiesSchema,
  vms: z.array(inventoryVmSchema),
  /** When the inventory was last read from libvirt (ISO). */
  inventoryAt: z.string().nullable(),
  /** Why the last inventory read failed, if it did (libvirt down, …). */
  inventoryError: z.string().nullable(),
  concurrency: z.number().int(),
  startedAt: z.string(),
  lastSeen: z.string(),
  workerVersion: z.string(),
  /** How often the worker re-reads its inventory (INVENTORY_INTERVAL_MS); absent from older workers. */
  inventoryIntervalMs: z.number().int().positive().optional(),
  /** The last failed job since this worker's record began; absent from older workers. */
  lastError: jobFailureSchema.nullable().optional(),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

/** A host as the bot and snapctl show it. */
export interface HostStatus extends Heartbeat {
  /** The worker is alive: its heartbeat key has not expired. */
  online: boolean;
}

/** The worker's default INVENTORY_INTERVAL_MS; assumed for workers that do not report theirs. */
export const DEFAULT_INVENTORY_INTERVAL_MS = 30_000;

/** An inventory older than this many inventory intervals is stale (one or two missed reads are normal jitter). */
export const STALE_INVENTORY_INTERVALS = 3;

/**
 * - `online`: the worker is alive and its inventory is current.
 * - `stale`: the worker is alive (it takes jobs) but what it reports about libvirt is
 *   not to be trusted: see {@link judgeHost}.
 * - `offline`: no heartbeat within HEARTBEAT_TTL_MS, or the worker stopped.
 */
export type HostState = 'online' | 'stale' | 'offline';

export interface HostJudgement {
  state: HostState;
  /** Why the host is stale, in a sentence; null unless `state` is `stale`. */
  staleReason: string | null;
}

/**
 * The stale rule. An alive host is stale when its last inventory read failed
 * (`inventoryError`: libvirt down, virsh failing), when it never read one, or when its
 * inventory is older than {@link STALE_INVENTORY_INTERVALS} × its inventory interval.
 * The age is `lastSeen − inventoryAt`: both stamps come from the worker's clock, so a
 * skewed clock between bot and host cannot make a host look stale or fresh.
 */
export function judgeHost(heartbeat: Heartbeat, online: boolean): HostJudgement {
  if (!online) return { state: 'offline', staleReason: null };
  if (heartbeat.inventoryError !== null) return { state: 'stale', staleReason: `inventory read failed: ${heartbeat.inventoryError}` };
  if (heartbeat.inventoryAt === null) return { state: 'stale', staleReason: 'no inventory read yet' };
  const intervalMs = heartbeat.inventoryIntervalMs ?? DEFAULT_INVENTORY_INTERVAL_MS;
  const ageMs = Date.parse(heartbeat.lastSeen) - Date.parse(heartbeat.inventoryAt);
  if (ageMs > STALE_INVENTORY_INTERVALS * intervalMs) {
    return {
      state: 'stale',
      staleReason: `inventory is ${formatAge(ageMs)} old (read every ${formatAge(intervalMs)})`,
    };
  }
  return { state: 'online', staleReason: null };
}

/** Jobs on a host's queue that have not finished. */
export interface QueueDepth {
  /** Waiting to be taken (prioritized ones included). */
  waiting: number;
  /** Waiting for a retry backoff or a delay. */
  delayed: number;
  /** Taken by a worker; on an offline host these stall and run again when it is back. */
  active: number;
}

/** BullMQ's job counts of a host queue as a QueueDepth (prioritized jobs count as waiting). */
export function queueDepthOf(counts: Readonly<Record<string, number | undefined>>): QueueDepth {
  return { waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0), delayed: counts.delayed ?? 0, active: counts.active ?? 0 };
}

/** A host in the fleet view of `/hosts` and `snapctl hosts`. */
export interface HostOverview extends HostStatus, HostJudgement {
  /** Null when the queue could not be read. */
  queue: QueueDepth | null;
}

/** `1.5 s`, `42 s`, `3 min`, `2 h`: ages and intervals for people. */
export function formatAge(ms: number): string {
  const seconds = Math.max(0, ms) / 1000;
  if (seconds < 10) return `${Number(seconds.toFixed(1))} s`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

/** Compares dotted versions numerically: `9.10.0` is newer than `9.9.0`. */
export function versionAtLeast(version: string | null, minimum: string): boolean {
  if (!version) return false;
  const have = version.split('.').map((part) => Number.parseInt(part, 10) || 0);
  const want = minimum.split('.').map((part) => Number.parseInt(part, 10) || 0);
  for (let index = 0; index < Math.max(have.length, want.length); index += 1) {
    const difference = (have[index] ?? 0) - (want[index] ?? 0);
    if (difference !== 0) return difference > 0;
  }
  return true;
}

export function capabilitiesForLibvirt(version: string | null): Capabilities {
  return {
    externalRevert: versionAtLeast(version, '9.9.0'),
    externalDelete: versionAtLeast(version, '9.0.0'),
  };
}
