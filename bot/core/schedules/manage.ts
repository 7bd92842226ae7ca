import { Queue } from 'bullmq';
import { decodeFailedReason, SnapbotError } from '../../../shared/errors.js';
import { fleetMatcher, parseFleetSelector, renderNameTemplate } from '../../../shared/fleet.js';
import { snapshotModeSchema } from '../../../shared/jobs.js';
import { descriptionSchema, snapshotNameSchema } from '../../../shared/names.js';
import { approvalRuleFor } from '../../../shared/policy.js';
import { describeCadence, nextFirings, parseCadence, type ScheduleCadence } from '../../../shared/schedules/cadence.js';
import { SCHEDULE_QUEUE, scheduleFiringSchema, scheduleKeys, scheduleNameTemplate, type ScheduleDefinition, type ScheduleFiring } from '../../../shared/schedules/definition.js';
import { formatKeepSpec, parseKeepSpec } from '../../../shared/schedules/keep-spec.js';
import { genuineApproval, markActedOn, openApproval, withdrawApproval, type ApprovalRequest, type ApprovalTerms, type Requester } from '../approvals.js';
import { recordAudit } from '../audit.js';
import { authorize, isAllowed, type Actor } from '../authorize.js';
import type { SnapbotCore } from '../core.js';
import { listHosts } from '../hosts.js';
import { parseInput } from '../parse-input.js';
import { definitionDigest, getSchedule, parseScheduleName, rawStatus, requireSchedule, sealDefinition, type ScheduleRecord } from './store.js';

/**
 * Managing schedules (issue 11): create, pause, resume, run once, delete. Who may is the
 * policy's `schedule` action, and creating one also needs create and delete on every VM
 * its target matches now (its firings make snapshots there, its retention deletes them).
 * A schedule whose target includes VMs whose deletes need approval waits for that
 * approval once, bound to its definition; it fires only once approved.
 */

export interface ScheduleInput {
  name: string;
  target: string;
  cron?: string | undefined;
  every?: string | undefined;
  tz?: string | undefined;
  keep: string;
  mode?: string | undefined;
  prefix?: string | undefined;
  description?: string | undefined;
  channelId?: string | undefined;
}

export interface ScheduleCaller {
  requester: Requester;
  /** Omitted only by trusted internal callers; snapctl and Discord always pass one. */
  actor?: Actor | undefined;
  origin: 'discord' | 'snapctl';
}

export interface CreatedSchedule {
  schedule: ScheduleRecord;
  /** Set when the schedule waits for approval. */
  approval: ApprovalRequest | null;
  /** VMs the target matches now. */
  vms: number;
}

const queues = new WeakMap<SnapbotCore, Queue>();

/** KEYS: the schedule's hash, the index. ARGV: name, definition, seal, status, approval id. 1 when created, 0 when the name is taken. */
const CREATE_SCRIPT = `
if redis.call('HEXISTS', KEYS[1], 'definition') == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'definition', ARGV[2], 'seal', ARGV[3], 'status', ARGV[4], 'failedInARow', '0', 'approvalId', ARGV[5])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`;

/** The `schedules` queue whose job schedulers fire the schedules (one per schedule, by name). */
export function scheduleQueue(core: SnapbotCore): Queue {
  let queue = queues.get(core);
  if (!queue) {
    queue = new Queue(SCHEDULE_QUEUE, { connection: core.redis, prefix: core.prefix });
    queue.on('error', (error) => core.logger.debug({ err: error.message }, 'schedule queue error'));
    queues.set(core, queue);
  }
  return queue;
}

