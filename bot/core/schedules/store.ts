import { createHash } from 'node:crypto';
import { SnapbotError } from '../../../shared/errors.js';
import { scheduleNameSchema } from '../../../shared/names.js';
import {
  scheduleDefinitionSchema,
  scheduleFiringSchema,
  scheduleKeys,
  type ScheduleDefinition,
  type ScheduleFiring,
  type ScheduleStatus,
} from '../../../shared/schedules/definition.js';
import { canonicalJson } from '../../../shared/signing.js';
import type { Policy } from '../../../shared/policy.js';
import { recordAudit } from '../audit.js';
import { authorize, isAllowed, type Actor } from '../authorize.js';
import type { SnapbotCore } from '../core.js';

/**
 * Schedules in Redis: one hash per schedule holding its definition (sealed by the control
 * process, so a definition written into Redis by anyone else never fires), its status,
 * and what its last firing did.
 */

const DEFINITION_SEAL_DOMAIN = 'snapbot-schedule/v1';

export interface ScheduleRecord {
  definition: ScheduleDefinition;
  status: ScheduleStatus;
  /** Firings in a row that ended with failures (0 after a clean one). */
  failedInARow: number;
  lastFiring: ScheduleFiring | null;
  /** The approval request of a pending (or refused) schedule. */
  approvalId: string | null;
}

/** The schedule's name, checked (VALIDATION with the reason otherwise). */
export function parseScheduleName(name: string): string {
  const parsed = scheduleNameSchema.safeParse(name);
  if (!parsed.success) throw new SnapbotError('VALIDATION', `Schedule '${name}': ${parsed.error.issues[0]?.message ?? 'invalid name'}.`);
  return parsed.data;
}

/** SHA-256 of the definition's canonical JSON: what an approval is bound to. */
export function definitionDigest(definition: ScheduleDefinition): string {
  return createHash('sha256').update(canonicalJson(definition)).digest('hex');
}

export function sealDefinition(core: SnapbotCore, definition: ScheduleDefinition): { definition: string; seal: string } {
  const text = JSON.stringify(definition);
  return { definition: text, seal: core.signer.sign(DEFINITION_SEAL_DOMAIN, { name: definition.name, definition: text }) };
}

/** The schedule as stored, or null when there is none. Throws FORBIDDEN (audited) when its definition is not the control process's. */
export async function getSchedule(core: SnapbotCore, name: string): Promise<ScheduleRecord | null> {
  const key = scheduleKeys(core.prefix).schedule(name);
  const [text = null, seal, status, failedInARow, lastFiring, approvalId] = await core.redis.hmget(key, 'definition', 'seal', 'status', 'failedInARow', 'lastFiring', 'approvalId');
  if (text === null) return null;
  // Only the control process can check its seal; a read elsewhere (snapctl) shows the record as stored.
  if (core.hasSigner && !core.signer.verify(DEFINITION_SEAL_DOMAIN, { name, definition: text }, seal ?? '')) {
    core.logger.warn({ schedule: name }, 'refused a forged or altered schedule');
    await recordAudit(core, { event: 'refused', actor: 'snapbot', action: 'schedule', detail: `schedule ${name} not used: its definition was not written by the control process (no valid seal)` });
    throw new SnapbotError('FORBIDDEN', `Schedule ${name} was not written by the control process (or was changed in Redis since); it does not fire. Delete it and create it again.`);
  }
  const definition = scheduleDefinitionSchema.parse(JSON.parse(text));
  const firing = lastFiring ? scheduleFiringSchema.safeParse(JSON.parse(lastFiring)) : null;
  return {
    definition,
    status: toStatus(status ?? null),
    failedInARow: Number(failedInARow ?? '0') || 0,
    lastFiring: firing?.success ? firing.data : null,
    approvalId: approvalId || null,
  };
}

/**
 * Reading schedules needs the policy's `list` (a schedule shows targets, VMs and
 * failures). `reader` is the member asking; snapctl passes none (its reads, like its
 * list and info, need no signature).
 */
export function mayReadSchedules(policy: Policy, reader: Actor): boolean {
  return isAllowed(policy, reader, 'list');
}

