import { SnapbotError } from '../../shared/errors.js';
import { ADMINISTRATORS, EVERYONE, matchesAnyGlob, type Policy, type PolicyAction, type PolicyRule } from '../../shared/policy.js';
import { isRoleId } from './policy-roles.js';

/** The person asking, as the chat adapter knows them. */
export interface Actor {
  /** `discord:<user id>`; used in logs and audit. */
  id: string;
  userId: string;
  displayName: string;
  /** The ids of the roles they hold in the one server the bot serves: what policy roles match. */
  roleIds: readonly string[];
  /**
   * @deprecated Never matched: a role name is not unique (another role, or another
   * server's role, can carry it). Policy role names are resolved to ids at start
   * (policy-roles.ts); kept optional so older callers still compile.
   */
  roleNames?: readonly string[];
  /** Has Administrator or Manage Server. */
  isAdministrator: boolean;
}

/** Whether the actor holds the role with this id; a role name (not resolved to an id at start) matches nobody. */
function holdsRole(actor: Actor, role: string): boolean {
  return isRoleId(role) && actor.roleIds.includes(role);
}

function ruleApplies(rule: PolicyRule, actor: Actor): boolean {
  if (rule.user !== undefined) return rule.user === actor.userId;
  if (rule.role === EVERYONE) return true;
  if (rule.role === ADMINISTRATORS) return actor.isAdministrator;
  return holdsRole(actor, rule.role!);
}

/** True when the policy lets `actor` do `action` on that host and VM (either may be unknown yet). */
export function isAllowed(policy: Policy, actor: Actor, action: PolicyAction, target: { host?: string; vm?: string } = {}): boolean {
  return policy.rules.some(
    (rule) =>
      ruleApplies(rule, actor) &&
      rule.actions.includes(action) &&
      (target.host === undefined || matchesAnyGlob(target.host, rule.hosts)) &&
      (target.vm === undefined || matchesAnyGlob(target.vm, rule.vms)),
  );
}

/** Throws FORBIDDEN, with a sentence saying what was refused, unless the policy allows it. */
export function authorize(policy: Policy, actor: Actor, action: PolicyAction, target: { host?: string; vm?: string } = {}): void {
  if (isAllowed(policy, actor, action, target)) return;
  const what = target.vm ? ` on VM ${target.vm}${target.host ? ` (host ${target.host})` : ''}` : '';
  throw new SnapbotError('FORBIDDEN', `You are not allowed to ${action}${what}. Ask someone with the right role, or an administrator.`);
}

/** Whether the actor's click counts for an approval rule's `approvers` list (role ids, user:<id>, @administrators, @everyone). */
export function isApprover(approvers: readonly string[], actor: Actor): boolean {
  return approvers.some((approver) => {
    if (approver.startsWith('user:')) return approver.slice('user:'.length) === actor.userId;
    if (approver === EVERYONE) return true;
    if (approver === ADMINISTRATORS) return actor.isAdministrator;
    return holdsRole(actor, approver);
  });
}
