import { z } from 'zod';
import { fleetKeys, fleetTargetStateSchema, type FleetTargetState } from '../../../shared/fleet.js';
import { snapshotModeSchema } from '../../../shared/jobs.js';
import { SnapbotError } from '../../../shared/errors.js';
import { getApproval, requesterSchema } from '../approvals.js';
import { recordAudit } from '../audit.js';
import type { SnapbotCore } from '../core.js';

/**
 * A fleet run's record in Redis: the plan (what runs where, fixed at planning), the
 * run's status, and each target's state (moved only by the scripts in shared/fleet.ts).
 *
 * Run status: preview → (pending → approved) → running → (cancelling →) finished; a
 * preview can be discarded (its Cancel), a request denied, expired or withdrawn
 * (`discarded`). While approval is pending, the approval request (bot/core/approvals,
 * same id as the run) decides, and moves the run's status in the same script.
 */
export type FleetRunStatus = 'preview' | 'discarded' | 'pending' | 'approved' | 'denied' | 'expired' | 'running' | 'cancelling' | 'finished';

export const fleetActionSchema = z.enum(['snapshot', 'delete']);
export type FleetAction = z.infer<typeof fleetActionSchema>;

export type FleetRequester = z.infer<typeof requesterSchema>;

export const fleetTargetSchema = z.object({
  index: z.number().int(),
  host: z.string(),
  vm: z.string(),
  uuid: z.string(),
  snapshot: z.string(),
  /** A delete's snapshot as the plan saw it: the worker refuses (APPROVAL_STALE) one re-created under the name since. */
  createdAt: z.string().optional(),
});
export type FleetTarget = z.infer<typeof fleetTargetSchema>;

export const fleetApprovalTermsSchema = z.object({
  reason: z.string(),
  approvers: z.array(z.string()),
  required: z.number().int(),
  allowSelfApproval: z.boolean(),
  ttlMinutes: z.number(),
});

export const fleetPlanSchema = z.object({
  id: z.string(),
  action: fleetActionSchema,
  selector: z.string(),
  /** The name or template as typed (snapshot), or the name or glob (delete). */
  name: z.string(),
  mode: snapshotModeSchema.nullable(),
  description: z.string().nullable(),
  createdAt: z.string(),
  requester: requesterSchema,
  origin: z.enum(['discord', 'snapctl']),
  targets: z.array(fleetTargetSchema),
  skipped: z.object({
    offlineHosts: z.array(z.object({ hostId: z.string(), lastSeen: z.string(), vms: z.number().int() })),
    /** Snapshot runs: VMs that already hold a snapshot of the rendered name. */
    existing: z.array(z.object({ host: z.string(), vm: z.string(), snapshot: z.string() })),
    /** VMs the requester may not act on. */
    forbidden: z.array(z.object({ host: z.string(), vm: z.string() })),
    /** Delete runs: selected VMs that hold no snapshot matching the name. */
    withoutMatch: z.number().int(),
  }),
  perHost: z.number().int(),
  maxConcurrent: z.number().int(),
  approval: fleetApprovalTermsSchema.nullable(),
  /** The run this one retries the failures of. */
  retryOf: z.string().nullable(),
  /** A schedule's firing: its snapshots carry the schedule's marker and its space guard. Absent in runs planned before 0.3. */
  schedule: z.object({ name: z.string(), minFreePercent: z.number() }).nullable().optional(),
});
export type FleetPlan = z.infer<typeof fleetPlanSchema>;

export interface FleetRun {
  plan: FleetPlan;
  status: FleetRunStatus;
  targets: Map<number, FleetTargetState>;
  /** From the run's approval request, when it has one. */
  approvals: string[];
  deniedBy: string | null;
  expiresAt: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  /** Who cancelled the run, or withdrew its approval request. */
  cancelledBy: string | null;
  message: { channelId: string; messageId: string } | null;
}

/** Run ids are 12 hex digits (6–32 accepted); anything else is not a run. */
export const FLEET_RUN_ID = /^[0-9a-f]{6,32}$/;

