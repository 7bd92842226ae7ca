import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { authorize, isAllowed, type Actor } from '../../../bot/core/authorize.js';
import { resolvePolicyRoleNames } from '../../../bot/core/policy-roles.js';
import { ADMINISTRATORS, approvalRuleFor, DEFAULT_APPROVALS, DEFAULT_POLICY, loadPolicy, matchesAnyGlob, POLICY_ACTIONS, type Policy } from '../../../shared/policy.js';

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
  // Loaded before each test rather than while the tests are collected, so a policy that
  // fails to load fails the tests instead of the whole file.
  let policy: Policy;
  beforeEach(() => {
    policy = loadPolicy(path);
  });

  it('matches a role named by name only once the bot resolved it to the server role id', () => {
    expect(isAllowed(policy, member({ roleNames: ['sre'] }), 'revert', { host: 'kvm-1', vm: 'db-01' })).toBe(false);
    const resolved = resolvePolicyRoleNames(policy, [{ id: '300000000000000003', name: 'sre' }]).policy;
    expect(isAllowed(resolved, member({ roleIds: ['300000000000000003'] }), 'revert', { host: 'kvm-1', vm: 'db-01' })).toBe(true);
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
    expect(matchesAnyGlob('web-01', ['web-*'])).toBe(true);
    expect(matchesAnyGlob('web.01', ['web.0?'])).toBe(true);
    expect(matchesAnyGlob('webx01', ['web.0?'])).toBe(false);
    expect(matchesAnyGlob('(a)+', ['(a)+'])).toBe(true);
  });
});

/** The error message loadPolicy gives for a file with this YAML text, or 'valid'. */
function problemWith(text: string, name = 'p.yaml'): string {
  try {
    loadPolicy(writePolicy(name, text));
    return 'valid';
  } catch (error) {
    return (error as Error).message;
  }
}

describe('security defaults: a policy file that leaves every optional field out', () => {
  const path = writePolicy('minimal.yaml', 'rules:\n  - role: sre\n    actions: [create]\n');
  let policy: Policy;
  beforeEach(() => {
    policy = loadPolicy(path);
  });

  it('gives a rule every host and every VM', () => {
    expect(policy.rules).toEqual([{ role: 'sre', actions: ['create'], hosts: ['*'], vms: ['*'] }]);
  });

  it('makes reverts and deletes wait for one administrator other than the requester, for 15 minutes', () => {
    expect(policy.approvals).toBeUndefined();
    for (const action of ['revert', 'delete']) {
      expect(approvalRuleFor(policy, action, 'kvm-1', 'db-01')).toEqual({
        actions: ['revert', 'delete'],
        hosts: ['*'],
        vms: ['*'],
        approvers: [ADMINISTRATORS],
        required: 1,
        allowSelfApproval: false,
        ttlMinutes: 15,
      });
    }
    expect(approvalRuleFor(policy, 'create', 'kvm-1', 'db-01')).toBeUndefined();
  });

  it('takes a full undo point (with memory) before a revert and keeps three', () => {
    expect(policy.undoPoints).toEqual({ mode: 'full', keep: 3 });
  });

  it('limits fleet runs and makes fleet deletes and large fleet snapshots wait for an administrator', () => {
    expect(policy.fleet).toEqual({
      perHost: 4,
      maxConcurrent: 64,
      approval: { snapshotsAbove: 50, deletes: true, approvers: [ADMINISTRATORS], required: 1, allowSelfApproval: false, ttlMinutes: 15 },
      hostLostAfterSeconds: 120,
    });
  });

  it('does not allow break-glass reverts from snapctl', () => {
    expect(policy.breakGlass).toEqual({ snapctl: false });
  });

  it('skips a scheduled snapshot of a VM whose storage has less than 10 % free', () => {
    expect(policy.schedules).toEqual({ minFreePercent: 10 });
  });

  it('fills the same defaults inside sections that are present but empty', () => {
    const empty = loadPolicy(
      writePolicy(
        'empty-sections.yaml',
        ['rules: []', 'approvals:', '  - actions: [delete]', 'undoPoints: {}', 'fleet:', '  approval: {}', 'breakGlass: {}'].join('\n'),
      ),
    );
    expect(empty.approvals).toEqual([
      { actions: ['delete'], hosts: ['*'], vms: ['*'], approvers: [ADMINISTRATORS], required: 1, allowSelfApproval: false, ttlMinutes: 15 },
    ]);
    expect(empty.undoPoints).toEqual({ mode: 'full', keep: 3 });
    expect(empty.fleet).toEqual(policy.fleet);
    expect(empty.breakGlass).toEqual({ snapctl: false });
    const noApproval = loadPolicy(writePolicy('fleet-empty.yaml', 'rules: []\nfleet: {}\n'));
    expect(noApproval.fleet).toEqual(policy.fleet);
  });

  it('lists no snapctl operators, and does not make the checkout\'s own snapctl an administrator', () => {
    expect(policy.operators).toEqual([]);
    expect(policy.localAdministrator).toBe(false);
  });

  it('is the same as the built-in policy in everything but the rules and the local administrator', () => {
    expect({ ...DEFAULT_POLICY, rules: policy.rules, approvals: undefined, localAdministrator: false }).toEqual(policy);
    expect(DEFAULT_POLICY.approvals).toBe(DEFAULT_APPROVALS);
  });
});

