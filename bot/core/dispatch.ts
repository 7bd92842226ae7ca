import { Job } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { decodeFailedReason, SnapbotError } from '../../shared/errors.js';
import {
  jobProgressSchema,
  jobResultSchema,
  snapshotJobSchema,
  type JobProgress,
  type JobResult,
  type ResultOf,
  type SnapshotJob,
} from '../../shared/jobs.js';
import { SIGNED_KINDS, signJob } from '../../shared/job-signing.js';
import { JOB_ATTEMPTS, JOB_BACKOFF, JOB_RETENTION } from '../../shared/queues.js';
import { redactRedisUrl } from '../../shared/redis.js';
import type { SnapbotCore } from './core.js';


export interface RunJobOptions {
  /** How long to wait for the result. */
  timeoutMs: number;
  /**
   * A fixed job id makes enqueueing idempotent: BullMQ ignores a second add with an id
   * that exists. Approved actions use one, so a retried enqueue never runs twice.
   */
  jobId?: string;
  /** The approval request this job carries out: a worker runs one job per approval. */
  approvalId?: string;
  /** Called when the job is queued (with its id) and each time the worker reports progress. */
  onQueued?: (jobId: string) => void;
  onProgress?: (progress: JobProgress) => void;
}

/**
 * Puts one job on its host's queue and waits for the worker's answer. The job is
 * parsed against the shared contract before it is enqueued. Failures come back as
 * SnapbotErrors with the worker's code.
 */
export async function runJob<J extends SnapshotJob>(
  core: SnapbotCore,
  request: J,
  options: RunJobOptions,
): Promise<ResultOf<J['kind']>> {
  const jobId = options.jobId ?? randomUUID();
  // Signed for this job id: a worker runs a create, revert or delete only with the authority's signature.
  const parsed = snapshotJobSchema.parse(request);
  const data = SIGNED_KINDS.has(parsed.kind) ? signJob(core.signer, jobId, parsed, { approvalId: options.approvalId }) : parsed;
  const events = await withRedisErrors(core, () => core.eventsFor(data.host));
  const onProgress = ({ jobId: id, data: progress }: { jobId: string; data: unknown }) => {
    if (id !== jobId) return;
    const parsed = jobProgressSchema.safeParse(progress);
    if (parsed.success) options.onProgress?.(parsed.data);
  };
  events.on('progress', onProgress);
  try {
    const job = await withRedisErrors(core, () =>
      core.queueFor(data.host).add(data.kind, data, {
        jobId,
        attempts: JOB_ATTEMPTS,
        backoff: JOB_BACKOFF,
        ...JOB_RETENTION,
      }),
    );
    options.onQueued?.(jobId);
    let returned: unknown;
    try {
      returned = await job.waitUntilFinished(events, options.timeoutMs);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (message.startsWith('Job wait')) throw await timeoutError(job, data, options.timeoutMs);
      const failure = decodeFailedReason(message);
      throw new SnapbotError(failure.code, failure.message, { detail: { jobId } });
    }
    const result = jobResultSchema.parse(returned);
    if (result.kind !== data.kind) throw new SnapbotError('INTERNAL', `Worker answered a ${data.kind} job with a ${result.kind} result.`);
    return result as ResultOf<J['kind']>;
  } finally {
    events.off('progress', onProgress);
  }
}

/**
 * The caller stopped waiting. A job that has not started is removed, so nothing runs
 * behind the operator's back later; a running one is left to finish and said so.
 */
async function timeoutError(job: Job, data: SnapshotJob, timeoutMs: number): Promise<SnapbotError> {
  const seconds = Math.round(timeoutMs / 1000);
  const state = await job.getState().catch(() => 'unknown');
  if (state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'waiting-children') {
    const removed = await job.remove().then(
      () => true,
      () => false,
    );
    if (removed) {
      return new SnapbotError('TIMEOUT', `Host ${data.host} did not start the ${data.kind} of ${data.vm} within ${seconds}s; it was taken off the queue and nothing was done.`, {
        detail: { jobId: job.id },
      });
    }
  }
  return new SnapbotError(
    'TIMEOUT',
    `The ${data.kind} of ${data.vm} on ${data.host} did not finish within ${seconds}s (job ${job.id}, ${state}); it may still complete on the host.`,
    { detail: { jobId: job.id } },
  );
}

async function withRedisErrors<T>(core: SnapbotCore, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof SnapbotError) throw error;
    throw new SnapbotError(
      'REDIS_UNAVAILABLE',
      `Redis at ${redactRedisUrl(core.options.redisUrl)} (REDIS_URL) failed: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

/**
 * Waits for a job someone else enqueued (an approved action, run by whichever bot took
 * the deciding click). The job may not exist yet when this starts.
 */
export async function waitForJob(core: SnapbotCore, hostId: string, jobId: string, timeoutMs: number): Promise<JobResult> {
  const deadline = Date.now() + timeoutMs;
  const events = await withRedisErrors(core, () => core.eventsFor(hostId));
  const queue = core.queueFor(hostId);
  let job = await Job.fromId(queue, jobId);
  while (!job) {
    if (Date.now() > deadline) throw new SnapbotError('TIMEOUT', `Job ${jobId} was not queued on ${hostId} within ${Math.round(timeoutMs / 1000)}s.`);
    await new Promise((resolve) => setTimeout(resolve, 250));
    job = await Job.fromId(queue, jobId);
  }
  try {
    return jobResultSchema.parse(await job.waitUntilFinished(events, Math.max(1, deadline - Date.now())));
  } catch (error) {
    if (error instanceof SnapbotError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    if (message.startsWith('Job wait')) throw new SnapbotError('TIMEOUT', `Job ${jobId} on ${hostId} did not finish in time; it may still complete.`);
    const failure = decodeFailedReason(message);
    throw new SnapbotError(failure.code, failure.message, { detail: { jobId } });
  }
}