export async function getFleetRun(core: SnapbotCore, runId: string): Promise<FleetRun | null> {
  if (!FLEET_RUN_ID.test(runId)) return null;
  const keys = fleetKeys(core.prefix, runId);
  const [fields, targetFields, approval] = await Promise.all([core.redis.hgetall(keys.run), core.redis.hgetall(keys.targets), getApproval(core, runId)]);
  if (!fields.plan) return null;
  const targets = new Map<number, FleetTargetState>();
  for (const [index, raw] of Object.entries(targetFields)) {
    const parsed = fleetTargetStateSchema.safeParse(JSON.parse(raw));
    if (parsed.success) targets.set(Number(index), parsed.data);
  }
  const number = (value: string | undefined) => (value ? Number(value) : null);
  return {
    plan: fleetPlanSchema.parse(JSON.parse(fields.plan)),
    status: (fields.status ?? 'preview') as FleetRunStatus,
    targets,
    approvals: approval?.approvals ?? [],
    deniedBy: approval?.deniedBy ?? null,
    expiresAt: approval?.request.expiresAt ?? null,
    startedAt: number(fields.startedAt),
    finishedAt: number(fields.finishedAt),
    cancelledBy: fields.cancelledBy || approval?.withdrawnBy || null,
    message: fields.message ? (JSON.parse(fields.message) as FleetRun['message']) : null,
  };
}

export async function setFleetMessage(core: SnapbotCore, runId: string, message: { channelId: string; messageId: string }): Promise<void> {
  await core.redis.hset(fleetKeys(core.prefix, runId).run, 'message', JSON.stringify(message));
}

// KEYS: run hash. ARGV: from-status, to-status. Returns 1 when this call made the change.
const RUN_TRANSITION_SCRIPT = `
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
return 1
`;

/** Moves the run from `from` to `to`, atomically; false when it was not in `from` (another click or process won). */
export async function transitionRun(core: SnapbotCore, runId: string, from: FleetRunStatus, to: FleetRunStatus): Promise<boolean> {
  return (await core.redis.eval(RUN_TRANSITION_SCRIPT, 1, fleetKeys(core.prefix, runId).run, from, to)) === 1;
}

const PLAN_SEAL_DOMAIN = 'snapbot-fleet-plan/v1';
const START_SEAL_DOMAIN = 'snapbot-fleet-start/v1';

/** The run hash's `plan` and its seal: only the control process can write a plan that runs. */
export function sealedPlan(core: SnapbotCore, plan: FleetPlan): { plan: string; seal: string } {
  const text = JSON.stringify(plan);
  return { plan: text, seal: core.signer.sign(PLAN_SEAL_DOMAIN, { runId: plan.id, plan: text }) };
}

/** The seal that says the control process started this run (a Confirm, or its approval): a crashed fan-out may be repeated only with it. */
export function startSeal(core: SnapbotCore, runId: string): string {
  return core.signer.sign(START_SEAL_DOMAIN, { runId });
}

/**
 * FORBIDDEN (audited) unless the run's plan is exactly as the control process planned
 * it and, when `started` is asked, the control process started it. A plan or a status
 * written into Redis by anyone else queues nothing.
 */
export async function assertGenuineRun(core: SnapbotCore, runId: string, options: { started?: boolean } = {}): Promise<void> {
  const [plan, seal, started] = await core.redis.hmget(fleetKeys(core.prefix, runId).run, 'plan', 'seal', 'startSeal');
  let problem: string | null = null;
  if (plan === null || !core.signer.verify(PLAN_SEAL_DOMAIN, { runId, plan }, seal)) problem = 'its plan was not made by the control process (no valid seal)';
  else if (options.started && !core.signer.verify(START_SEAL_DOMAIN, { runId }, started)) problem = 'the control process never started it';
  if (!problem) return;
  core.logger.warn({ runId, problem }, 'refused a forged or altered fleet run');
  await recordAudit(core, { event: 'refused', actor: 'snapbot', action: 'fleet', requestId: runId, detail: `not run: ${problem}` });
  throw new SnapbotError('FORBIDDEN', `Fleet run ${runId} cannot run: ${problem}. Nothing was queued.`);
}

export function fleetAudit(plan: FleetPlan) {
  return { actor: plan.requester.id, action: `fleet-${plan.action}`, requestId: plan.id, snapshot: plan.name, detail: plan.selector };
}
