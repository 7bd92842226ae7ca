import { describe, expect, it } from 'vitest';
import { decodeFailedReason, encodeFailedReason, ERROR_CODES, ERROR_SENTENCES, SnapbotError, toErrorPayload } from '../../shared/errors.js';

describe('error codes', () => {
  it('has a sentence for every code in DESIGN.md, plus REDIS_UNAVAILABLE, APPROVAL_STALE, CANCELLED and PARTIAL', () => {
    const designCodes = [
      'VALIDATION', 'FORBIDDEN', 'HOST_UNKNOWN', 'HOST_OFFLINE', 'DOMAIN_NOT_FOUND', 'SNAPSHOT_NOT_FOUND', 'SNAPSHOT_EXISTS',
      'UNSUPPORTED', 'HYPERVISOR_UNAVAILABLE', 'BUSY', 'TIMEOUT', 'APPROVAL_REQUIRED', 'APPROVAL_EXPIRED', 'INTERNAL',
    ]; // prettier-ignore
    expect([...ERROR_CODES].sort()).toEqual([...designCodes, 'REDIS_UNAVAILABLE', 'APPROVAL_STALE', 'CANCELLED', 'PARTIAL'].sort());
    for (const code of ERROR_CODES) expect(ERROR_SENTENCES[code]).toMatch(/\.$|\)$/);
  });

  it('carries the code through a BullMQ failedReason and back', () => {
    const reason = encodeFailedReason({ code: 'SNAPSHOT_EXISTS', message: "Snapshot 'x' already exists:\nsecond line" });
    expect(decodeFailedReason(reason)).toEqual({ code: 'SNAPSHOT_EXISTS', message: "Snapshot 'x' already exists:\nsecond line" });
  });

  it('treats a reason without a known code as internal', () => {
    expect(decodeFailedReason('job stalled more than allowable limit')).toEqual({
      code: 'INTERNAL',
      message: 'job stalled more than allowable limit',
    });
    expect(decodeFailedReason('NOT_A_CODE: text').code).toBe('INTERNAL');
  });

  it('marks transient codes as retryable and the rest as permanent', () => {
    expect(new SnapbotError('HYPERVISOR_UNAVAILABLE').permanent).toBe(false);
    expect(new SnapbotError('BUSY').permanent).toBe(false);
    expect(new SnapbotError('DOMAIN_NOT_FOUND').permanent).toBe(true);
    expect(new SnapbotError('TIMEOUT').permanent).toBe(true);
  });

  it('turns unknown errors into INTERNAL payloads', () => {
    expect(toErrorPayload(new TypeError('boom'))).toEqual({ code: 'INTERNAL', message: 'boom' });
  });
});
