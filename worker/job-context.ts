import type { Job } from 'bullmq';
import type { RedisClient } from '../shared/redis.js';
import type { Capabilities } from '../shared/hosts.js';
import { jobProgressSchema, type JobProgress, type SnapshotInfo } from '../shared/jobs.js';
import type { Logger } from '../shared/logger.js';
import type { Hypervisor } from './hypervisor/hypervisor.js';
import type { HostSlots } from './host-slots.js';
import type { JobAdmission } from './job-admission.js';
import type { HostInventory } from './inventory.js';
import type { StatFilesystem } from './space-guard.js';
import type { VmLocks } from './vm-lock.js';

/** What a job runs with: the host's hypervisor, inventory, locks and slots, and Redis for fleet jobs. */
export interface JobProcessorDeps {
  hostId: string;
  hypervisor: Hypervisor;
  inventory: HostInventory;
  locks: VmLocks;
  /** WORKER_CONCURRENCY: operations against libvirt at once; taken after the VM's lock. */
  slots: HostSlots;
  capabilities: () => Capabilities;
  logger: Logger;
  /** For fleet jobs: their run's limits and per-target states live in Redis. */
  redis: RedisClient;
  prefix: string;
  /** How long a fleet job's concurrency permit lasts if its worker dies holding it. */
  fleetPermitLeaseMs: number;
  /** Refuses jobs that change a VM unless the control process signed them (and not twice). */
  admission: JobAdmission;
  /** How the space guard measures the filesystem under a disk; node's statfs when left out. */
  statfs?: StatFilesystem;
}


/**
 * A first run of this job: not a retry, not a run after its worker died (a stall).
 * Stepping aside for a fleet permit is neither. Only later runs look for traces of an
 * earlier one, so a first run costs no extra virsh calls.
 */
export function isFirstTry(job: Job): boolean {
  return job.attemptsMade === 0 && (job.stalledCounter ?? 0) === 0;
}

/**
 * The target an earlier run of this job recorded just before acting. A job BullMQ hands
 * out again (after a stall or a failed attempt) carries its progress as the JSON text
 * stored in Redis, not as the object the earlier run passed to `updateProgress`.
 */
export function previousTarget(job: Job): SnapshotInfo | undefined {
  let raw: unknown = job.progress;
  if (typeof raw === 'string') {
    try {
      raw = JSON.parse(raw);
    } catch {
      return undefined;
    }
  }
  const progress = jobProgressSchema.safeParse(raw);
  return progress.success ? progress.data.target : undefined;
}

/**
 * The target an earlier run of a job recorded, for the job's current run. Its progress
 * reports carry it on, so a run that dies before reaching its own target report does
 * not erase what the run before it did.
 */
export const earlierTargets = new WeakMap<Job, SnapshotInfo>();

export async function reportProgress(job: Job, progress: JobProgress): Promise<void> {
  const target = progress.target ?? earlierTargets.get(job);
  await job.updateProgress(target ? { ...progress, target } : progress);
}
