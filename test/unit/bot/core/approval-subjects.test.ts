import { describe, expect, it } from 'vitest';

// The module is imported inside each test, not at the top: a schema that cannot be built
// then fails a test by name instead of the file's collection (docs/TESTING.md).
const load = () => import('../../../../bot/core/approvals.js');

const snapshot = {
  kind: 'snapshot',
  action: 'delete',
  host: 'kvm-a',
  vm: 'web-01',
  uuid: '6a7c0d3e-9a55-4c62-8d5c-2b8f0b8b6a01',
  snapshot: { name: 'old', createdAt: '2026-11-01T00:00:00.000Z', state: 'shutoff', location: 'internal', memory: false, parent: null, current: false, description: null, jobId: null },
  undoPoint: null,
  jobId: 'approval-0123456789abcdef',
};
const fleet = { kind: 'fleet', runId: 'abcdef000001', action: 'snapshot', selector: 'host:kvm-a', name: 'pre-patch', targets: 12 };
const schedule = { kind: 'schedule', name: 'nightly', version: 2, digest: 'ab'.repeat(32), target: 'vm:web-*', cadence: 'every 1d', keep: 'last=7', vms: 3 };

describe('what an approval request can be about', () => {
  it('reads back every kind of subject whole: a snapshot revert or delete, a fleet snapshot or delete, a schedule', async () => {
    const { approvalSubjectSchema } = await load();
    for (const subject of [snapshot, { ...snapshot, action: 'revert', undoPoint: { mode: 'full', keep: 3 } }, fleet, { ...fleet, action: 'delete' }, schedule]) {
      expect(approvalSubjectSchema.parse(subject)).toEqual(subject);
    }
  });

  it('refuses a subject of no known kind, or an action its kind does not have', async () => {
    const { approvalSubjectSchema } = await load();
    for (const subject of [{ ...snapshot, kind: 'vm' }, { ...snapshot, action: 'create' }, { ...fleet, action: 'revert' }, { ...schedule, version: 1.5 }]) {
      expect(approvalSubjectSchema.safeParse(subject).success).toBe(false);
    }
  });

  it('reads back a request opened in Discord or from snapctl', async () => {
    const { approvalRequestSchema } = await load();
    const request = {
      id: '0123456789abcdef',
      subject: fleet,
      requester: { id: 'snapctl:ops@host', userId: null, displayName: 'ops' },
      origin: 'snapctl',
      reason: 'fleet runs over 10 VMs need approval',
      requestedAt: '2026-11-30T02:00:00.000Z',
      expiresAt: '2026-11-30T02:15:00.000Z',
      required: 1,
      allowSelfApproval: false,
      approvers: ['@administrators'],
    };
    expect(approvalRequestSchema.parse(request)).toEqual(request);
    expect(approvalRequestSchema.parse({ ...request, origin: 'discord' }).origin).toBe('discord');
    expect(approvalRequestSchema.safeParse({ ...request, origin: 'email' }).success).toBe(false);
  });
});