describe('the built-in policy', () => {
  it("trusts the checkout's own snapctl as the local administrator (there is no policy file to list operators in)", () => {
    expect(DEFAULT_POLICY.localAdministrator).toBe(true);
    expect(DEFAULT_POLICY.operators).toEqual([]);
  });

  it('gives administrators every action and everyone else list, info, hosts and audit, on every host and VM', () => {
    expect(DEFAULT_POLICY.rules).toEqual([
      { role: '@administrators', actions: ['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit', 'schedule'], hosts: ['*'], vms: ['*'] },
      { role: '@everyone', actions: ['list', 'info', 'hosts', 'audit'], hosts: ['*'], vms: ['*'] },
    ]);
    expect(POLICY_ACTIONS).toEqual(['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit', 'schedule']);
  });

  it('guards scheduled snapshots with 10 % free space unless the file says otherwise', () => {
    expect(DEFAULT_POLICY.schedules).toEqual({ minFreePercent: 10 });
  });

  it('makes reverts and deletes wait for an administrator, without self-approval, for 15 minutes', () => {
    expect(DEFAULT_APPROVALS).toEqual([
      { actions: ['revert', 'delete'], hosts: ['*'], vms: ['*'], approvers: ['@administrators'], required: 1, allowSelfApproval: false, ttlMinutes: 15 },
    ]);
  });

  it('keeps three full undo points, limits fleet runs, and allows no break-glass', () => {
    expect(DEFAULT_POLICY.undoPoints).toEqual({ mode: 'full', keep: 3 });
    expect(DEFAULT_POLICY.fleet).toEqual({
      perHost: 4,
      maxConcurrent: 64,
      approval: { snapshotsAbove: 50, deletes: true, approvers: ['@administrators'], required: 1, allowSelfApproval: false, ttlMinutes: 15 },
      hostLostAfterSeconds: 120,
    });
    expect(DEFAULT_POLICY.breakGlass).toEqual({ snapctl: false });
  });

  it('is what loadPolicy gives without a file', () => {
    expect(loadPolicy(undefined)).toBe(DEFAULT_POLICY);
    expect(loadPolicy('')).toBe(DEFAULT_POLICY);
  });
});

