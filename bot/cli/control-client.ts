import { Job, Queue, QueueEvents } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { CONTROL_QUEUE, CONTROL_REQUEST_DOMAIN, controlProgressSchema, type ControlOperation, type ControlProgress, type ControlRequest } from '../../shared/control.js';
import { decodeFailedReason, SnapbotError } from '../../shared/errors.js';
import { controlKeys } from '../../shared/keys.js';
import { bullmqConnection, isClusterUrl, redactRedisUrl } from '../../shared/redis.js';
import type { Signer } from '../../shared/signing.js';
import type { SnapbotCore } from '../core/core.js';

/** The control process answers within the request's own timeout; this much more covers the queue. */
const ANSWER_GRACE_MS = 15_000;

/**
 * Sends one signed request to the control process and waits for its answer. A failure
 * comes back as the SnapbotError the control process raised (FORBIDDEN when it did not
 * trust the request; the operation's own code otherwise).
 */
export async function callControl(
  core: SnapbotCore,
  signer: Signer,
  operation: ControlOperation,
  options: { timeoutMs: number; onProgress?: (progress: ControlProgress) => void },
): Promise<unknown> {
  if ((await core.redis.exists(controlKeys(core.prefix).alive)) !== 1) {
    throw new SnapbotError('CONTROL_UNAVAILABLE', 'No control process is running to take this change: start `npm run bot` (or `npm start`) against the same Redis. Nothing was done.');
  }
  const connection = bullmqConnection(core.options.redisUrl);
  // The Queue only adds: snapctl's own connection does (a Cluster given to a Queue stays the caller's to close).
  const queue = new Queue(CONTROL_QUEUE, { connection: isClusterUrl(core.options.redisUrl) ? core.redis : connection, prefix: core.prefix });
  // From a little before now: the first progress (the host job queued) may come before this reader's first read.
  const events = new QueueEvents(CONTROL_QUEUE, { connection, prefix: core.prefix, lastEventId: `${Date.now() - 5_000}-0` });
  const request: ControlRequest = {
    v: 1,
    keyId: signer.keyId,
    nonce: randomBytes(16).toString('hex'),
    issuedAt: Date.now(),
    timeoutMs: options.timeoutMs,
    operation,
  };
  const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) => {
    if (jobId !== request.nonce) return;
    const parsed = controlProgressSchema.safeParse(data);
    if (parsed.success) options.onProgress?.(parsed.data);
  };
  events.on('progress', onProgress);
  try {
    await events.waitUntilReady();
    const job = await queue
      .add(operation.op, { request, signature: signer.sign(CONTROL_REQUEST_DOMAIN, request) }, { jobId: request.nonce, attempts: 1, removeOnComplete: { age: 3600 }, removeOnFail: { age: 24 * 3600 } })
      .catch((error: unknown) => {
        throw new SnapbotError('REDIS_UNAVAILABLE', `Redis at ${redactRedisUrl(core.options.redisUrl)} (REDIS_URL) failed: ${error instanceof Error ? error.message : String(error)}`);
      });
    try {
      return await job.waitUntilFinished(events, options.timeoutMs + ANSWER_GRACE_MS);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (message.startsWith('Job wait')) throw await unanswered(job, options.timeoutMs);
      if (/stalled more than allowable limit/.test(message)) {
        throw new SnapbotError(
          'CONTROL_UNAVAILABLE',
          `The control process stopped while working on this request (${request.nonce}). An approval request it opened stays open, and an approved action still runs: check with snapctl audit.`,
        );
      }
      const failure = decodeFailedReason(message);
      throw new SnapbotError(failure.code, failure.message);
    }
  } finally {
    events.off('progress', onProgress);
    await Promise.allSettled([events.close(), queue.close()]);
  }
}

/** No answer in time: a request no control process took is withdrawn, so it never runs later. */
async function unanswered(job: Job, timeoutMs: number): Promise<SnapbotError> {
  const state = await job.getState().catch(() => 'unknown');
  if (state === 'waiting' || state === 'delayed' || state === 'prioritized') {
    if (await job.remove().then(() => true, () => false)) {
      return new SnapbotError('CONTROL_UNAVAILABLE', `No control process took the request within ${Math.round(timeoutMs / 1000)}s; it was withdrawn and nothing was done.`);
    }
  }
  return new SnapbotError('TIMEOUT', `The control process did not answer within ${Math.round(timeoutMs / 1000)}s (request ${job.id}, ${state}); the change may still complete: check with snapctl list or snapctl audit.`);
}
