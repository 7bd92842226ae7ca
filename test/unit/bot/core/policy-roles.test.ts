import { describe, expect, it } from 'vitest';
import { isAllowed, isApprover, type Actor } from '../../../../bot/core/authorize.js';
import { isRoleId, isRoleName, resolvePolicyRoleNames } from '../../../../bot/core/policy-roles.js';
import { policySchema } from '../../../../shared/policy.js';

const OPS = '500000000000000001';
const DBA = '500000000000000002';
const DUP_A = '500000000000000003';
const DUP_B = '500000000000000004';
const BYID = '500000000000000005';
const USER = '100000000000000009';

/** The served server's roles: two share the name "dup". */
const SERVER_ROLES = [
  { id: OPS, name: 'kvm-operators' },
  { id: DBA, name: 'dba' },
  { id: DUP_A, name: 'dup' },
  { id: DUP_B, name: 'dup' },
  { id: BYID, name: 'by-id' },
];

const member = (roleIds: string[], isAdministrator = false): Actor => ({ id: 'discord:1', userId: '1', displayName: 'm', roleIds, isAdministrator });

const policy = policySchema.parse({
  rules: [
    { role: '@administrators', actions: ['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit'] },
    { role: 'kvm-operators', actions: ['create'] },
    { role: BYID, actions: ['create'] },
    { role: 'dup', actions: ['create'] },
    { role: 'ghosts', actions: ['create'] },
    { user: USER, actions: ['list'] },
    { role: '@everyone', actions: ['list'] },
  ],
  approvals: [{ actions: ['revert'], approvers: ['dba', 'dup', `user:${USER}`, '@administrators', BYID] }],
  fleet: { approval: { approvers: ['kvm-operators', 'ghosts'] } },
});

describe('what counts as a role id and as a role name', () => {
  it('reads 15 to 21 digits as an id, and anything else but the keywords as a name', () => {
    expect(isRoleId(OPS)).toBe(true);
    expect(isRoleId('12345')).toBe(false);
    expect(isRoleName('kvm-operators')).toBe(true);
    expect(isRoleName('12345')).toBe(true);
    for (const notName of [OPS, '@administrators', '@everyone', `user:${USER}`]) expect(isRoleName(notName)).toBe(false);
  });
});

describe('resolving the policy role names in the served server', () => {
  const { policy: resolved, names } = resolvePolicyRoleNames(policy, SERVER_ROLES);

  it('rewrites a name that one role carries into that role id, in rules and in both approver lists', () => {
    expect(resolved.rules[1]).toMatchObject({ role: OPS, actions: ['create'] });
    expect(resolved.approvals![0]!.approvers).toEqual([DBA, 'dup', `user:${USER}`, '@administrators', BYID]);
    expect(resolved.fleet.approval.approvers).toEqual([OPS, 'ghosts']);
  });

  it('keeps ids, keywords and user rules as written', () => {
    expect(resolved.rules.map((rule) => rule.role ?? `user ${rule.user}`)).toEqual(['@administrators', OPS, BYID, 'dup', 'ghosts', `user ${USER}`, '@everyone']);
  });

  it('reports each distinct name once, with the ids that carry it: one, several or none', () => {
    expect(names).toEqual([
      { name: 'kvm-operators', ids: [OPS] },
      { name: 'dup', ids: [DUP_A, DUP_B] },
      { name: 'ghosts', ids: [] },
      { name: 'dba', ids: [DBA] },
    ]);
  });

  it('lets the holder of the resolved role id in, and nobody for a name that matched several roles or none', () => {
    expect(isAllowed(resolved, member([OPS]), 'create')).toBe(true);
    expect(isAllowed(resolved, member([BYID]), 'create')).toBe(true);
    expect(isAllowed(resolved, member([DUP_A]), 'create')).toBe(false);
    expect(isAllowed(resolved, member([DUP_B]), 'create')).toBe(false);
    expect(isAllowed(resolved, member([DUP_A, DUP_B]), 'create')).toBe(false);
    expect(isApprover(resolved.approvals![0]!.approvers, member([DBA]))).toBe(true);
    expect(isApprover(resolved.approvals![0]!.approvers, member([DUP_A]))).toBe(false);
    expect(isApprover(resolved.fleet.approval.approvers, member([OPS]))).toBe(true);
  });

  it('matches a name case-sensitively, as Discord shows it', () => {
    const upper = policySchema.parse({ rules: [{ role: 'KVM-Operators', actions: ['create'] }] });
    const result = resolvePolicyRoleNames(upper, SERVER_ROLES);
    expect(result.names).toEqual([{ name: 'KVM-Operators', ids: [] }]);
    expect(isAllowed(result.policy, member([OPS]), 'create')).toBe(false);
  });

  it('leaves the policy it was given unchanged', () => {
    expect(policy.rules[1]!.role).toBe('kvm-operators');
    expect(policy.approvals![0]!.approvers[0]).toBe('dba');
    expect(policy.fleet.approval.approvers[0]).toBe('kvm-operators');
  });

  it('reports nothing for a policy that names roles by id only', () => {
    const byId = policySchema.parse({ rules: [{ role: OPS, actions: ['create'] }], approvals: [{ actions: ['delete'], approvers: [DBA] }] });
    const result = resolvePolicyRoleNames(byId, SERVER_ROLES);
    expect(result.names).toEqual([]);
    expect(result.policy).toEqual(byId);
  });

  it('without the resolution, a role name matches nobody: the old name matching is gone', () => {
    expect(isAllowed(policy, member([OPS]), 'create')).toBe(false);
    expect(isAllowed(policy, { ...member([]), roleNames: ['kvm-operators'] }, 'create')).toBe(false);
  });
});
