import { describe, expect, it } from 'vitest';
import { decodeFailedReason, encodeFailedReason, ERROR_CODES, ERROR_SENTENCES, isErrorCode, SnapbotError, toErrorPayload } from '../../../shared/errors.js';

describe('error codes', () => {
  it('has a sentence for every code in DESIGN.md, plus REDIS_UNAVAILABLE, CONTROL_UNAVAILABLE, APPROVAL_STALE, CANCELLED, PARTIAL and NO_SPACE', () => {
    const designCodes = [
      'VALIDATION', 'FORBIDDEN', 'HOST_UNKNOWN', 'HOST_OFFLINE', 'DOMAIN_NOT_FOUND', 'SNAPSHOT_NOT_FOUND', 'SNAPSHOT_EXISTS',
      'UNSUPPORTED', 'HYPERVISOR_UNAVAILABLE', 'BUSY', 'TIMEOUT', 'APPROVAL_REQUIRED', 'APPROVAL_EXPIRED', 'INTERNAL',
    ]; // prettier-ignore
    expect([...ERROR_CODES].sort()).toEqual([...designCodes, 'REDIS_UNAVAILABLE', 'CONTROL_UNAVAILABLE', 'APPROVAL_STALE', 'CANCELLED', 'PARTIAL', 'NO_SPACE'].sort());
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
    // Retrying a space guard's refusal frees no space.
    expect(new SnapbotError('NO_SPACE').permanent).toBe(true);
    expect(new SnapbotError('TIMEOUT').permanent).toBe(true);
  });

  it('turns unknown errors into INTERNAL payloads', () => {
    expect(toErrorPayload(new TypeError('boom'))).toEqual({ code: 'INTERNAL', message: 'boom' });
  });
});

describe('SnapbotError', () => {
  it('says the code’s sentence when given no message of its own', () => {
    const error = new SnapbotError('HOST_OFFLINE');
    expect(error.message).toBe('That KVM host is offline: its worker has not sent a heartbeat recently.');
    expect(error.name).toBe('SnapbotError');
    expect(error).toBeInstanceOf(Error);
    expect(error.detail).toEqual({});
    expect(error.toPayload()).toEqual({ code: 'HOST_OFFLINE', message: 'That KVM host is offline: its worker has not sent a heartbeat recently.' });
  });

  it('keeps its own message, the detail for logs and the cause', () => {
    const cause = new Error('ECONNREFUSED');
    const error = new SnapbotError('REDIS_UNAVAILABLE', 'Redis at localhost:6379 refused', { detail: { url: 'redis://localhost' }, cause });
    expect(error.message).toBe('Redis at localhost:6379 refused');
    expect(error.detail).toEqual({ url: 'redis://localhost' });
    expect(error.cause).toBe(cause);
    expect(toErrorPayload(error)).toEqual({ code: 'REDIS_UNAVAILABLE', message: 'Redis at localhost:6379 refused' });
  });

  it('has no cause unless given one', () => {
    expect('cause' in new SnapbotError('INTERNAL')).toBe(false);
  });

  it('treats Redis being away as worth retrying too', () => {
    expect(new SnapbotError('REDIS_UNAVAILABLE').permanent).toBe(false);
    expect(new SnapbotError('INTERNAL').permanent).toBe(true);
    expect(new SnapbotError('FORBIDDEN').permanent).toBe(true);
  });

  it('lets the thrower say whether retrying helps', () => {
    expect(new SnapbotError('BUSY', undefined, { permanent: true }).permanent).toBe(true);
    expect(new SnapbotError('INTERNAL', undefined, { permanent: false }).permanent).toBe(false);
  });
});

describe('error codes are only the listed ones', () => {
  it('does not take what every object has for a code', () => {
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode('constructor')).toBe(false);
    expect(isErrorCode('BUSY')).toBe(true);
    expect(decodeFailedReason('toString: x')).toEqual({ code: 'INTERNAL', message: 'toString: x' });
  });
});

describe('failedReason decoding', () => {
  it('reads only a code at the very start', () => {
    expect(decodeFailedReason('Error: BUSY: the VM is busy')).toEqual({ code: 'INTERNAL', message: 'Error: BUSY: the VM is busy' });
    expect(decodeFailedReason(' BUSY: x').code).toBe('INTERNAL');
    expect(decodeFailedReason('BUSY:x').code).toBe('INTERNAL');
  });

  it('keeps the whole message, including an empty one', () => {
    expect(decodeFailedReason('TIMEOUT: ')).toEqual({ code: 'TIMEOUT', message: '' });
    expect(decodeFailedReason('BUSY: a: b\n\nc')).toEqual({ code: 'BUSY', message: 'a: b\n\nc' });
    expect(decodeFailedReason('HOST_OFFLINE: gone')).toEqual({ code: 'HOST_OFFLINE', message: 'gone' });
  });

  it('says "Internal error." when there is no reason at all', () => {
    expect(decodeFailedReason(undefined)).toEqual({ code: 'INTERNAL', message: 'Internal error.' });
    expect(decodeFailedReason('')).toEqual({ code: 'INTERNAL', message: 'Internal error.' });
  });

  it('encodes as "CODE: message"', () => {
    expect(encodeFailedReason({ code: 'BUSY', message: 'later' })).toBe('BUSY: later');
  });
});

describe('anything thrown', () => {
  it('becomes INTERNAL with its text', () => {
    expect(toErrorPayload('plain string')).toEqual({ code: 'INTERNAL', message: 'plain string' });
    expect(toErrorPayload(42)).toEqual({ code: 'INTERNAL', message: '42' });
    expect(toErrorPayload({ message: 'not an Error' })).toEqual({ code: 'INTERNAL', message: '[object Object]' });
  });
});