describe('a policy file with every field set', () => {
  const path = writePolicy(
    'full.yaml',
    [
      'rules:',
      '  - role: "@administrators"',
      '    actions: [create, list, info, revert, delete, hosts, audit]',
      '  - role: "@everyone"',
      '    actions: [list]',
      '    hosts: ["kvm-*", "lab-1"]',
      '    vms: ["web-*", "db-?"]',
      'approvals:',
      '  - actions: [revert]',
      '    hosts: ["kvm-prod-*"]',
      '    vms: ["db-*", "pay-*"]',
      '    approvers: ["dba", "user:100000000000000007"]',
      '    required: 2',
      '    allowSelfApproval: true',
      '    ttlMinutes: 60',
      '  - actions: [revert, delete]',
      'undoPoints: { mode: disk-only, keep: 10 }',
      'fleet:',
      '  perHost: 0',
      '  maxConcurrent: 0',
      '  approval: { snapshotsAbove: 0, deletes: false, approvers: [sre], required: 3, allowSelfApproval: true, ttlMinutes: 5 }',
      '  hostLostAfterSeconds: 30',
      'breakGlass: { snapctl: true }',
    ].join('\n'),
  );
  let policy: Policy;
  beforeEach(() => {
    policy = loadPolicy(path);
  });

  it('loads @administrators and @everyone rules that behave as the built-in ones do', () => {
    const admin = member({ isAdministrator: true });
    expect(isAllowed(policy, admin, 'audit', { host: 'any', vm: 'any' })).toBe(true);
    expect(isAllowed(policy, member(), 'list', { host: 'kvm-9', vm: 'web-01' })).toBe(true);
    expect(isAllowed(policy, member(), 'list', { host: 'lab-1', vm: 'db-7' })).toBe(true);
    expect(isAllowed(policy, member(), 'list', { host: 'lab-2', vm: 'db-7' })).toBe(false);
    expect(isAllowed(policy, member(), 'create', { host: 'kvm-9', vm: 'web-01' })).toBe(false);
  });

  it('keeps every value it was given', () => {
    expect(policy.approvals?.[0]).toEqual({
      actions: ['revert'],
      hosts: ['kvm-prod-*'],
      vms: ['db-*', 'pay-*'],
      approvers: ['dba', 'user:100000000000000007'],
      required: 2,
      allowSelfApproval: true,
      ttlMinutes: 60,
    });
    expect(policy.undoPoints).toEqual({ mode: 'disk-only', keep: 10 });
    expect(policy.fleet).toEqual({
      perHost: 0,
      maxConcurrent: 0,
      approval: { snapshotsAbove: 0, deletes: false, approvers: ['sre'], required: 3, allowSelfApproval: true, ttlMinutes: 5 },
      hostLostAfterSeconds: 30,
    });
    expect(policy.breakGlass).toEqual({ snapctl: true });
  });

  it('picks the first approval rule that names the action, the host and the VM', () => {
    expect(approvalRuleFor(policy, 'revert', 'kvm-prod-2', 'pay-api')?.required).toBe(2);
    expect(approvalRuleFor(policy, 'revert', 'kvm-prod-2', 'db-main')?.required).toBe(2);
    expect(approvalRuleFor(policy, 'revert', 'kvm-dev-2', 'db-main')?.required).toBe(1);
    expect(approvalRuleFor(policy, 'revert', 'kvm-prod-2', 'web-01')?.required).toBe(1);
    expect(approvalRuleFor(policy, 'delete', 'kvm-prod-2', 'db-main')?.required).toBe(1);
    expect(approvalRuleFor(policy, 'create', 'kvm-prod-2', 'db-main')).toBeUndefined();
  });

  it('needs no approval at all when the file lists no approval rules', () => {
    const none = loadPolicy(writePolicy('no-approvals.yaml', 'rules: []\napprovals: []\n'));
    expect(approvalRuleFor(none, 'delete', 'kvm-1', 'db-01')).toBeUndefined();
  });
});

