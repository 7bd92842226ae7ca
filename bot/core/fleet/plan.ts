import { randomBytes } from 'node:crypto';
import { SnapbotError } from '../../../shared/errors.js';
import { checkNameTemplate, fleetKeys, fleetMatcher, parseFleetSelector, renderNameTemplate } from '../../../shared/fleet.js';
import { snapshotModeSchema } from '../../../shared/jobs.js';
import { descriptionSchema, snapshotNameSchema } from '../../../shared/names.js';
import { compileGlob, type GlobPredicate } from '../../../shared/glob.js';
import { approvalRuleFor } from '../../../shared/policy.js';
import { authorize, isAllowed, type Actor } from '../authorize.js';
import type { SnapbotCore } from '../core.js';
import { listHosts } from '../hosts.js';
import { parseInput } from '../parse-input.js';
import { fleetActionSchema, getFleetRun, sealedPlan, type FleetAction, type FleetPlan, type FleetRequester, type FleetTarget } from './run-store.js';

/**
 * Planning a fleet run: the selector resolved against the hosts' inventories into
 * targets (offline hosts, VMs already holding the name and VMs the requester may not
 * act on left out, and said so), whether approval is needed, stored as a preview.
 * Nothing is queued until the requester confirms.
 */

export interface FleetRequest {
  action: FleetAction;
  target: string;
  name?: string | undefined;
  mode?: string | undefined;
  description?: string | undefined;
  requester: FleetRequester;
  actor?: Actor | undefined;
  origin: 'discord' | 'snapctl';
}

/**
 * How a schedule's firing is planned (bot/core/schedules): a fixed run id and time, so a
 * firing taken again after a crash plans the same run with the same names, and no
 * approval of its own (the schedule was approved when it was created or changed).
 */
export interface ScheduledFiring {
  runId: string;
  at: Date;
  schedule: { name: string; minFreePercent: number };
}

/** A preview is kept this long for its Confirm button. */
const PREVIEW_TTL_SECONDS = 3600;
const DEFAULT_TEMPLATE = 'fleet-{date}-{time}';

function policyActionOf(action: FleetAction): 'create' | 'delete' {
  return action === 'snapshot' ? 'create' : 'delete';
}

/** Resolves a fleet request against the hosts' inventories and stores it as a preview. Nothing is queued. */
export async function planFleet(core: SnapbotCore, request: FleetRequest, firing?: ScheduledFiring): Promise<FleetPlan> {
  const action = parseInput(fleetActionSchema, request.action);
  const policyAction = policyActionOf(action);
  if (request.actor) authorize(core.policy, request.actor, policyAction);
  const selector = parseFleetSelector(request.target);
  const matches = fleetMatcher(selector);
  const now = firing?.at ?? new Date();

  let mode: FleetPlan['mode'] = null;
  let description: string | null = null;
  let snapshotMatcher: GlobPredicate | null = null;
  const name = request.name?.trim() || (action === 'snapshot' ? DEFAULT_TEMPLATE : '');
  if (action === 'snapshot') {
    checkNameTemplate(name);
    const parsedMode = snapshotModeSchema.safeParse(request.mode ?? 'disk-only');
    if (!parsedMode.success) throw new SnapbotError('VALIDATION', `Mode must be disk-only or full, not '${request.mode}'.`);
    mode = parsedMode.data;
    if (request.description !== undefined) description = parseInput(descriptionSchema, request.description);
  } else {
    if (!name) throw new SnapbotError('VALIDATION', 'A fleet delete needs the snapshot name (or a glob such as pre-rollout-*).');
    snapshotMatcher = compileGlob(name);
  }

  const plan: FleetPlan = {
    id: firing?.runId ?? randomBytes(6).toString('hex'),
    action,
    selector: selector.text,
    name,
    mode,
    description,
    createdAt: now.toISOString(),
    requester: request.requester,
    origin: request.origin,
    targets: [],
    skipped: { offlineHosts: [], existing: [], forbidden: [], withoutMatch: 0 },
    perHost: core.policy.fleet.perHost,
    maxConcurrent: core.policy.fleet.maxConcurrent,
    approval: null,
    retryOf: null,
    schedule: firing?.schedule ?? null,
  };
  for (const host of await listHosts(core)) {
    const selected = host.vms.filter((vm) => matches(host.hostId, vm.name));
    if (selected.length === 0) continue;
    if (!host.online) {
      plan.skipped.offlineHosts.push({ hostId: host.hostId, lastSeen: host.lastSeen, vms: selected.length });
      continue;
    }
    for (const vm of selected) {
      if (request.actor && !isAllowed(core.policy, request.actor, policyAction, { host: host.hostId, vm: vm.name })) {
        plan.skipped.forbidden.push({ host: host.hostId, vm: vm.name });
        continue;
      }
      if (action === 'snapshot') {
        const snapshot = renderNameTemplate(name, { vm: vm.name, host: host.hostId, at: now });
        const valid = snapshotNameSchema.safeParse(snapshot);
        if (!valid.success) throw new SnapbotError('VALIDATION', `Name template '${name}' gives '${snapshot}' for ${vm.name}: ${valid.error.issues[0]?.message}`);
        if (vm.snapshots.some((existing) => existing.name === snapshot)) {
          plan.skipped.existing.push({ host: host.hostId, vm: vm.name, snapshot });
          continue;
        }
        plan.targets.push({ index: plan.targets.length, host: host.hostId, vm: vm.name, uuid: vm.uuid, snapshot });
      } else {
        const doomed = vm.snapshots.filter((snapshot) => snapshotMatcher!(snapshot.name));
        if (doomed.length === 0) plan.skipped.withoutMatch += 1;
        for (const snapshot of doomed) {
          plan.targets.push({ index: plan.targets.length, host: host.hostId, vm: vm.name, uuid: vm.uuid, snapshot: snapshot.name, ...(snapshot.createdAt ? { createdAt: snapshot.createdAt } : {}) });
        }
      }
    }
  }
  plan.approval = firing ? null : approvalTerms(core, plan);
  await storePreview(core, plan);
  return plan;
}

