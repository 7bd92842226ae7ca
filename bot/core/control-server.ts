import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { randomBytes } from 'node:crypto';
import {
  CONTROL_QUEUE,
  CONTROL_REQUEST_DOMAIN,
  CONTROL_REQUEST_MAX_AGE_MS,
  controlEnvelopeSchema,
  type ControlOperation,
  type ControlProgress,
  type ControlRequest,
} from '../../shared/control.js';
import { encodeFailedReason, SnapbotError } from '../../shared/errors.js';
import type { JobProgress } from '../../shared/jobs.js';
import { controlKeys } from '../../shared/keys.js';
import { bullmqConnectionOptions, createRedisClient, durableRedisOptions, isClusterUrl, redisOptionsFromUrl } from '../../shared/redis.js';
import { recordAudit } from './audit.js';
import type { SnapbotCore } from './core.js';
import { awaitFleetDecision, cancelFleet, confirmFleet, planFleet, planRetryOfFailed } from './fleet/index.js';
import { awaitFiring, createSchedule, deleteSchedule, pauseSchedule, resumeSchedule, runScheduleNow, upcomingFirings } from './schedules/manage.js';
import type { OperatorDirectory, TrustedOperator } from './operators.js';
import { awaitApprovedResult, requestDelete, requestRevert } from './snapshot-approvals.js';
import { createSnapshot } from './snapshots.js';

/**
 * The control process's door for snapctl: a BullMQ worker on the `control` queue. Each
 * request must be signed by an operator the control process trusts (the policy's
 * `operators`, or the checkout's own snapctl key when there is no policy file), fresh,
 * and new (its nonce is taken once); then it runs through the same core functions, with
 * the same policy, as a Discord command from that operator would. Anything else is
 * refused (FORBIDDEN) and audited; nothing is done.
 */

const ALIVE_TTL_MS = 15_000;
const ALIVE_EVERY_MS = 5_000;

export interface ControlServer {
  close(graceMs?: number): Promise<void>;
}

export async function startControlServer(core: SnapbotCore, options: { directory: OperatorDirectory; concurrency?: number }): Promise<ControlServer> {
  const keys = controlKeys(core.prefix);
  const url = core.options.redisUrl;
  // BullMQ makes (and closes) the connection from options; a Cluster it must be given as a
  // client, which a Worker leaves open: closed with the server.
  const cluster = isClusterUrl(url) ? createRedisClient(url, durableRedisOptions(url)) : undefined;
  const worker = new Worker(CONTROL_QUEUE, (job: Job) => handle(core, options.directory, job), {
    connection: cluster ?? bullmqConnectionOptions(redisOptionsFromUrl(url)),
    prefix: core.prefix,
    // Requests that wait for approvals hold a slot for as long as they wait.
    concurrency: options.concurrency ?? 64,
    // A request whose control process died is not run again behind its operator's back.
    maxStalledCount: 0,
    removeOnComplete: { age: 3600 },
    removeOnFail: { age: 24 * 3600 },
  });
  worker.on('error', (error) => core.logger.warn({ err: error.message }, 'control queue error'));
  await worker.waitUntilReady();
  const markAlive = () => core.redis.set(keys.alive, String(Date.now()), 'PX', ALIVE_TTL_MS).catch(() => undefined);
  await markAlive();
  const timer = setInterval(() => void markAlive(), ALIVE_EVERY_MS);
  core.logger.info({ queue: CONTROL_QUEUE }, 'taking snapctl requests');
  return {
    /**
     * Takes no new requests and gives running ones `graceMs` to finish. A request still
     * waiting then (for an approval, say) is dropped: its snapctl is told, and the
     * approval request itself stays open in Redis for the next control process.
     */
    async close(graceMs = 10_000) {
      clearInterval(timer);
      await core.redis.del(keys.alive).catch(() => undefined);
      let grace: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (grace = setTimeout(() => resolve('late'), graceMs)));
      if ((await Promise.race([worker.close().then(() => 'closed' as const), late])) === 'late') {
        core.logger.warn({ graceMs }, 'snapctl requests still running at shutdown; leaving them');
        await worker.close(true).catch(() => undefined);
      }
      clearTimeout(grace);
      cluster?.disconnect();
    },
  };
}

async function handle(core: SnapbotCore, directory: OperatorDirectory, job: Job): Promise<unknown> {
  const operator = await admit(core, directory, job);
  const request = (job.data as { request: ControlRequest }).request;
  const progress = (update: ControlProgress) => void job.updateProgress(update).catch(() => undefined);
  try {
    return await run(core, operator, request.operation, request.timeoutMs, progress);
  } catch (error) {
    // BullMQ keeps only the message: the code travels in it, as for host jobs. What is not
    // a SnapbotError is ours to explain: the operator gets a reference, the log the detail.
    if (error instanceof SnapbotError) throw new UnrecoverableError(encodeFailedReason(error.toPayload()));
    const reference = randomBytes(4).toString('hex');
    core.logger.error({ err: error, reference, op: request.operation.op, operator: operator.name }, 'snapctl request failed');
    throw new UnrecoverableError(encodeFailedReason({ code: 'INTERNAL', message: `Internal error in the control process (ref ${reference}); see its log.` }));
  }
}