describe('policy file validation', () => {
  it.each([
    ['a rule without actions', 'rules:\n  - role: sre\n    actions: []\n', 'rules.0.actions'],
    ['an unknown action', 'rules:\n  - role: sre\n    actions: [reboot]\n', 'rules.0.actions.0'],
    ['a rule naming neither role nor user', 'rules:\n  - actions: [list]\n', 'each rule names exactly one of role or user'],
    ['an empty role', 'rules:\n  - role: ""\n    actions: [list]\n', 'rules.0.role'],
    ['an empty host list', 'rules:\n  - role: sre\n    actions: [list]\n    hosts: []\n', 'rules.0.hosts'],
    ['an empty VM glob', 'rules:\n  - role: sre\n    actions: [list]\n    vms: [""]\n', 'rules.0.vms.0'],
    ['an unknown rule field', 'rules:\n  - role: sre\n    actions: [list]\n    vm: web\n', 'rules.0'],
    ['an unknown top-level field', 'rules: []\nrule: []\n', '(top)'],
    ['a missing rules list', 'approvals: []\n', 'rules'],
    ['a list instead of a policy', '- role: sre\n', '(top)'],
    ['an approval for an action that needs none', 'rules: []\napprovals:\n  - actions: [create]\n', 'approvals.0.actions.0'],
    ['an approval rule with no actions', 'rules: []\napprovals:\n  - actions: []\n', 'approvals.0.actions'],
    ['no approvers', 'rules: []\napprovals:\n  - actions: [delete]\n    approvers: []\n', 'approvals.0.approvers'],
    ['an empty approver', 'rules: []\napprovals:\n  - actions: [delete]\n    approvers: [""]\n', 'approvals.0.approvers.0'],
    ['no approvals required', 'rules: []\napprovals:\n  - actions: [delete]\n    required: 0\n', 'approvals.0.required'],
    ['more than 10 approvals required', 'rules: []\napprovals:\n  - actions: [delete]\n    required: 11\n', 'approvals.0.required'],
    ['a fractional approval count', 'rules: []\napprovals:\n  - actions: [delete]\n    required: 1.5\n', 'approvals.0.required'],
    ['an approval that never lives', 'rules: []\napprovals:\n  - actions: [delete]\n    ttlMinutes: 0\n', 'approvals.0.ttlMinutes'],
    ['an approval that lives over a day', 'rules: []\napprovals:\n  - actions: [delete]\n    ttlMinutes: 1441\n', 'approvals.0.ttlMinutes'],
    ['self-approval as a word', 'rules: []\napprovals:\n  - actions: [delete]\n    allowSelfApproval: "yes"\n', 'approvals.0.allowSelfApproval'],
    ['an unknown approval field', 'rules: []\napprovals:\n  - actions: [delete]\n    quorum: 2\n', 'approvals.0'],
    ['an unknown undo-point mode', 'rules: []\nundoPoints: { mode: memory }\n', 'undoPoints.mode'],
    ['no undo points kept', 'rules: []\nundoPoints: { keep: 0 }\n', 'undoPoints.keep'],
    ['over 100 undo points kept', 'rules: []\nundoPoints: { keep: 101 }\n', 'undoPoints.keep'],
    ['a fractional undo-point count', 'rules: []\nundoPoints: { keep: 2.5 }\n', 'undoPoints.keep'],
    ['an unknown undo-point field', 'rules: []\nundoPoints: { mode: full, every: 1 }\n', 'undoPoints'],
    ['a negative per-host limit', 'rules: []\nfleet: { perHost: -1 }\n', 'fleet.perHost'],
    ['a per-host limit over 1000', 'rules: []\nfleet: { perHost: 1001 }\n', 'fleet.perHost'],
    ['a fractional per-host limit', 'rules: []\nfleet: { perHost: 1.5 }\n', 'fleet.perHost'],
    ['a negative fleet limit', 'rules: []\nfleet: { maxConcurrent: -1 }\n', 'fleet.maxConcurrent'],
    ['a fleet limit over 100,000', 'rules: []\nfleet: { maxConcurrent: 100001 }\n', 'fleet.maxConcurrent'],
    ['a fractional fleet limit', 'rules: []\nfleet: { maxConcurrent: 2.5 }\n', 'fleet.maxConcurrent'],
    ['a host given up at once', 'rules: []\nfleet: { hostLostAfterSeconds: 0 }\n', 'fleet.hostLostAfterSeconds'],
    ['a host given up after more than a day', 'rules: []\nfleet: { hostLostAfterSeconds: 86401 }\n', 'fleet.hostLostAfterSeconds'],
    ['a fractional lost-host time', 'rules: []\nfleet: { hostLostAfterSeconds: 1.5 }\n', 'fleet.hostLostAfterSeconds'],
    ['an unknown fleet field', 'rules: []\nfleet: { perVm: 1 }\n', 'fleet'],
    ['a negative snapshot threshold', 'rules: []\nfleet: { approval: { snapshotsAbove: -1 } }\n', 'fleet.approval.snapshotsAbove'],
    ['a fractional snapshot threshold', 'rules: []\nfleet: { approval: { snapshotsAbove: 1.5 } }\n', 'fleet.approval.snapshotsAbove'],
    ['fleet deletes as a word', 'rules: []\nfleet: { approval: { deletes: "no" } }\n', 'fleet.approval.deletes'],
    ['no fleet approvers', 'rules: []\nfleet: { approval: { approvers: [] } }\n', 'fleet.approval.approvers'],
    ['an empty fleet approver', 'rules: []\nfleet: { approval: { approvers: [""] } }\n', 'fleet.approval.approvers.0'],
    ['no fleet approvals required', 'rules: []\nfleet: { approval: { required: 0 } }\n', 'fleet.approval.required'],
    ['over 10 fleet approvals required', 'rules: []\nfleet: { approval: { required: 11 } }\n', 'fleet.approval.required'],
    ['a fractional fleet approval count', 'rules: []\nfleet: { approval: { required: 1.5 } }\n', 'fleet.approval.required'],
    ['fleet self-approval as a word', 'rules: []\nfleet: { approval: { allowSelfApproval: "no" } }\n', 'fleet.approval.allowSelfApproval'],
    ['a fleet approval that never lives', 'rules: []\nfleet: { approval: { ttlMinutes: 0 } }\n', 'fleet.approval.ttlMinutes'],
    ['a fleet approval that lives over a day', 'rules: []\nfleet: { approval: { ttlMinutes: 1441 } }\n', 'fleet.approval.ttlMinutes'],
    ['an unknown fleet approval field', 'rules: []\nfleet: { approval: { everyone: true } }\n', 'fleet.approval'],
    ['break-glass as a word', 'rules: []\nbreakGlass: { snapctl: "yes" }\n', 'breakGlass.snapctl'],
    ['break-glass for the bot', 'rules: []\nbreakGlass: { discord: true }\n', 'breakGlass'],
  ])('refuses %s, naming where', (_what, text, where) => {
    expect(problemWith(text)).toMatch(new RegExp(`^SNAPBOT_POLICY: .*p\\.yaml is not a valid policy: .*${where.replace(/[.()]/g, '\\$&')}`));
  });

  it.each([
    ['the largest limits', 'rules: []\nfleet: { perHost: 1000, maxConcurrent: 100000, hostLostAfterSeconds: 86400 }\n'],
    ['the smallest limits', 'rules: []\nfleet: { perHost: 0, maxConcurrent: 0, hostLostAfterSeconds: 1, approval: { snapshotsAbove: 0 } }\n'],
    ['a day-long approval by ten people', 'rules: []\napprovals:\n  - actions: [delete]\n    required: 10\n    ttlMinutes: 1440\n'],
    ['a half-minute approval', 'rules: []\napprovals:\n  - actions: [delete]\n    ttlMinutes: 0.5\n'],
    ['a day-long fleet approval by ten people', 'rules: []\nfleet: { approval: { required: 10, ttlMinutes: 1440 } }\n'],
    ['one undo point', 'rules: []\nundoPoints: { keep: 1 }\n'],
    ['full undo points, said outright', 'rules: []\nundoPoints: { mode: full }\n'],
    ['a hundred undo points', 'rules: []\nundoPoints: { keep: 100 }\n'],
  ])('accepts %s', (_what, text) => {
    expect(problemWith(text)).toBe('valid');
  });

  it.each([
    ['15 digits', '100000000000000', true],
    ['21 digits', '100000000000000000000', true],
    ['14 digits', '10000000000000', false],
    ['22 digits', '1000000000000000000000', false],
    ['a name', 'ada', false],
    ['digits after a letter', 'a100000000000000009', false],
    ['digits before a letter', '100000000000000009a', false],
    ['digits with a space', '10000000000 0000009', false],
  ])('takes a user rule naming %s: %s', (_what, user, valid) => {
    const problem = problemWith(`rules:\n  - user: "${user}"\n    actions: [list]\n`);
    if (valid) expect(problem).toBe('valid');
    else expect(problem).toContain('rules.0.user: user must be a Discord user id (digits)');
  });

  it('lists every problem, separated by semicolons', () => {
    expect(problemWith('rules:\n  - role: sre\n    actions: []\n  - role: ""\n    actions: [list]\n')).toMatch(
      /is not a valid policy: rules\.0\.actions: [^;]+; rules\.1\.role: /,
    );
  });

  it('says which file cannot be read, and why', () => {
    expect(() => loadPolicy('/nonexistent/policy.yaml')).toThrow(
      expect.objectContaining({ code: 'VALIDATION', message: expect.stringMatching(/^SNAPBOT_POLICY: cannot read \/nonexistent\/policy\.yaml: ENOENT/) }),
    );
  });

  it('says a file is not YAML, or not JSON', () => {
    expect(problemWith('rules: [\n')).toMatch(/^SNAPBOT_POLICY: \S+p\.yaml is not valid YAML: \S/);
    expect(problemWith('{"rules": [', 'p.json')).toMatch(/^SNAPBOT_POLICY: \S+p\.json is not valid JSON: \S/);
    expect(problemWith('rules: []\n', 'p.json')).toMatch(/is not valid JSON/);
    expect(problemWith('{"rules": []}', 'p.yml')).toBe('valid');
  });

  it('fails with VALIDATION', () => {
    expect(() => loadPolicy(writePolicy('p.yaml', 'rules: 1\n'))).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
    expect(() => loadPolicy(writePolicy('p.yaml', 'rules: ['))).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
  });
});

