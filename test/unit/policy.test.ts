import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { authorize, isAllowed, type Actor } from '../../bot/core/authorize.js';
import { DEFAULT_POLICY, globToRegExp, loadPolicy } from '../../shared/policy.js';

const member = (overrides: Partial<Actor> = {}): Actor => ({
  id: 'discord:100000000000000001',
  userId: '100000000000000001',
  displayName: 'ada',
  roleIds: [],
  roleNames: [],
  isAdministrator: false,
  ...overrides,
});

function writePolicy(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'snapbot-policy-')), name);
  writeFileSync(path, text);
  return path;
}

describe('the default policy (no policy file)', () => {
  it('lets administrators do everything', () => {
    const admin = member({ isAdministrator: true });
    for (const action of ['create', 'revert', 'delete', 'list'] as const) expect(isAllowed(DEFAULT_POLICY, admin, action, { host: 'h', vm: 'v' })).toBe(true);
  });

  it('lets everyone else list, view info and see hosts only', () => {
    const user = member();
    expect(isAllowed(DEFAULT_POLICY, user, 'list', { host: 'h', vm: 'v' })).toBe(true);
    expect(isAllowed(DEFAULT_POLICY, user, 'info', { host: 'h', vm: 'v' })).toBe(true);
    expect(isAllowed(DEFAULT_POLICY, user, 'hosts')).toBe(true);
    expect(isAllowed(DEFAULT_POLICY, user, 'create', { host: 'h', vm: 'v' })).toBe(false);
    expect(isAllowed(DEFAULT_POLICY, user, 'revert', { host: 'h', vm: 'v' })).toBe(false);
  });
});

describe('a policy file', () => {
  const path = writePolicy(
    'policy.yaml',
    [
      'rules:',
      '  - role: sre',
      '    actions: [create, list, info, revert, delete, hosts]',
      '  - role: "200000000000000002"',
      '    actions: [create, list, info]',
      '    hosts: ["kvm-dev-*"]',
      '    vms: ["dev-*"]',
      '  - user: "100000000000000009"',
      '    actions: [delete]',
      '    vms: ["scratch-?"]',
    ].join('\n'),
  );
  const policy = loadPolicy(path);

  it('matches roles by name', () => {
    expect(isAllowed(policy, member({ roleNames: ['sre'] }), 'revert', { host: 'kvm-1', vm: 'db-01' })).toBe(true);
  });

  it('matches roles by id and limits them to host and VM globs', () => {
    const developer = member({ roleIds: ['200000000000000002'] });
    expect(isAllowed(policy, developer, 'create', { host: 'kvm-dev-3', vm: 'dev-api' })).toBe(true);
    expect(isAllowed(policy, developer, 'create', { host: 'kvm-prod-1', vm: 'dev-api' })).toBe(false);
    expect(isAllowed(policy, developer, 'create', { host: 'kvm-dev-3', vm: 'web-01' })).toBe(false);
    expect(isAllowed(policy, developer, 'revert', { host: 'kvm-dev-3', vm: 'dev-api' })).toBe(false);
  });

  it('matches single users by id', () => {
    const person = member({ userId: '100000000000000009' });
    expect(isAllowed(policy, person, 'delete', { host: 'any', vm: 'scratch-1' })).toBe(true);
    expect(isAllowed(policy, person, 'delete', { host: 'any', vm: 'scratch-10' })).toBe(false);
  });

  it('replaces the default: administrators get nothing the file does not give them', () => {
    expect(isAllowed(policy, member({ isAdministrator: true }), 'create', { host: 'h', vm: 'v' })).toBe(false);
  });

  it('refuses with FORBIDDEN and says what was refused', () => {
    expect(() => authorize(policy, member(), 'revert', { host: 'kvm-1', vm: 'db-01' })).toThrow(
      expect.objectContaining({ code: 'FORBIDDEN', message: expect.stringContaining('revert on VM db-01') }),
    );
  });

  it('reads JSON too', () => {
    const json = loadPolicy(writePolicy('policy.json', JSON.stringify({ rules: [{ role: '@everyone', actions: ['hosts'] }] })));
    expect(json.rules[0]).toEqual({ role: '@everyone', actions: ['hosts'], hosts: ['*'], vms: ['*'] });
  });

  it('rejects an invalid file with a message naming the file and the problem', () => {
    const bad = writePolicy('bad.yaml', 'rules:\n  - role: sre\n    actions: [reboot]\n');
    expect(() => loadPolicy(bad)).toThrow(/SNAPBOT_POLICY: .*bad\.yaml.*rules\.0\.actions\.0/);
    const both = writePolicy('both.yaml', 'rules:\n  - role: sre\n    user: "100000000000000009"\n    actions: [list]\n');
    expect(() => loadPolicy(both)).toThrow(/exactly one of role or user/);
    expect(() => loadPolicy('/nonexistent/policy.yaml')).toThrow(/cannot read/);
  });
});

describe('globs', () => {
  it('treats only * and ? as special', () => {
    expect(globToRegExp('web-*').test('web-01')).toBe(true);
    expect(globToRegExp('web.0?').test('web.01')).toBe(true);
    expect(globToRegExp('web.0?').test('webx01')).toBe(false);
    expect(globToRegExp('(a)+').test('(a)+')).toBe(true);
  });
});
