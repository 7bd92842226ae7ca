import { describe, expect, it } from 'vitest';
import { snapshotJobSchema, splitJobMarker, withJobMarker } from '../../../shared/jobs.js';
import { capabilitiesForLibvirt, versionAtLeast } from '../../../shared/hosts.js';

describe('the job contract', () => {
  const base = { host: 'kvm-a', vm: 'web-01', requestedBy: 'snapctl:root@x' };

  it('accepts a create job and defaults nothing silently', () => {
    const parsed = snapshotJobSchema.parse({ ...base, kind: 'create', name: 'pre-upgrade', mode: 'disk-only' });
    expect(parsed).toEqual({ ...base, kind: 'create', name: 'pre-upgrade', mode: 'disk-only' });
  });

  it('refuses an unknown kind, a bad mode and a bad name', () => {
    expect(snapshotJobSchema.safeParse({ ...base, kind: 'format' }).success).toBe(false);
    expect(snapshotJobSchema.safeParse({ ...base, kind: 'create', name: 'x', mode: 'memory' }).success).toBe(false);
    expect(snapshotJobSchema.safeParse({ ...base, kind: 'revert', name: 'a/b' }).success).toBe(false);
  });

  it('refuses a host id that cannot be a queue name', () => {
    expect(snapshotJobSchema.safeParse({ ...base, host: 'a:b', kind: 'list' }).success).toBe(false);
  });
});

describe('the job marker in descriptions', () => {
  it('round-trips a description and the job id', () => {
    const raw = withJobMarker('before apt upgrade', '0b7e-11');
    expect(raw).toBe('before apt upgrade\n[snapbot job 0b7e-11]');
    expect(splitJobMarker(raw)).toEqual({ description: 'before apt upgrade', jobId: '0b7e-11', scheduleId: null });
  });

  it('handles snapshots without a description or without a marker', () => {
    expect(splitJobMarker(withJobMarker(undefined, 'j1'))).toEqual({ description: null, jobId: 'j1', scheduleId: null });
    expect(splitJobMarker('made by hand')).toEqual({ description: 'made by hand', jobId: null, scheduleId: null });
    expect(splitJobMarker(null)).toEqual({ description: null, jobId: null, scheduleId: null });
  });

  it('carries the schedule that made a snapshot, which retention prunes by', () => {
    const raw = withJobMarker('nightly', 'repeat:nightly:1', 'nightly');
    expect(raw).toBe('nightly\n[snapbot job repeat:nightly:1 schedule nightly]');
    expect(splitJobMarker(raw)).toEqual({ description: 'nightly', jobId: 'repeat:nightly:1', scheduleId: 'nightly' });
  });

  it('does not read a schedule out of a description that only mentions one', () => {
    // Only the marker at the very end counts; text typed by a person before it is description.
    const typed = 'see [snapbot job x schedule nightly] for why';
    expect(splitJobMarker(typed)).toEqual({ description: typed, jobId: null, scheduleId: null });
    expect(splitJobMarker(withJobMarker('[snapbot job x schedule other]', 'j3'))).toEqual({ description: '[snapbot job x schedule other]', jobId: 'j3', scheduleId: null });
  });

  it('keeps multi-line descriptions whole', () => {
    const raw = withJobMarker('line one\nline two', 'j2');
    expect(splitJobMarker(raw)).toEqual({ description: 'line one\nline two', jobId: 'j2', scheduleId: null });
  });
});

describe('capabilities', () => {
  it('compares versions numerically', () => {
    expect(versionAtLeast('9.10.0', '9.9.0')).toBe(true);
    expect(versionAtLeast('9.0.0', '9.9.0')).toBe(false);
    expect(versionAtLeast(null, '1.0.0')).toBe(false);
  });

  it('knows that libvirt 9.0 deletes but cannot revert external snapshots', () => {
    expect(capabilitiesForLibvirt('9.0.0')).toEqual({ externalRevert: false, externalDelete: true });
    expect(capabilitiesForLibvirt('11.3.0')).toEqual({ externalRevert: true, externalDelete: true });
    expect(capabilitiesForLibvirt('8.0.0')).toEqual({ externalRevert: false, externalDelete: false });
  });
});