describe('glob matching', () => {
  it.each([
    ['*', 'anything', true],
    ['*', '', true],
    ['web-*', 'web-', true],
    ['web-*', 'xweb-01', false],
    ['web-*', 'WEB-01', false],
    ['db-?', 'db-1', true],
    ['db-?', 'db-', false],
    ['db-?', 'db-12', false],
    ['db', 'db-1', false],
    ['db', 'xdb', false],
    ['a.b', 'axb', false],
    ['a+', 'aa', false],
    ['a^b', 'a^b', true],
    ['$a', '$a', true],
    ['a{2}', 'a{2}', true],
    ['a{2}', 'aa', false],
    ['a|b', 'a', false],
    ['a|b', 'a|b', true],
    ['[ab]', 'a', false],
    ['[ab]', '[ab]', true],
    ['a\\d', 'a\\d', true],
    ['a\\d', 'a1', false],
    ['(x)', '(x)', true],
    ['(x)', 'x', false],
    ['ünï*', 'ünïcødé', true],
  ])('%s against %j: %s', (glob, value, expected) => {
    expect(matchesAnyGlob(value, [glob])).toBe(expected);
  });

  it('reads ? as one character, even one outside the Basic Multilingual Plane', () => {
    expect(matchesAnyGlob('db-😀', ['db-?'])).toBe(true);
    expect(matchesAnyGlob('😀😀', ['?'])).toBe(false);
  });

  it('matches when any one of several globs matches', () => {
    expect(matchesAnyGlob('web-01', ['db-*', 'web-*'])).toBe(true);
    expect(matchesAnyGlob('web-01', ['web-*', 'db-*'])).toBe(true);
    expect(matchesAnyGlob('cache-01', ['web-*', 'db-*'])).toBe(false);
  });

  it('lets a rule with two VM globs give both', () => {
    const policy = loadPolicy(writePolicy('two.yaml', 'rules:\n  - role: "300000000000000005"\n    actions: [create]\n    vms: ["web-*", "db-*"]\n'));
    const developer = member({ roleIds: ['300000000000000005'] });
    expect(isAllowed(policy, developer, 'create', { host: 'kvm-1', vm: 'web-01' })).toBe(true);
    expect(isAllowed(policy, developer, 'create', { host: 'kvm-1', vm: 'db-01' })).toBe(true);
    expect(isAllowed(policy, developer, 'create', { host: 'kvm-1', vm: 'cache-01' })).toBe(false);
  });
});
