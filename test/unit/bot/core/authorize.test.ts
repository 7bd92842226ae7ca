import { describe, expect, it } from 'vitest';
import { authorize, isAllowed, isApprover, type Actor } from '../../../../bot/core/authorize.js';
import { DEFAULT_POLICY, type Policy, type PolicyRule } from '../../../../shared/policy.js';

const ADA = '100000000000000001';
const BOB = '100000000000000002';
const SRE = '300000000000000003';
const DEV = '300000000000000005';
const QA = '300000000000000006';
const DBA = '400000000000000004';

const member = (overrides: Partial<Actor> = {}): Actor => ({
  id: `discord:${ADA}`,
  userId: ADA,
  displayName: 'ada',
  roleIds: [],
  isAdministrator: false,
  ...overrides,
});

function policyOf(...rules: Array<Partial<PolicyRule> & Pick<PolicyRule, 'actions'>>): Policy {
  return { ...DEFAULT_POLICY, rules: rules.map((rule) => ({ hosts: ['*'], vms: ['*'], ...rule })) };
}

describe('who a rule names', () => {
  it('lets the member a user rule names, and only that member', () => {
    const policy = policyOf({ user: ADA, actions: ['create'] });
    expect(isAllowed(policy, member({ userId: ADA }), 'create')).toBe(true);
    expect(isAllowed(policy, member({ userId: BOB, id: `discord:${BOB}` }), 'create')).toBe(false);
  });

  it('does not let a user rule match by role or administrator rights', () => {
    const policy = policyOf({ user: ADA, actions: ['create'] });
    expect(isAllowed(policy, member({ userId: BOB, roleIds: [ADA], isAdministrator: true }), 'create')).toBe(false);
  });

  it('refuses a member the rule does not name', () => {
    const policy = policyOf({ role: SRE, actions: ['revert'] });
    expect(isAllowed(policy, member({ roleIds: [DEV] }), 'revert')).toBe(false);
    expect(() => authorize(policy, member({ roleIds: [DEV] }), 'revert')).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }));
  });

  it('matches a role by its id', () => {
    const byId = policyOf({ role: SRE, actions: ['revert'] });
    expect(isAllowed(byId, member({ roleIds: [DEV, SRE] }), 'revert')).toBe(true);
    expect(isAllowed(byId, member({ roleNames: [SRE] }), 'revert')).toBe(false);
  });

  it('never matches a role name at run time, whatever the member holds (names are resolved to ids at start)', () => {
    const byName = policyOf({ role: 'sre', actions: ['revert'] });
    expect(isAllowed(byName, member({ roleNames: ['sre'] }), 'revert')).toBe(false);
    // Not even a member whose "role id" is the name: only a snowflake can match.
    expect(isAllowed(byName, member({ roleIds: ['sre'], roleNames: ['sre'] }), 'revert')).toBe(false);
  });

  it('gives an @administrators rule to administrators only', () => {
    const policy = policyOf({ role: '@administrators', actions: ['delete'] });
    expect(isAllowed(policy, member({ isAdministrator: true }), 'delete')).toBe(true);
    expect(isAllowed(policy, member({ roleIds: ['@administrators'] }), 'delete')).toBe(false);
  });

  it('gives an @everyone rule to every member, with no role at all', () => {
    const policy = policyOf({ role: '@everyone', actions: ['list'] });
    expect(isAllowed(policy, member(), 'list')).toBe(true);
  });
});

