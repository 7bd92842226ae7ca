import { describe, expect, it } from 'vitest';
import { expandSuggestedName, suggestFleetTargets, suggestionValueFor, suggestSnapshots, suggestVms } from '../../../../bot/core/suggest.js';
import type { HostStatus } from '../../../../shared/hosts.js';

const longSnapshot = `pre-upgrade-${'x'.repeat(100)}-a`; // 114 characters
const twin = `pre-upgrade-${'x'.repeat(100)}-b`; // same first 80 characters
const longVm = `vm-${'y'.repeat(190)}`;

function host(): HostStatus {
  const snapshot = (name: string) => ({ name, createdAt: '2026-11-01T00:00:00.000Z', location: 'internal' as const, memory: false, state: 'shutoff', current: false });
  return {
    hostId: 'kvm-a',
    online: true,
    vms: [
      { name: 'web-01', uuid: '6a7c0d3e-9a55-4c62-8d5c-2b8f0b8b6a01', state: 'running', snapshots: [snapshot(longSnapshot), snapshot(twin), snapshot('nightly')] },
      { name: longVm, uuid: '6a7c0d3e-9a55-4c62-8d5c-2b8f0b8b6a02', state: 'running', snapshots: [] },
    ],
  } as unknown as HostStatus;
}

describe('autocomplete values for names over 100 characters', () => {
  it('offers a name of 100 characters or fewer as itself', () => {
    expect(suggestionValueFor('nightly')).toBe('nightly');
    expect(suggestionValueFor('n'.repeat(100))).toBe('n'.repeat(100));
  });

  it('offers a longer name as a value within 100 characters that expands back to exactly that name', () => {
    const value = suggestionValueFor(longSnapshot);
    expect(value.length).toBeLessThanOrEqual(100);
    expect(expandSuggestedName(value, [twin, longSnapshot, 'nightly'])).toBe(longSnapshot);
    expect(expandSuggestedName(suggestionValueFor(twin), [longSnapshot, twin])).toBe(twin);
  });

  it('keeps a typed value that is a real name, even when it looks like an abbreviation', () => {
    const value = suggestionValueFor(longSnapshot);
    expect(expandSuggestedName(value, [longSnapshot, value])).toBe(value);
  });

  it('leaves an abbreviation of a name that is gone unchanged, so it fails as unknown', () => {
    const value = suggestionValueFor(longSnapshot);
    expect(expandSuggestedName(value, ['nightly'])).toBe(value);
  });

  it('suggests long VM and snapshot names with values Discord accepts', () => {
    const hosts = [host()];
    const vms = suggestVms(hosts, '');
    expect(vms.map((choice) => choice.value)).toContain(suggestionValueFor(longVm));
    const snapshots = suggestSnapshots(hosts, 'web-01', undefined, 'pre');
    expect(snapshots).toHaveLength(2);
    for (const choice of [...vms, ...snapshots]) {
      expect(choice.value.length).toBeLessThanOrEqual(100);
      expect(choice.label.length).toBeLessThanOrEqual(100);
    }
  });

  it('expands a long name with blanks inside it (libvirt allows them)', () => {
    const spaced = `pre upgrade of the ${'y'.repeat(100)}`;
    expect(expandSuggestedName(suggestionValueFor(spaced), [spaced])).toBe(spaced);
  });

  it('passes a plain typed name through untouched', () => {
    expect(expandSuggestedName('nightly', ['nightly', longSnapshot])).toBe('nightly');
    expect(expandSuggestedName('not-there', [])).toBe('not-there');
  });

  it('expands only a whole value of that form, not one that merely contains it', () => {
    const value = suggestionValueFor(longSnapshot);
    expect(expandSuggestedName(`x${value}`, [longSnapshot])).toBe(`x${value}`);
    expect(expandSuggestedName(`${value}x`, [longSnapshot])).toBe(`${value}x`);
  });

  it('offers no selector completion whose whole value would pass 100 characters', () => {
    const typed = `${'a'.repeat(95)} web`;
    expect(suggestFleetTargets([host()], typed)).toEqual([]);
    expect(suggestFleetTargets([host()], 'web').map((choice) => choice.value)).toContain('web-01');
  });
});
