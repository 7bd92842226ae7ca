import { beforeEach, describe, expect, it } from 'vitest';
import {
  checkJobSignature,
  FLEET_JOB_SIGNATURE_TTL_MS,
  JOB_SIGNATURE_DOMAIN,
  JOB_SIGNATURE_TTL_MS,
  signJob,
} from '../../../shared/job-signing.js';
import type { SnapshotJob } from '../../../shared/jobs.js';
import { Signer } from '../../../shared/signing.js';

// Keys are made in beforeEach, not at the top of the file: a key that cannot be made must
// fail a test, not the file's collection (Stryker counts only failed tests).
let authority: Signer;
beforeEach(() => {
  authority = Signer.generate();
});

const remove: SnapshotJob = {
  kind: 'delete',
  host: 'kvm-a',
  vm: 'web-01',
  requestedBy: 'discord:1',
  name: 'nightly',
  expected: { createdAt: '2026-01-01T00:00:00.000Z' },
};
const revert: SnapshotJob = {
  kind: 'revert',
  host: 'kvm-a',
  vm: 'web-01',
  requestedBy: 'discord:1',
  name: 'base',
  expected: { createdAt: '2026-01-01T00:00:00.000Z' },
};

describe('signJob', () => {
  it('signs a delete, and a worker refuses a delete that carries no signature', () => {
    const signed = signJob(authority, 'job-1', remove);
    expect(signed.auth).toMatchObject({ keyId: authority.keyId, signature: expect.stringMatching(/^[A-Za-z0-9_-]{86}$/) });
    expect(checkJobSignature(authority, 'job-1', signed)).toMatchObject({ ok: true });
    expect(checkJobSignature(authority, 'job-1', remove)).toEqual({
      ok: false,
      reason: 'the delete job carries no signature: only the control process may queue it',
    });
  });

  it('signs under the snapbot-job/v1 purpose: the job id, the job without its auth, and the key, expiry and approval', () => {
    const signed = signJob(authority, 'job-2', revert, { expiresAt: 5_000, approvalId: 'feed' });
    expect(JOB_SIGNATURE_DOMAIN).toBe('snapbot-job/v1');
    const covered = { jobId: 'job-2', job: revert, auth: { keyId: authority.keyId, expiresAt: 5_000, approvalId: 'feed' } };
    expect(authority.verify('snapbot-job/v1', covered, signed.auth!.signature)).toBe(true);
    // The same value signed for another purpose (an approval vote) is not a job signature.
    const vote = authority.sign('snapbot-approval-vote/v1', covered);
    expect(checkJobSignature(authority, 'job-2', { ...signed, auth: { ...signed.auth!, signature: vote } })).toMatchObject({ ok: false });
  });

  it('gives a single job an hour to start, and a fleet run a day', () => {
    const before = Date.now();
    const signed = signJob(authority, 'job-3', remove);
    expect(signed.auth!.expiresAt).toBeGreaterThanOrEqual(before + 60 * 60_000);
    expect(signed.auth!.expiresAt).toBeLessThanOrEqual(Date.now() + 60 * 60_000);
    expect(JOB_SIGNATURE_TTL_MS).toBe(3_600_000);
    expect(FLEET_JOB_SIGNATURE_TTL_MS).toBe(86_400_000);
  });

  it("refuses, as an internal error, to sign a revert that does not say which snapshot (its creation time)", () => {
    expect(() => signJob(authority, 'job-4', { ...revert, expected: undefined } as unknown as SnapshotJob)).toThrow(
      expect.objectContaining({ code: 'INTERNAL', message: "A revert of web-01 must carry the snapshot's creation time before it is signed." }),
    );
  });
});
