import { describe, expect, it } from 'vitest';
import { suggestFleetSnapshotNames, suggestFleetTargets } from '../../../../bot/core/suggest.js';
import { fleetMatcher, parseFleetSelector } from '../../../../shared/fleet.js';
import type { HostStatus } from '../../../../shared/hosts.js';

function host(hostId: string, vms: Array<[string, string[]]>, online = true): HostStatus {
  return {
    hostId, online, libvirtUri: 'qemu:///system', libvirtVersion: '9.0.0', qemuVersion: '7.2.0',
    capabilities: { externalRevert: false, externalDelete: true }, inventoryAt: null, inventoryError: null,
    concurrency: 4, startedAt: '2026-11-28T00:00:00.000Z', lastSeen: '2026-11-28T00:00:00.000Z', workerVersion: '0.1.0',
    vms: vms.map(([name, snapshots]) => ({ name, uuid: `uuid-${name}`, state: 'running', snapshots: snapshots.map((snapshot) => ({ name: snapshot, location: 'external' as const })) })),
  }; // prettier-ignore
}

const HOSTS = [
  host('kvm-a', [['web-01', ['pre-rollout', 'nightly']], ['db-01', ['nightly']]]),
  host('kvm-b', [['web-02', ['pre-rollout']], ['web-01', []]], false),
];

describe('fleet selector autocomplete', () => {
  it('offers all, hosts and VM names for the word being typed', () => {
    expect(suggestFleetTargets(HOSTS, '').map((choice) => choice.value)).toEqual(['all', 'db-01', 'host:kvm-a', 'host:kvm-b', 'web-01', 'web-02']);
    expect(suggestFleetTargets(HOSTS, 'web')).toEqual([
      { label: 'web-01 — VM on 2 hosts', value: 'web-01' },
      { label: 'web-02 — VM', value: 'web-02' },
    ]);
  });

  it('keeps the words typed before, and completes exclusions', () => {
    expect(suggestFleetTargets(HOSTS, 'web-* !kvm-b').map((choice) => choice.label)).toEqual(['web-* !host:kvm-b — leave out 2 VMs, offline']);
    expect(suggestFleetTargets(HOSTS, 'all,!db').map((choice) => choice.value)).toEqual(['all,!db-01']);
  });
});

describe('fleet snapshot name autocomplete', () => {
  it('offers the names the selected VMs hold, with how many hold each', () => {
    const matches = fleetMatcher(parseFleetSelector('web-*'));
    expect(suggestFleetSnapshotNames(HOSTS, matches, '')).toEqual([
      { label: 'nightly (1 VM)', value: 'nightly' },
      { label: 'pre-rollout (2 VMs)', value: 'pre-rollout' },
    ]);
  });
});