/** Checks and normalizes what was typed; VALIDATION naming the problem. */
export function parseScheduleInput(input: ScheduleInput, owner: Requester, now = new Date()): ScheduleDefinition {
  const name = parseScheduleName(input.name);
  const selector = parseFleetSelector(input.target);
  const cadence = parseCadence({ cron: input.cron, every: input.every, tz: input.tz });
  const keep = parseKeepSpec(input.keep);
  const mode = parseInput(snapshotModeSchema, input.mode ?? 'disk-only');
  const prefix = input.prefix ?? name;
  const example = renderNameTemplate(scheduleNameTemplate({ prefix }), { vm: 'vm', host: 'host', at: now });
  const valid = snapshotNameSchema.safeParse(example);
  if (prefix.length > 64 || /[{}]/.test(prefix) || !valid.success) {
    throw new SnapbotError('VALIDATION', `Prefix '${prefix}' does not make valid snapshot names (e.g. '${example}'): ${valid.success ? 'at most 64 characters, no { or }' : valid.error.issues[0]?.message}.`);
  }
  const description = input.description === undefined ? null : parseInput(descriptionSchema, input.description);
  if (input.channelId !== undefined && !/^\d{15,21}$/.test(input.channelId)) throw new SnapbotError('VALIDATION', `Channel '${input.channelId}' is not a Discord channel id.`);
  return { name, target: selector.text, cadence, keep, mode, prefix, description, channelId: input.channelId ?? null, owner, createdAt: now.toISOString(), version: 1 };
}

/** The VMs the target matches now, on every host that ever reported (online or not). */
async function matchedVms(core: SnapbotCore, target: string): Promise<Array<{ host: string; vm: string }>> {
  const matches = fleetMatcher(parseFleetSelector(target));
  const vms: Array<{ host: string; vm: string }> = [];
  for (const host of await listHosts(core)) {
    for (const vm of host.vms) if (matches(host.hostId, vm.name)) vms.push({ host: host.hostId, vm: vm.name });
  }
  return vms;
}

/** The strictest delete-approval rule among the VMs (most approvals required), or null when none needs one. */
function approvalNeeded(core: SnapbotCore, vms: ReadonlyArray<{ host: string; vm: string }>): ApprovalTerms | null {
  let terms = null as ApprovalTerms | null;
  for (const { host, vm } of vms) {
    const rule = approvalRuleFor(core.policy, 'delete', host, vm);
    if (!rule) continue;
    const before: ApprovalTerms | null = terms;
    if (before && rule.required <= before.required && (before.allowSelfApproval || !rule.allowSelfApproval)) continue;
    terms = {
      reason: `its retention deletes snapshots of ${vm}, and deletes there need ${rule.required} approval(s)`,
      approvers: rule.approvers,
      required: Math.max(rule.required, before?.required ?? 0),
      allowSelfApproval: rule.allowSelfApproval && (before?.allowSelfApproval ?? true),
      ttlMinutes: Math.min(rule.ttlMinutes, before?.ttlMinutes ?? rule.ttlMinutes),
    };
  }
  return terms;
}

export async function createSchedule(core: SnapbotCore, input: ScheduleInput, caller: ScheduleCaller): Promise<CreatedSchedule> {
  if (caller.actor) authorize(core.policy, caller.actor, 'schedule');
  const definition = parseScheduleInput(input, caller.requester);
  const vms = await matchedVms(core, definition.target);
  if (caller.actor) {
    const actor = caller.actor;
    const forbidden = vms.filter(({ host, vm }) => !isAllowed(core.policy, actor, 'create', { host, vm }) || !isAllowed(core.policy, actor, 'delete', { host, vm }));
    if (forbidden.length > 0) {
      const named = forbidden.slice(0, 5).map(({ host, vm }) => `${vm} @ ${host}`).join(', ');
      throw new SnapbotError('FORBIDDEN', `Target '${definition.target}' includes ${forbidden.length} VM(s) you may not snapshot and prune (${named}${forbidden.length > 5 ? ', …' : ''}); nothing was created.`);
    }
  }
  const keys = scheduleKeys(core.prefix);
  const terms = approvalNeeded(core, vms);
  const sealed = sealDefinition(core, definition);
  const approvalId = terms ? `schedule-${definition.name}-${definition.version}-${Date.now().toString(36)}` : '';
  // All at once or not at all: a record half written (a definition without its seal) would read as forged.
  const created = await core.redis.eval(
    CREATE_SCRIPT,
    2,
    keys.schedule(definition.name),
    keys.index,
    definition.name,
    sealed.definition,
    sealed.seal,
    terms ? 'pending' : 'active',
    approvalId,
  );
  if (created !== 1) throw new SnapbotError('VALIDATION', `A schedule named ${definition.name} already exists; delete it first or choose another name.`);
  await recordAudit(core, {
    event: terms ? 'requested' : 'direct',
    actor: caller.requester.id,
    action: 'schedule',
    detail: `created ${definition.name}: ${definition.target}, ${describeCadence(definition.cadence)}, keep ${formatKeepSpec(definition.keep)}, ${definition.mode}`,
  });
  let approval: ApprovalRequest | null = null;
  if (terms) {
    approval = await openApproval(core, {
      id: approvalId,
      subject: {
        kind: 'schedule',
        name: definition.name,
        version: definition.version,
        digest: definitionDigest(definition),
        target: definition.target,
        cadence: describeCadence(definition.cadence),
        keep: formatKeepSpec(definition.keep),
        vms: vms.length,
      },
      terms,
      requester: caller.requester,
      origin: caller.origin,
      mirror: keys.schedule(definition.name),
    });
  } else {
    await startScheduler(core, definition);
  }
  return { schedule: (await getSchedule(core, definition.name))!, approval, vms: vms.length };
}