/**
 * Whether the run needs approval, and on what terms: fleet deletes (unless the policy
 * says otherwise) and snapshots of more VMs than `snapshotsAbove`. A delete run is held
 * to the strictest per-VM approval rule of its targets too (the most approvals
 * required), so a VM that needs two approvals for a delete cannot lose a snapshot to a
 * fleet run approved by one.
 */
export function approvalTerms(core: SnapbotCore, plan: Pick<FleetPlan, 'action' | 'targets'>): FleetPlan['approval'] {
  const fleetRule = core.policy.fleet.approval;
  let reason: string | null = null;
  if (plan.action === 'delete' && fleetRule.deletes) reason = 'fleet deletes need approval';
  else if (plan.action === 'snapshot' && plan.targets.length > fleetRule.snapshotsAbove) reason = `more than ${fleetRule.snapshotsAbove} VMs`;
  let terms = reason === null ? null : { reason, approvers: fleetRule.approvers, required: fleetRule.required, allowSelfApproval: fleetRule.allowSelfApproval, ttlMinutes: fleetRule.ttlMinutes };
  if (plan.action === 'delete') {
    for (const target of plan.targets) {
      const rule = approvalRuleFor(core.policy, 'delete', target.host, target.vm);
      if (!rule || (terms && rule.required <= terms.required && (terms.allowSelfApproval || !rule.allowSelfApproval))) continue;
      terms = {
        reason: `deletes on ${target.vm} need ${rule.required} approval(s)`,
        approvers: rule.approvers,
        required: Math.max(rule.required, terms?.required ?? 0),
        allowSelfApproval: rule.allowSelfApproval && (terms?.allowSelfApproval ?? true),
        ttlMinutes: Math.min(rule.ttlMinutes, terms?.ttlMinutes ?? rule.ttlMinutes),
      };
    }
  }
  return terms;
}

async function storePreview(core: SnapbotCore, plan: FleetPlan): Promise<void> {
  const keys = fleetKeys(core.prefix, plan.id);
  await core.redis
    .multi()
    .hset(keys.run, { ...sealedPlan(core, plan), status: 'preview', requesterUserId: plan.requester.userId ?? '' })
    .expire(keys.run, PREVIEW_TTL_SECONDS)
    .exec();
}

/**
 * A new preview of the failed targets of a finished run ("Retry failed"). Whoever asks
 * is checked against every target, as for a new run: a member allowed on `dev-*` only
 * cannot retry someone else's run over `prod-web`; targets they may not act on are left
 * out and listed as such.
 */
export async function planRetryOfFailed(core: SnapbotCore, runId: string, requester: FleetRequester, actor?: Actor): Promise<FleetPlan> {
  const run = await getFleetRun(core, runId);
  if (!run) throw new SnapbotError('VALIDATION', `No fleet run ${runId} (it may have expired).`);
  const policyAction = policyActionOf(run.plan.action);
  if (actor) authorize(core.policy, actor, policyAction);
  const failed = run.plan.targets.filter((target) => run.targets.get(target.index)?.state === 'failed');
  if (failed.length === 0) throw new SnapbotError('VALIDATION', `Fleet run ${runId} has no failed targets to retry.`);
  const allowed: FleetTarget[] = [];
  const forbidden: FleetPlan['skipped']['forbidden'] = [];
  for (const target of failed) {
    if (actor && !isAllowed(core.policy, actor, policyAction, { host: target.host, vm: target.vm })) forbidden.push({ host: target.host, vm: target.vm });
    else allowed.push({ ...target, index: allowed.length });
  }
  const plan: FleetPlan = {
    ...run.plan,
    id: randomBytes(6).toString('hex'),
    createdAt: new Date().toISOString(),
    requester,
    origin: actor ? 'discord' : 'snapctl',
    targets: allowed,
    skipped: { offlineHosts: [], existing: [], forbidden, withoutMatch: 0 },
    retryOf: runId,
  };
  plan.approval = approvalTerms(core, plan);
  await storePreview(core, plan);
  return plan;
}