function assertMayRead(core: SnapbotCore, reader: Actor | undefined): void {
  if (reader) authorize(core.policy, reader, 'list');
}

/** Like getSchedule, but VALIDATION when there is no such schedule; FORBIDDEN for a `reader` who may not list. */
export async function requireSchedule(core: SnapbotCore, name: string, reader?: Actor): Promise<ScheduleRecord> {
  assertMayRead(core, reader);
  const record = await getSchedule(core, parseScheduleName(name));
  if (!record) throw new SnapbotError('VALIDATION', `No schedule named ${name}. snapctl schedule list shows them.`);
  return record;
}

/** Every schedule, by name; one whose definition is forged is left out (and audited). FORBIDDEN for a `reader` who may not list. */
export async function listSchedules(core: SnapbotCore, reader?: Actor): Promise<ScheduleRecord[]> {
  assertMayRead(core, reader);
  const names = (await core.redis.smembers(scheduleKeys(core.prefix).index)).sort();
  const records: ScheduleRecord[] = [];
  for (const name of names) {
    const record = await getSchedule(core, name).catch((error: unknown) => {
      if (error instanceof SnapbotError && error.code === 'FORBIDDEN') return null;
      throw error;
    });
    if (record) records.push(record);
  }
  return records;
}

/**
 * The approval request's status mirrored onto the schedule (approvals.ts `mirror`) is
 * 'approved', 'denied', 'expired' or 'discarded'; 'approved' becomes 'active' once the
 * control process has started its job scheduler.
 */
function toStatus(raw: string | null): ScheduleStatus {
  switch (raw) {
    case 'active':
    case 'paused':
    case 'pending':
    case 'denied':
    case 'expired':
      return raw;
    case 'approved':
      return 'pending'; // approved, not yet activated: the sweep activates it
    case 'discarded':
      return 'denied';
    default:
      return 'paused';
  }
}

/** The raw status field, for the transitions that need 'approved'. */
export async function rawStatus(core: SnapbotCore, name: string): Promise<string | null> {
  return core.redis.hget(scheduleKeys(core.prefix).schedule(name), 'status');
}

const FIRING_SEAL_DOMAIN = 'snapbot-schedule-firing/v1';

/** A finished firing, for a Discord-serving process to post in the schedule's channel. */
export interface FiringToPost {
  name: string;
  firing: ScheduleFiring;
  failedInARow: number;
  owner: ScheduleDefinition['owner'];
  channelId: string | null;
}

/** Queues a finished firing for the chat (sealed: an entry pushed by anyone else is dropped). */
export async function publishFiring(core: SnapbotCore, name: string, firing: ScheduleFiring, failedInARow: number): Promise<void> {
  const record = await getSchedule(core, name).catch(() => null);
  const entry: FiringToPost = { name, firing, failedInARow, owner: record?.definition.owner ?? { id: 'unknown', userId: null, displayName: 'unknown' }, channelId: record?.definition.channelId ?? null };
  const text = JSON.stringify(entry);
  // Bounded: with no Discord process to post them, old firings go first (each is in the audit trail anyway).
  await core.redis
    .multi()
    .rpush(scheduleKeys(core.prefix).toPost, JSON.stringify({ text, seal: core.signer.sign(FIRING_SEAL_DOMAIN, { text }) }))
    .ltrim(scheduleKeys(core.prefix).toPost, -1000, -1)
    .exec();
}

/** The next finished firing to post, if any (each handed to one process); unsealed entries are dropped and logged. */
export async function takeFiringToPost(core: SnapbotCore): Promise<FiringToPost | null> {
  for (let raw = await core.redis.lpop(scheduleKeys(core.prefix).toPost); raw !== null; raw = await core.redis.lpop(scheduleKeys(core.prefix).toPost)) {
    try {
      const { text, seal } = JSON.parse(raw) as { text: string; seal: string };
      if (typeof text === 'string' && core.signer.verify(FIRING_SEAL_DOMAIN, { text }, seal)) return JSON.parse(text) as FiringToPost;
    } catch {
      // not JSON: dropped below
    }
    core.logger.warn('dropped a schedule firing the control process did not seal');
  }
  return null;
}
