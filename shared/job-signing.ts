import { SnapbotError } from './errors.js';
import type { JobKind, SnapshotJob } from './jobs.js';
import type { SignatureVerifier, Signer } from './signing.js';

/**
 * The signature on a job. The control process signs every job that changes a VM over
 * its BullMQ job id and everything in the job (host, VM, UUID, snapshot name, mode,
 * expected creation time, undo point, fleet run, who asked), plus the approval it
 * carries out and an expiry. A worker runs such a job only when the signature is its
 * authority's and covers exactly this job under exactly this id: a job added by anyone
 * else who can write to Redis, or changed on its way, is refused (FORBIDDEN).
 */
export const JOB_SIGNATURE_DOMAIN = 'snapbot-job/v1';

/** Jobs that change a VM. list and info only read and need no signature. */
export const SIGNED_KINDS: ReadonlySet<JobKind> = new Set<JobKind>(['create', 'revert', 'delete']);

/** A single operation must start within this long after it was signed. */
export const JOB_SIGNATURE_TTL_MS = 60 * 60_000;
/** A fleet run's targets may wait behind each other (and offline hosts) this long. */
export const FLEET_JOB_SIGNATURE_TTL_MS = 24 * 60 * 60_000;

type Unsigned<J extends SnapshotJob> = Omit<J, 'auth'>;

function signedValue(jobId: string, job: Unsigned<SnapshotJob>, auth: { keyId: string; expiresAt: number; approvalId?: string | undefined }) {
  const { auth: _ignored, ...fields } = job as SnapshotJob;
  return { jobId, job: fields, auth: { keyId: auth.keyId, expiresAt: auth.expiresAt, approvalId: auth.approvalId } };
}

export interface SignJobOptions {
  /** Milliseconds since the epoch; default now + JOB_SIGNATURE_TTL_MS. */
  expiresAt?: number;
  approvalId?: string | undefined;
}

/** The job with its `auth` set. A revert must say which snapshot it means (its creation time). */
export function signJob<J extends SnapshotJob>(signer: Signer, jobId: string, job: J, options: SignJobOptions = {}): J {
  if (!SIGNED_KINDS.has(job.kind)) return job;
  if (job.kind === 'revert' && !job.expected) {
    throw new SnapbotError('INTERNAL', `A revert of ${job.vm} must carry the snapshot's creation time before it is signed.`);
  }
  const auth = { keyId: signer.keyId, expiresAt: options.expiresAt ?? Date.now() + JOB_SIGNATURE_TTL_MS, ...(options.approvalId ? { approvalId: options.approvalId } : {}) };
  const signature = signer.sign(JOB_SIGNATURE_DOMAIN, signedValue(jobId, job, auth));
  return { ...job, auth: { ...auth, signature } };
}

export type JobSignatureCheck = { ok: true; expiresAt: number; approvalId: string | undefined } | { ok: false; reason: string };

/**
 * Whether `job` (already parsed) is signed by `verifier`'s key for this job id. Expiry
 * and replay are the worker's to judge (it knows whether it has seen the job before).
 */
export function checkJobSignature(verifier: SignatureVerifier, jobId: string, job: SnapshotJob): JobSignatureCheck {
  if (!SIGNED_KINDS.has(job.kind)) return { ok: true, expiresAt: Number.POSITIVE_INFINITY, approvalId: undefined };
  const { auth } = job;
  if (!auth) return { ok: false, reason: `the ${job.kind} job carries no signature: only the control process may queue it` };
  if (auth.keyId !== verifier.keyId) return { ok: false, reason: `the job is signed by key ${auth.keyId}, not by this worker's authority (${verifier.keyId})` };
  if (!verifier.verify(JOB_SIGNATURE_DOMAIN, signedValue(jobId, job, auth), auth.signature)) {
    return { ok: false, reason: 'the signature does not match the job (changed after signing, or signed for another job id)' };
  }
  return { ok: true, expiresAt: auth.expiresAt, approvalId: auth.approvalId };
}