/** The operator who signed this request, or a refusal (audited) when it is not genuine, fresh and new. */
async function admit(core: SnapbotCore, directory: OperatorDirectory, job: Job): Promise<TrustedOperator> {
  const refuse = async (reason: string, claimed?: string): Promise<never> => {
    core.logger.warn({ jobId: job.id, reason }, 'refused a snapctl request');
    await recordAudit(core, { event: 'refused', actor: claimed ?? 'unknown', action: 'snapctl-request', detail: `not run: ${reason}` });
    throw new UnrecoverableError(encodeFailedReason({ code: 'FORBIDDEN', message: `The control process refused this request: ${reason}. Nothing was done.` }));
  };
  const envelope = controlEnvelopeSchema.safeParse(job.data);
  if (!envelope.success) return refuse('it is not a well-formed signed request');
  const { request, signature } = envelope.data;
  if (job.id !== request.nonce) return refuse('its job id is not the nonce it was signed with');
  const operator = directory.find(request.keyId);
  if (!operator) {
    return refuse(`key ${request.keyId} belongs to no operator in the policy (snapctl key prints yours; add it under operators)`, `key:${request.keyId}`);
  }
  if (!operator.verifier.verify(CONTROL_REQUEST_DOMAIN, request, signature)) return refuse('its signature does not match it', operator.actor.id);
  const age = Date.now() - request.issuedAt;
  if (Math.abs(age) > CONTROL_REQUEST_MAX_AGE_MS) {
    return refuse(`it was signed ${Math.round(age / 1000)}s from now (more than ${CONTROL_REQUEST_MAX_AGE_MS / 1000}s: a replay, or a clock far off)`, operator.actor.id);
  }
  const fresh = await core.redis.set(controlKeys(core.prefix).nonce(request.nonce), String(Date.now()), 'PX', 2 * CONTROL_REQUEST_MAX_AGE_MS, 'NX');
  if (fresh !== 'OK') return refuse('its nonce was used before (a replay)', operator.actor.id);
  return operator;
}

function jobCallbacks(timeoutMs: number, progress: (update: ControlProgress) => void) {
  return {
    timeoutMs,
    onQueued: (jobId: string, host: string) => progress({ type: 'queued', jobId, host }),
    onProgress: (update: JobProgress) => progress({ type: 'job', phase: update.phase, message: update.message }),
  };
}

async function run(core: SnapbotCore, operator: TrustedOperator, operation: ControlOperation, timeoutMs: number, progress: (update: ControlProgress) => void): Promise<unknown> {
  const { actor, requester } = operator;
  const say = (text: string) => progress({ type: 'say', text });
  switch (operation.op) {
    case 'create':
      return createSnapshot(
        core,
        { vm: operation.vm, host: operation.host, name: operation.name, mode: operation.mode, description: operation.description, requestedBy: actor.id, actor, origin: 'snapctl' },
        jobCallbacks(timeoutMs, progress),
      );
    case 'revert':
    case 'delete': {
      const ask = operation.op === 'revert' ? requestRevert : requestDelete;
      const outcome = await ask(
        core,
        {
          vm: operation.vm,
          host: operation.host,
          name: operation.name,
          requester,
          actor,
          origin: 'snapctl',
          breakGlass: operation.breakGlass === undefined ? undefined : { reason: operation.breakGlass },
        },
        jobCallbacks(timeoutMs, progress),
      );
      if (outcome.kind === 'done' || !operation.wait) return outcome;
      const pending = outcome.request;
      say(`Approval requested: ${pending.id}; needs ${pending.required} approval(s) from ${pending.approvers.join(', ')} by ${pending.expiresAt}. Waiting…`);
      const result = await awaitApprovedResult(core, pending, {
        timeoutMs,
        onApproved: (approvals) => say(`Approved by ${approvals} of ${pending.required}; running on ${pending.subject.host}…`),
      });
      return { kind: 'done', result };
    }
    case 'fleet-plan':
      return planFleet(core, {
        action: operation.action,
        target: operation.target,
        name: operation.name,
        mode: operation.mode,
        description: operation.description,
        requester,
        actor,
        origin: 'snapctl',
      });
    case 'fleet-retry':
      return planRetryOfFailed(core, operation.runId, requester, actor);
    case 'fleet-confirm': {
      const confirmed = await confirmFleet(core, operation.runId, actor);
      if (confirmed.kind === 'pending' && operation.wait) {
        say(`Approval requested for fleet run ${operation.runId}; waiting until ${confirmed.run.expiresAt}…`);
        const run = await awaitFleetDecision(core, operation.runId, { timeoutMs });
        return { kind: 'started', status: run.status, expiresAt: run.expiresAt };
      }
      return { kind: confirmed.kind, status: confirmed.run.status, expiresAt: confirmed.run.expiresAt };
    }
    case 'fleet-cancel': {
      const run = await cancelFleet(core, operation.runId, { id: actor.id, actor });
      return { status: run.status };
    }
    case 'schedule-create': {
      const { op: _op, ...input } = operation;
      const created = await createSchedule(core, input, { requester, actor, origin: 'snapctl' });
      return { ...created, next: upcomingFirings(created.schedule) };
    }
    case 'schedule-pause':
      return pauseSchedule(core, operation.name, { requester, actor, origin: 'snapctl' });
    case 'schedule-resume':
      return resumeSchedule(core, operation.name, { requester, actor, origin: 'snapctl' });
    case 'schedule-delete':
      await deleteSchedule(core, operation.name, { requester, actor, origin: 'snapctl' });
      return { deleted: operation.name };
    case 'schedule-run': {
      const jobId = await runScheduleNow(core, operation.name, { requester, actor, origin: 'snapctl' });
      if (!operation.wait) return { jobId, firing: null };
      say(`Firing ${operation.name} (${jobId})…`);
      return { jobId, firing: await awaitFiring(core, jobId, timeoutMs) };
    }
  }
}
