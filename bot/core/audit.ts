import { z } from 'zod';
import { AUDIT_MAX_ENTRIES, auditKeys } from '../../shared/keys.js';
import { authorize, type Actor } from './authorize.js';
import type { SnapbotCore } from './core.js';

/**
 * The audit trail: every approval request, approval, denial, expiry, execution and
 * result, and every direct action, with who, when and exactly what. A Redis stream,
 * trimmed to about AUDIT_MAX_ENTRIES.
 */
export { AUDIT_MAX_ENTRIES };

export const auditEventSchema = z.enum([
  'requested', // an approval request was opened
  'approved', // one approver's click counted
  'denied',
  'expired',
  'executed', // an approved or direct action finished
  'failed',
  'direct', // an action ran without approval (snapctl, or no approval rule)
  'break-glass', // snapctl ran an action that needs approval, without it
  'cancelled', // a fleet run was cancelled; what had not started did not run
  'refused', // a worker or the control process refused something not signed by the authority (a forgery, a replay)
]);
export type AuditEvent = z.infer<typeof auditEventSchema>;

export const auditEntrySchema = z.object({
  id: z.string(),
  at: z.string(),
  event: auditEventSchema,
  /** `discord:<id>` or `snapctl:user@machine`. */
  actor: z.string(),
  action: z.string(),
  host: z.string().optional(),
  vm: z.string().optional(),
  snapshot: z.string().optional(),
  requestId: z.string().optional(),
  jobId: z.string().optional(),
  /** A sentence: the outcome, the reason, the error code. */
  detail: z.string().optional(),
});
export type AuditEntry = z.infer<typeof auditEntrySchema>;

function auditKey(core: SnapbotCore): string {
  return auditKeys(core.prefix).stream;
}

export async function recordAudit(core: SnapbotCore, entry: Omit<AuditEntry, 'id' | 'at'>): Promise<void> {
  const record = { ...entry, at: new Date().toISOString() };
  try {
    await core.redis.xadd(auditKey(core), 'MAXLEN', '~', String(AUDIT_MAX_ENTRIES), '*', 'entry', JSON.stringify(record));
  } catch (error) {
    // An audit write must not undo the action it records; it must not vanish silently either.
    core.logger.error({ err: error, audit: record }, 'audit entry not written');
  }
}

/** Newest first; only entries about `vm` when given. */
export async function readAudit(core: SnapbotCore, options: { vm?: string | undefined; limit?: number } = {}): Promise<AuditEntry[]> {
  const limit = options.limit ?? 50;
  const entries: AuditEntry[] = [];
  let end = '+';
  // Read backwards in pages until enough entries match the filter.
  for (;;) {
    const page = await core.redis.xrevrange(auditKey(core), end, '-', 'COUNT', 500);
    for (const [id, fields] of page) {
      const parsed = auditEntrySchema.omit({ id: true }).safeParse(JSON.parse(fields[1] ?? '{}'));
      if (!parsed.success) continue;
      if (options.vm !== undefined && parsed.data.vm !== options.vm) continue;
      entries.push({ id, ...parsed.data });
      if (entries.length >= limit) return entries;
    }
    if (page.length < 500) return entries;
    end = `(${page.at(-1)![0]}`;
  }
}

/** The audit trail as `actor` may see it: FORBIDDEN unless the policy lets them audit (that VM). */
export async function readAuditFor(core: SnapbotCore, actor: Actor, options: { vm?: string | undefined; limit?: number }): Promise<AuditEntry[]> {
  authorize(core.policy, actor, 'audit', options.vm ? { vm: options.vm } : {});
  return readAudit(core, options);
}

const NOTICE_SEAL_DOMAIN = 'snapbot-notice/v1';

/**
 * A notice for the team channel (break-glass use), in plain text (the adapter escapes and styles it): queued in Redis and posted by
 * whichever bot process takes it, so it is not lost when no bot runs at that moment.
 * Sealed by the control process: the bot posts nothing else from that list.
 */
export async function announce(core: SnapbotCore, text: string): Promise<void> {
  await core.redis.rpush(auditKeys(core.prefix).notices, JSON.stringify({ text, seal: core.signer.sign(NOTICE_SEAL_DOMAIN, { text }) }));
}

/**
 * The next sealed notice to post, if any; each is handed to one bot process only. A
 * notice the control process did not seal (pushed by anyone else who can write to
 * Redis) is dropped, logged and audited, never posted.
 */
export async function takeNotice(core: SnapbotCore): Promise<string | null> {
  for (;;) {
    const raw = await core.redis.lpop(auditKeys(core.prefix).notices);
    if (raw === null) return null;
    let notice: { text?: unknown; seal?: unknown } = {};
    try {
      notice = JSON.parse(raw) as typeof notice;
    } catch {
      /* not even JSON: refused below */
    }
    if (typeof notice.text === 'string' && core.signer.verify(NOTICE_SEAL_DOMAIN, { text: notice.text }, notice.seal)) return notice.text;
    core.logger.warn({ length: raw.length }, 'dropped a notice the control process did not seal');
    await recordAudit(core, { event: 'refused', actor: 'unknown', action: 'notice', detail: 'a notice without a valid seal was dropped, not posted' });
  }
}