/**
 * A schedule whose approval came through: checked (the approval is the control
 * process's, for exactly this definition), then its job scheduler started. Idempotent;
 * called by whoever sees the approval first (the deciding click, or the sweep).
 */
export async function activateApprovedSchedule(core: SnapbotCore, approvalId: string): Promise<ScheduleRecord | null> {
  const { request } = await genuineApproval(core, approvalId);
  const subject = request.subject;
  if (subject.kind !== 'schedule') throw new SnapbotError('INTERNAL', `Approval ${approvalId} is not about a schedule.`);
  const record = await getSchedule(core, subject.name);
  const status = await rawStatus(core, subject.name);
  // Deleted or changed since it was asked: this approval is for a definition that no longer exists.
  if (!record || record.approvalId !== approvalId || definitionDigest(record.definition) !== subject.digest) {
    await markActedOn(core, approvalId);
    return record;
  }
  if (status === 'approved') {
    await startScheduler(core, record.definition);
    await core.redis.hset(scheduleKeys(core.prefix).schedule(subject.name), 'status', 'active');
    await recordAudit(core, { event: 'executed', actor: request.requester.id, action: 'schedule', requestId: approvalId, detail: `schedule ${subject.name} approved and started` });
  }
  await markActedOn(core, approvalId);
  return getSchedule(core, subject.name);
}

/** The job scheduler that fires it (BullMQ keeps it in Redis: it survives restarts, and fires once per slot whatever the number of control processes). */
async function startScheduler(core: SnapbotCore, definition: ScheduleDefinition): Promise<void> {
  await scheduleQueue(core).upsertJobScheduler(definition.name, repeatOptions(definition.cadence), {
    name: 'fire',
    data: { schedule: definition.name, version: definition.version },
    opts: { removeOnComplete: { count: 20 }, removeOnFail: { count: 50 } },
  });
}

function repeatOptions(cadence: ScheduleCadence): { pattern: string; tz: string } | { every: number } {
  return 'pattern' in cadence ? { pattern: cadence.pattern, tz: cadence.tz } : { every: cadence.every };
}

/** Every active schedule has its job scheduler (after a restore of Redis, say); a missing one is started again. Nothing else is touched. */
export async function ensureSchedulers(core: SnapbotCore, records: readonly ScheduleRecord[]): Promise<number> {
  let started = 0;
  for (const record of records) {
    if (record.status !== 'active') continue;
    if (await scheduleQueue(core).getJobScheduler(record.definition.name)) continue;
    await startScheduler(core, record.definition);
    started += 1;
  }
  return started;
}

async function mayManage(core: SnapbotCore, caller: ScheduleCaller, name: string): Promise<ScheduleRecord> {
  if (caller.actor) authorize(core.policy, caller.actor, 'schedule');
  return requireSchedule(core, name);
}

export async function pauseSchedule(core: SnapbotCore, name: string, caller: ScheduleCaller): Promise<ScheduleRecord> {
  const record = await mayManage(core, caller, name);
  if (record.status !== 'active') throw new SnapbotError('VALIDATION', `Schedule ${name} is ${record.status}, not active.`);
  await scheduleQueue(core).removeJobScheduler(name);
  await core.redis.hset(scheduleKeys(core.prefix).schedule(name), 'status', 'paused');
  await recordAudit(core, { event: 'direct', actor: caller.requester.id, action: 'schedule', detail: `paused ${name}` });
  return (await getSchedule(core, name))!;
}

