import { describe, expect, it } from 'vitest';
import type { Actor } from '../../../../bot/core/authorize.js';
import { suggestFleetTargets, suggestVms, visibleInventory } from '../../../../bot/core/suggest.js';
import type { HostStatus } from '../../../../shared/hosts.js';
import { policySchema } from '../../../../shared/policy.js';

const DEV_TEAM = '600000000000000001';

const policy = policySchema.parse({
  rules: [
    { role: '@administrators', actions: ['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit'] },
    { role: DEV_TEAM, actions: ['list', 'create'], vms: ['dev-*'] },
  ],
});

const member = (roleIds: string[], isAdministrator = false): Actor => ({ id: 'discord:1', userId: '1', displayName: 'm', roleIds, isAdministrator });

function host(hostId: string, names: string[]): HostStatus {
  return { hostId, online: true, vms: names.map((name) => ({ name, uuid: `${name}-uuid`, state: 'running', snapshots: [] })) } as unknown as HostStatus;
}

const fleet = [host('kvm-a', ['dev-01', 'prod-web']), host('kvm-b', ['prod-db'])];

describe('what autocomplete shows a member', () => {
  it('shows a member only the VMs the policy lets them list, and no host without one', () => {
    const seen = visibleInventory(policy, member([DEV_TEAM]), fleet);
    expect(seen.map((entry) => [entry.hostId, entry.vms.map((vm) => vm.name)])).toEqual([['kvm-a', ['dev-01']]]);
    expect(suggestVms(seen, '').map((choice) => choice.value)).toEqual(['dev-01']);
    expect(suggestFleetTargets(seen, 'prod').map((choice) => choice.value)).toEqual([]);
  });

  it('shows a member who may list nothing nothing at all', () => {
    expect(visibleInventory(policy, member([]), fleet)).toEqual([]);
  });

  it('shows an administrator the whole fleet', () => {
    expect(visibleInventory(policy, member([], true), fleet)).toEqual(fleet);
  });
});
