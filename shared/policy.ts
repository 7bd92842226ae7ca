import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SnapbotError } from './errors.js';

/**
 * Who may do what, from the policy file (SNAPBOT_POLICY, YAML or JSON). A member may do
 * an action on a VM when any rule that names one of their roles (or them) allows that
 * action on that host and VM. docs/POLICY.md explains it with an example.
 */
export const POLICY_ACTIONS = ['create', 'list', 'info', 'revert', 'delete', 'hosts'] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];

/** Matches members with the Administrator or Manage Server permission. */
export const ADMINISTRATORS = '@administrators';
/** Matches every member. */
export const EVERYONE = '@everyone';

const globList = z.array(z.string().min(1)).min(1);

export const policyRuleSchema = z
  .object({
    /** Discord role id or name, or @administrators / @everyone. */
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

export const policySchema = z
  .object({
    rules: z.array(policyRuleSchema),
  })
  .strict();
export type Policy = z.infer<typeof policySchema>;

/** Without a policy file: administrators may do everything, everyone may look. */
export const DEFAULT_POLICY: Policy = {
  rules: [
    { role: ADMINISTRATORS, actions: [...POLICY_ACTIONS], hosts: ['*'], vms: ['*'] },
    { role: EVERYONE, actions: ['list', 'info', 'hosts'], hosts: ['*'], vms: ['*'] },
  ],
};

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

/** `web-*` → /^web-.*$/; only `*` and `?` are special. */
export function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'u');
}

export function matchesAnyGlob(value: string, globs: readonly string[]): boolean {
  return globs.some((glob) => globToRegExp(glob).test(value));
}