export async function resumeSchedule(core: SnapbotCore, name: string, caller: ScheduleCaller): Promise<ScheduleRecord> {
  const record = await mayManage(core, caller, name);
  if (record.status !== 'paused') throw new SnapbotError('VALIDATION', `Schedule ${name} is ${record.status}, not paused.`);
  await startScheduler(core, record.definition);
  await core.redis.hset(scheduleKeys(core.prefix).schedule(name), 'status', 'active');
  await recordAudit(core, { event: 'direct', actor: caller.requester.id, action: 'schedule', detail: `resumed ${name}` });
  return (await getSchedule(core, name))!;
}

/** Fires it once now (as at a slot; paused schedules too). Returns the firing's job id. */
export async function runScheduleNow(core: SnapbotCore, name: string, caller: ScheduleCaller): Promise<string> {
  const record = await mayManage(core, caller, name);
  if (record.status !== 'active' && record.status !== 'paused') throw new SnapbotError('VALIDATION', `Schedule ${name} is ${record.status}; only an approved schedule runs.`);
  const jobId = `manual-${name}-${Date.now()}`;
  await scheduleQueue(core).add('fire', { schedule: name, version: record.definition.version, manual: true }, { jobId, removeOnComplete: { count: 20 }, removeOnFail: { count: 50 } });
  await recordAudit(core, { event: 'direct', actor: caller.requester.id, action: 'schedule', detail: `ran ${name} once (${jobId})` });
  return jobId;
}

/** Stops it for good: its job scheduler and record go; its snapshots stay (delete them with a fleet delete). */
export async function deleteSchedule(core: SnapbotCore, name: string, caller: ScheduleCaller): Promise<void> {
  if (caller.actor) authorize(core.policy, caller.actor, 'schedule');
  const keys = scheduleKeys(core.prefix);
  // A record changed in Redis (no valid seal) never fires, but it can always be deleted.
  const record = await getSchedule(core, parseScheduleName(name)).catch((error: unknown) => {
    if (error instanceof SnapbotError && error.code === 'FORBIDDEN') return null;
    throw error;
  });
  if (!record && (await core.redis.hexists(keys.schedule(name), 'definition')) === 0) throw new SnapbotError('VALIDATION', `No schedule named ${name}. snapctl schedule list shows them.`);
  await scheduleQueue(core).removeJobScheduler(name);
  if (record?.status === 'pending' && record.approvalId) await withdrawApproval(core, { id: record.approvalId, by: caller.requester.id, mirror: keys.schedule(name) }).catch(() => undefined);
  await core.redis.multi().del(keys.schedule(name)).srem(keys.index, name).exec();
  await recordAudit(core, { event: 'direct', actor: caller.requester.id, action: 'schedule', detail: `deleted ${name}; its snapshots were left as they are` });
}

/** The next firings of an active schedule, for show and list. */
export function upcomingFirings(record: ScheduleRecord, count = 3, from = new Date()): string[] {
  if (record.status !== 'active') return [];
  return nextFirings(record.definition.cadence, from, count).map((date) => date.toISOString());
}

/** Waits for a firing (`runScheduleNow`'s job) to end and returns its record; TIMEOUT when it takes longer than `timeoutMs`. */
export async function awaitFiring(core: SnapbotCore, jobId: string, timeoutMs: number, pollMs = 250): Promise<ScheduleFiring | null> {
  const deadline = Date.now() + timeoutMs;
  const queue = scheduleQueue(core);
  for (;;) {
    const job = await queue.getJob(jobId);
    const state = job ? await job.getState() : 'unknown';
    if (state === 'completed') return scheduleFiringSchema.nullable().parse(job!.returnvalue ?? null);
    if (state === 'failed') {
      const failure = decodeFailedReason(job!.failedReason);
      throw new SnapbotError(failure.code, failure.message);
    }
    if (state === 'unknown') throw new SnapbotError('INTERNAL', `The firing ${jobId} is no longer in the schedules queue.`);
    if (Date.now() > deadline) throw new SnapbotError('TIMEOUT', `The firing ${jobId} is still running after ${Math.round(timeoutMs / 1000)}s; it goes on (schedule show tells how it ended).`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
