import { ADMINISTRATORS, EVERYONE, type Policy } from '../../shared/policy.js';

/**
 * A policy names a role by its id (a snowflake): ids are unique across Discord, names
 * are not (two roles of one server may share a name, and any other server can have a
 * role of that name). Role names are still accepted, deprecated: the chat adapter
 * resolves them once, at start, among the roles of its one server (DISCORD_GUILD_ID),
 * with `resolvePolicyRoleNames`. At run time only ids match (`authorize.ts`).
 */

/** A Discord role id: 15 to 21 digits. Anything else in a role slot (besides the keywords) is a name. */
export function isRoleId(value: string): boolean {
  return /^\d{15,21}$/.test(value);
}

/** A role slot that names a role by name: not an id, not @administrators / @everyone, not `user:<id>`. */
export function isRoleName(value: string): boolean {
  return !isRoleId(value) && value !== ADMINISTRATORS && value !== EVERYONE && !value.startsWith('user:');
}

/** What became of one role name of the policy. */
export interface RoleNameResolution {
  /** As written in the policy. */
  name: string;
  /**
   * The ids of the server's roles with exactly that name. One: the name now stands for
   * that id. None or several: the name matches nobody.
   */
  ids: string[];
}

export interface ResolvedPolicyRoles {
  /** A new policy whose role names that matched exactly one role are that role's id. */
  policy: Policy;
  /** One entry per distinct role name in the policy, in order of first use (empty when it names roles by id only). */
  names: RoleNameResolution[];
}

/**
 * Rewrites the role names of `policy` (rules' `role`, approval rules' `approvers`, the
 * fleet approval's `approvers`) into role ids, given every role of the one server the
 * bot serves. A name that matches exactly one role (case-sensitive, as Discord shows it)
 * becomes that role's id; a name that matches none or several stays as written, and so
 * matches nobody, since only ids match at run time. Ids, @administrators, @everyone and
 * `user:<id>` are kept. The input policy is not changed.
 */
export function resolvePolicyRoleNames(policy: Policy, serverRoles: Iterable<{ id: string; name: string }>): ResolvedPolicyRoles {
  const idsByName = new Map<string, string[]>();
  for (const role of serverRoles) idsByName.set(role.name, [...(idsByName.get(role.name) ?? []), role.id]);
  const names = new Map<string, RoleNameResolution>();
  const resolve = (entry: string): string => {
    if (!isRoleName(entry)) return entry;
    const ids = idsByName.get(entry) ?? [];
    if (!names.has(entry)) names.set(entry, { name: entry, ids });
    return ids.length === 1 ? ids[0]! : entry;
  };
  const resolved: Policy = {
    ...policy,
    rules: policy.rules.map((rule) => (rule.role === undefined ? rule : { ...rule, role: resolve(rule.role) })),
    ...(policy.approvals ? { approvals: policy.approvals.map((rule) => ({ ...rule, approvers: rule.approvers.map(resolve) })) } : {}),
    fleet: { ...policy.fleet, approval: { ...policy.fleet.approval, approvers: policy.fleet.approval.approvers.map(resolve) } },
  };
  return { policy: resolved, names: [...names.values()] };
}
