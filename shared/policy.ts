import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SnapbotError } from './errors.js';
import { matchesAnyGlob } from './glob.js';

/**
 * Who may do what, from the policy file (SNAPBOT_POLICY, YAML or JSON). A member may do
 * an action on a VM when any rule that names one of their roles (or them) allows that
 * action on that host and VM. docs/POLICY.md explains it with an example.
 */
/** `schedule`: create, change, pause, resume, run and delete schedules (issue 11); their snapshots also need create and delete on every VM. */
export const POLICY_ACTIONS = ['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit', 'schedule'] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];

/** Matches members with the Administrator or Manage Server permission. */
export const ADMINISTRATORS = '@administrators';
/** Matches every member. */
export const EVERYONE = '@everyone';

const globList = z.array(z.string().min(1)).min(1);

export const policyRuleSchema = z
  .object({
    /**
     * A Discord role id (what matches), or @administrators / @everyone. A role name is
     * deprecated: the bot resolves it once at start to the id of the one role of that
     * name in DISCORD_GUILD_ID; none or several such roles, and it matches nobody.
     */
    role: z.string().min(1).optional(),
    /** A Discord user id, for rules that name one person. */
    user: z.string().regex(/^\d{15,21}$/, 'user must be a Discord user id (digits)').optional(),
    actions: z.array(z.enum(POLICY_ACTIONS)).min(1),
    /** Host id globs (`*`, `?`); all hosts when absent. */
    hosts: globList.default(['*']),
    /** VM name globs; all VMs when absent. */
    vms: globList.default(['*']),
  })
  .strict()
  .refine((rule) => (rule.role === undefined) !== (rule.user === undefined), 'each rule names exactly one of role or user');
export type PolicyRule = z.infer<typeof policyRuleSchema>;

/** An approver: a role id (a name is deprecated, resolved as a rule's `role` is), @administrators, @everyone, or `user:<id>`. */
const approverSchema = z.string().min(1);

/**
 * Which actions wait for teammates' approval, where, and on what terms. The first
 * approval rule that matches an action, host and VM applies; none means no approval.
 */
export const approvalRuleSchema = z
  .object({
    actions: z.array(z.enum(['revert', 'delete'])).min(1),
    hosts: globList.default(['*']),
    vms: globList.default(['*']),
    /** Roles or users whose clicks count (`user:<id>` for one person). */
    approvers: z.array(approverSchema).min(1).default([ADMINISTRATORS]),
    /** Distinct approvals needed. */
    required: z.number().int().min(1).max(10).default(1),
    /** Whether the requester's own click counts. */
    allowSelfApproval: z.boolean().default(false),
    ttlMinutes: z.number().positive().max(24 * 60).default(15),
  })
  .strict();
export type ApprovalRule = z.infer<typeof approvalRuleSchema>;

/**
 * A snapctl user. Their requests are signed with `key`; the rules that name one of their
 * `roles` (role ids, as for Discord members), or `@administrators` when `administrator`,
 * apply to them. `discordUser` links them to their Discord account, so they cannot
 * approve from Discord what they asked for from snapctl (or the other way round).
 */
export const operatorSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'operator name: letters, digits, ".", "_", "-" (at most 64)'),
    /** OpenSSH one-line Ed25519 public key, as `snapctl key` prints it. */
    key: z.string().regex(/^ssh-ed25519 [A-Za-z0-9+/]+={0,2}( .*)?$/, 'key must be an "ssh-ed25519 AAAA…" line (snapctl key prints it)'),
    roles: z.array(z.string().min(1)).default([]),
    administrator: z.boolean().default(false),
    discordUser: z.string().regex(/^\d{15,21}$/, 'discordUser must be a Discord user id (digits)').optional(),
  })
  .strict();
export type Operator = z.infer<typeof operatorSchema>;

const DEFAULT_FLEET_POLICY = {
  perHost: 4,
  maxConcurrent: 64,
  approval: { snapshotsAbove: 50, deletes: true, approvers: [ADMINISTRATORS], required: 1, allowSelfApproval: false, ttlMinutes: 15 },
  hostLostAfterSeconds: 120,
};