describe('what a rule allows', () => {
  const policy = policyOf({ role: DEV, actions: ['create', 'list'], hosts: ['kvm-dev-*'], vms: ['dev-*'] });
  const developer = member({ roleIds: [DEV] });

  it('allows only the actions it lists', () => {
    expect(isAllowed(policy, developer, 'create', { host: 'kvm-dev-1', vm: 'dev-api' })).toBe(true);
    expect(isAllowed(policy, developer, 'delete', { host: 'kvm-dev-1', vm: 'dev-api' })).toBe(false);
  });

  it('allows them only on the hosts and VMs it names', () => {
    expect(isAllowed(policy, developer, 'create', { host: 'kvm-prod-1', vm: 'dev-api' })).toBe(false);
    expect(isAllowed(policy, developer, 'create', { host: 'kvm-dev-1', vm: 'prod-api' })).toBe(false);
  });

  it('answers before the host or VM is known (for menus), by the action alone', () => {
    expect(isAllowed(policy, developer, 'list')).toBe(true);
    expect(isAllowed(policy, developer, 'list', { host: 'kvm-dev-1' })).toBe(true);
    expect(isAllowed(policy, developer, 'list', { vm: 'dev-api' })).toBe(true);
    expect(isAllowed(policy, developer, 'list', { host: 'kvm-prod-1' })).toBe(false);
    expect(isAllowed(policy, developer, 'list', { vm: 'prod-api' })).toBe(false);
  });

  it('allows when any one of several rules allows', () => {
    const two = policyOf({ role: DEV, actions: ['create'], vms: ['dev-*'] }, { role: QA, actions: ['create'], vms: ['qa-*'] });
    const both = member({ roleIds: [DEV, QA] });
    expect(isAllowed(two, both, 'create', { vm: 'dev-1' })).toBe(true);
    expect(isAllowed(two, both, 'create', { vm: 'qa-1' })).toBe(true);
    expect(isAllowed(two, member({ roleIds: [QA] }), 'create', { vm: 'dev-1' })).toBe(false);
  });

  it('allows nothing with no rules', () => {
    expect(isAllowed(policyOf(), member({ isAdministrator: true }), 'list')).toBe(false);
  });
});

describe('authorize', () => {
  const policy = policyOf({ role: DEV, actions: ['create'], vms: ['dev-*'] });

  it('lets an allowed member through without a word', () => {
    expect(authorize(policy, member({ roleIds: [DEV] }), 'create', { host: 'kvm-1', vm: 'dev-1' })).toBeUndefined();
  });

  it('refuses with FORBIDDEN, naming the action, the VM and the host', () => {
    expect(() => authorize(policy, member(), 'create', { host: 'kvm-1', vm: 'dev-1' })).toThrow(
      expect.objectContaining({
        code: 'FORBIDDEN',
        message: 'You are not allowed to create on VM dev-1 (host kvm-1). Ask someone with the right role, or an administrator.',
      }),
    );
  });

  it('names only the VM when the host is not known', () => {
    expect(() => authorize(policy, member(), 'create', { vm: 'dev-1' })).toThrow(
      'You are not allowed to create on VM dev-1. Ask someone with the right role, or an administrator.',
    );
  });

  it('names only the action when the VM is not known', () => {
    expect(() => authorize(policy, member(), 'audit', { host: 'kvm-1' })).toThrow(
      'You are not allowed to audit. Ask someone with the right role, or an administrator.',
    );
    expect(() => authorize(policy, member(), 'audit')).toThrow('You are not allowed to audit. Ask');
  });
});

describe('who may approve', () => {
  it('counts the one user a `user:` approver names, and nobody else', () => {
    expect(isApprover([`user:${ADA}`], member({ userId: ADA }))).toBe(true);
    expect(isApprover([`user:${ADA}`], member({ userId: BOB, isAdministrator: true, roleIds: [`user:${ADA}`] }))).toBe(false);
  });

  it('does not read a role that merely ends in a user id as a user', () => {
    expect(isApprover([`ops-user:${ADA}`], member({ userId: ADA }))).toBe(false);
  });

  it('counts administrators for @administrators, and only them', () => {
    expect(isApprover(['@administrators'], member({ isAdministrator: true }))).toBe(true);
    expect(isApprover(['@administrators'], member({ roleIds: ['@administrators'] }))).toBe(false);
  });

  it('counts every member for @everyone', () => {
    expect(isApprover(['@everyone'], member())).toBe(true);
  });

  it('counts a role by its id, and never by a name', () => {
    expect(isApprover([DBA], member({ roleIds: [DBA] }))).toBe(true);
    expect(isApprover([DBA], member({ roleIds: [DEV] }))).toBe(false);
    expect(isApprover(['dba'], member({ roleNames: ['dba'] }))).toBe(false);
    expect(isApprover(['dba'], member({ roleIds: ['dba'] }))).toBe(false);
  });

  it('counts a member named by any one entry of the list', () => {
    expect(isApprover([DBA, `user:${BOB}`], member({ userId: BOB }))).toBe(true);
    expect(isApprover([DBA, `user:${BOB}`], member({ roleIds: [DBA] }))).toBe(true);
    expect(isApprover([DBA, `user:${BOB}`], member())).toBe(false);
    expect(isApprover([], member({ isAdministrator: true }))).toBe(false);
  });
});
