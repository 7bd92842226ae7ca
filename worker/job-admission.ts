import type { Job } from 'bullmq';
import type { RedisClient } from '../shared/redis.js';
import { SnapbotError } from '../shared/errors.js';
import { checkJobSignature, SIGNED_KINDS } from '../shared/job-signing.js';
import type { SnapshotJob } from '../shared/jobs.js';
import { AUDIT_MAX_ENTRIES, auditKeys, signedJobKeys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import type { SignatureVerifier } from '../shared/signing.js';

/** How long a job id or an approval stays remembered after its signature expired. */
const LEDGER_RETENTION_MS = 7 * 24 * 3600_000;
/** The in-process memory of jobs seen, for when someone empties the Redis ledger. */
const LOCAL_LEDGER_MAX = 50_000;

/**
 * Decides whether this worker may run a job that changes a VM: signed by its authority
 * for this job id (nothing changed since), not expired when first seen, not a replay (a
 * job id or an approval already run as another job). A refusal is FORBIDDEN, permanent,
 * audited, and happens before any lock is taken or virsh is called.
 *
 * A job BullMQ hands out again (a retry, a stall after a crash) keeps its id and its
 * BullMQ timestamp: that is the same job, and it may finish even after its expiry. A job
 * added again under the same id later gets a new timestamp: that is a replay.
 */
export class JobAdmission {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly options: { verifier: SignatureVerifier; redis: RedisClient; prefix: string; hostId: string; logger: Logger },
  ) {}

  async admit(job: Job, request: SnapshotJob): Promise<void> {
    if (!SIGNED_KINDS.has(request.kind)) return;
    const jobId = job.id ?? '';
    const check = checkJobSignature(this.options.verifier, jobId, request);
    if (!check.ok) return this.refuse(request, jobId, check.reason);

    const instance = job.timestamp;
    const known = this.seen.get(jobId);
    if (known !== undefined && known !== instance) return this.refuse(request, jobId, `job id ${jobId} already ran as another job (a replay)`);
    const keys = signedJobKeys(this.options.prefix);
    const retentionMs = Math.max(check.expiresAt - Date.now(), 0) + LEDGER_RETENTION_MS;
    const first = (await this.options.redis.set(keys.job(jobId), String(instance), 'PX', retentionMs, 'NX')) === 'OK';
    if (!first) {
      const recorded = await this.options.redis.get(keys.job(jobId));
      if (recorded !== null && recorded !== String(instance)) return this.refuse(request, jobId, `job id ${jobId} already ran as another job (a replay)`);
    } else if (known === undefined && Date.now() > check.expiresAt) {
      return this.refuse(request, jobId, `its signature expired at ${new Date(check.expiresAt).toISOString()} before a worker took it; ask again`);
    }
    if (check.approvalId !== undefined) {
      const claimed = await this.options.redis.set(keys.approval(check.approvalId), jobId, 'PX', retentionMs, 'NX');
      if (claimed !== 'OK') {
        const holder = await this.options.redis.get(keys.approval(check.approvalId));
        if (holder !== null && holder !== jobId) return this.refuse(request, jobId, `approval ${check.approvalId} was already carried out by job ${holder}`);
      }
    }
    this.remember(jobId, instance);
  }

  /** Whether the job carries its authority's signature (expiry and replay aside): for settling records of jobs that ran before. */
  isSigned(jobId: string, request: SnapshotJob): boolean {
    return checkJobSignature(this.options.verifier, jobId, request).ok;
  }

  private remember(jobId: string, instance: number): void {
    if (this.seen.size >= LOCAL_LEDGER_MAX) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(jobId, instance);
  }

  private async refuse(request: SnapshotJob, jobId: string, reason: string): Promise<never> {
    const { redis, prefix, hostId, logger } = this.options;
    logger.warn({ jobId, kind: request.kind, vm: request.vm, reason }, 'refused a job its authority did not sign');
    const entry = {
      event: 'refused',
      actor: `worker:${hostId}`,
      action: request.kind,
      host: hostId,
      vm: request.vm,
      ...('name' in request ? { snapshot: request.name } : {}),
      jobId,
      detail: `not run: ${reason}; it claimed to come from ${request.requestedBy}`,
      at: new Date().toISOString(),
    };
    await redis
      .xadd(auditKeys(prefix).stream, 'MAXLEN', '~', String(AUDIT_MAX_ENTRIES), '*', 'entry', JSON.stringify(entry))
      .catch((error: unknown) => logger.error({ err: error, audit: entry }, 'audit entry not written'));
    throw new SnapbotError('FORBIDDEN', `Host ${hostId} refused the ${request.kind} of ${request.vm}: ${reason}. Nothing was done.`, { permanent: true });
  }
}