export const policySchema = z
  .object({
    rules: z.array(policyRuleSchema),
    approvals: z.array(approvalRuleSchema).optional(),
    /** The safety snapshot taken before every revert. */
    undoPoints: z
      .object({ mode: z.enum(['disk-only', 'full']).default('full'), keep: z.number().int().min(1).max(100).default(3) })
      .strict()
      .default({ mode: 'full', keep: 3 }),
    /** Fleet runs: concurrency limits and when a run needs approval. */
    fleet: z
      .object({
        /** Jobs of one run at once on one host (0: only the worker's WORKER_CONCURRENCY). */
        perHost: z.number().int().min(0).max(1000).default(4),
        /** Jobs of one run at once across the fleet (0: no limit). */
        maxConcurrent: z.number().int().min(0).max(100_000).default(64),
        /** A fleet snapshot of more VMs than this needs approval; fleet deletes always do (unless `deletes: false`). */
        approval: z
          .object({
            snapshotsAbove: z.number().int().min(0).default(50),
            deletes: z.boolean().default(true),
            approvers: z.array(approverSchema).min(1).default([ADMINISTRATORS]),
            required: z.number().int().min(1).max(10).default(1),
            allowSelfApproval: z.boolean().default(false),
            ttlMinutes: z.number().positive().max(24 * 60).default(15),
          })
          .strict()
          .default({ snapshotsAbove: 50, deletes: true, approvers: [ADMINISTRATORS], required: 1, allowSelfApproval: false, ttlMinutes: 15 }),
        /** A host offline this long during a run (timed by Redis's clock) has its unfinished targets given up (HOST_OFFLINE). */
        hostLostAfterSeconds: z.number().int().min(1).max(24 * 3600).default(120),
      })
      .strict()
      .default(DEFAULT_FLEET_POLICY),
    /** Scheduled snapshots: a firing skips a VM whose storage has less than this share free (the space guard). */
    schedules: z
      .object({ minFreePercent: z.number().min(0).max(99).default(10) })
      .strict()
      .default({ minFreePercent: 10 }),
    /** `snapctl revert --break-glass` runs without approval (and is audited loudly) only when allowed here. */
    breakGlass: z.object({ snapctl: z.boolean().default(false) }).strict().default({ snapctl: false }),
    /** snapctl users: each signs its requests with its key; the control process applies these rules to them. */
    operators: z.array(operatorSchema).default([]),
    /**
     * Trust the snapctl key in the control process's own data directory (made by snapctl
     * run there) as an administrator. Always so without a policy file; with one, only when
     * this says so.
     */
    localAdministrator: z.boolean().default(false),
  })
  .strict()
  .refine((policy) => new Set(policy.operators.map((operator) => operator.name)).size === policy.operators.length, 'operators: each name once');
export type Policy = z.infer<typeof policySchema>;

/** Reverts and deletes need one administrator who is not the requester, within 15 minutes. */
export const DEFAULT_APPROVALS: ApprovalRule[] = [
  { actions: ['revert', 'delete'], hosts: ['*'], vms: ['*'], approvers: [ADMINISTRATORS], required: 1, allowSelfApproval: false, ttlMinutes: 15 },
];

/** Without a policy file: administrators may do everything, everyone may look. */
export const DEFAULT_POLICY: Policy = {
  rules: [
    { role: ADMINISTRATORS, actions: [...POLICY_ACTIONS], hosts: ['*'], vms: ['*'] },
    { role: EVERYONE, actions: ['list', 'info', 'hosts', 'audit'], hosts: ['*'], vms: ['*'] },
  ],
  approvals: DEFAULT_APPROVALS,
  undoPoints: { mode: 'full', keep: 3 },
  fleet: DEFAULT_FLEET_POLICY,
  schedules: { minFreePercent: 10 },
  breakGlass: { snapctl: false },
  operators: [],
  localAdministrator: true,
};

/** The approval rule for this action on this host and VM, or undefined when none is needed. */
export function approvalRuleFor(policy: Policy, action: string, host: string, vm: string): ApprovalRule | undefined {
  return (policy.approvals ?? DEFAULT_APPROVALS).find(
    (rule) => (rule.actions as readonly string[]).includes(action) && matchesAnyGlob(host, rule.hosts) && matchesAnyGlob(vm, rule.vms),
  );
}

/** Reads and validates the policy file; errors name the file and the offending rule. */
export function loadPolicy(path: string | undefined): Policy {
  if (!path) return DEFAULT_POLICY;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new SnapbotError('VALIDATION', `SNAPBOT_POLICY: cannot read ${path}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new SnapbotError('VALIDATION', `SNAPBOT_POLICY: ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`);
  }
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(top)'}: ${issue.message}`);
    throw new SnapbotError('VALIDATION', `SNAPBOT_POLICY: ${path} is not a valid policy: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** Host and VM globs of rules match with the linear-time matcher of shared/glob.ts. */
export { matchesAnyGlob };
