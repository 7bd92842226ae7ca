import type { APIEmbed } from 'discord.js';
import { describe, expect, it } from 'vitest';
import type { ApprovalState, ApprovalStatus } from '../../../../../bot/core/approvals.js';
import type { FiringToPost, ScheduleRecord } from '../../../../../bot/core/schedules/store.js';
import type { ReplyPayload } from '../../../../../bot/discord/reply-payload.js';
import { COLOR } from '../../../../../bot/discord/render/colors.js';
import { fitMessage } from '../../../../../bot/discord/render/discord-limits.js';
import { approvalButtons, renderApprovalRequest } from '../../../../../bot/discord/render/render-approval.js';
import { renderHostsReply } from '../../../../../bot/discord/render/render-hosts.js';
import { failingSchedules, failingSchedulesField, renderFiringPost, renderScheduleEmbed, renderScheduleList, slotText } from '../../../../../bot/discord/render/render-schedule.js';
import type { ScheduleFiring } from '../../../../../shared/schedules/definition.js';
import { zodFormErrors } from '../../../../fixtures/fake-discord/discord-errors.js';
import { messageRefusal } from '../../../../fixtures/fake-discord/message-rules.js';
import { messageCreateSchema, messageEditSchema, webhookEditSchema } from '../../../../fixtures/fake-discord/route-schemas.js';

const OWNER = '111111111111111111';
const NOW = Date.parse('2026-11-30T12:00:00.000Z');

function firing(overrides: Partial<ScheduleFiring> = {}): ScheduleFiring {
  return {
    slot: '2026-11-30T02:30:00.000Z',
    runId: '0123456789ab',
    finishedAt: '2026-11-30T02:31:07.000Z',
    outcome: 'ok',
    counts: { done: 3, failed: 0, skipped: 1 },
    pruned: 2,
    kept: 9,
    retentionSkipped: [],
    failures: [],
    ...overrides,
  };
}

function post(overrides: Partial<ScheduleFiring> = {}, failedInARow = 0, userId: string | null = OWNER): FiringToPost {
  return { name: 'nightly-web', firing: firing(overrides), failedInARow, owner: { id: userId ? `discord:${userId}` : 'operator:alice', userId, displayName: 'ada' }, channelId: null };
}

const failure = (vm: string, code = 'UNSUPPORTED', message = 'QEMU guest agent is not configured') => ({ vm, host: 'kvm-b', code, message });

function record(overrides: Partial<ScheduleRecord> = {}): ScheduleRecord {
  return {
    definition: {
      name: 'nightly-web',
      target: 'web-* !web-canary',
      cadence: { pattern: '30 2 * * *', tz: 'Europe/Berlin' },
      keep: { last: 7, weekly: 4 },
      mode: 'disk-only',
      prefix: 'nightly',
      description: 'before the **backup**',
      channelId: '222222222222222222',
      owner: { id: `discord:${OWNER}`, userId: OWNER, displayName: 'ada' },
      createdAt: '2026-11-01T10:00:00.000Z',
      version: 1,
    },
    status: 'active',
    failedInARow: 0,
    lastFiring: null,
    approvalId: null,
    ...overrides,
  };
}

function embedOf(payload: ReplyPayload): APIEmbed {
  return payload.embeds![0]!;
}

const fieldValue = (embed: APIEmbed, name: string | RegExp) => embed.fields?.find((field) => (typeof name === 'string' ? field.name === name : name.test(field.name)))?.value;

/** What Discord would refuse in `payload` posted to (or edited in) a channel, fitted as the bot sends it. */
function refusals(payload: ReplyPayload, route: 'channel-create' | 'channel-edit' | 'webhook-edit'): string[] {
  const fitted = fitMessage(payload);
  const body = JSON.parse(
    JSON.stringify({ content: fitted.content, embeds: fitted.embeds, components: fitted.components, allowed_mentions: { parse: fitted.allowedMentions.parse, users: fitted.allowedMentions.users } }),
  ) as Record<string, unknown>;
  const schema = { 'channel-create': messageCreateSchema, 'channel-edit': messageEditSchema, 'webhook-edit': webhookEditSchema }[route];
  const problems: string[] = [];
  const parsed = schema.safeParse(body);
  if (!parsed.success) problems.push(...zodFormErrors(parsed.error.issues, body).map((error) => `${error.path.join('.')}: ${error.message}`));
  const existing = route === 'channel-create' ? undefined : { content: 'before', embeds: [{}], components: [], attachmentIds: [], flags: 0 };
  const refusal = messageRefusal(body as Parameters<typeof messageRefusal>[0], { route, path: [], files: [], ...(existing ? { existing } : {}) });
  if (refusal) problems.push(`${refusal.status} ${JSON.stringify(refusal.body)}`);
  return problems;
}

describe('the firing post', () => {
  it('titles a clean firing with the schedule and its slot, and shows counts and retention', () => {
    const payload = renderFiringPost(post());
    const embed = embedOf(payload);
    expect(embed.title).toBe('✅ Schedule nightly-web · 2026-11-30 02:30 UTC');
    expect(embed.color).toBe(COLOR.success);
    expect(embed.description).toBe('**3 taken** · 0 failed · 1 skipped\nRetention: pruned 2, kept 9');
    expect(embed.fields).toEqual([]);
    expect(embed.footer?.text).toBe('fleet run 0123456789ab · finished 2026-11-30 02:31:07 UTC');
    // Nobody is pinged for a firing that went well.
    expect(payload.content).toBeUndefined();
    expect(payload.allowedMentions).toBeUndefined();
  });

  it('puts the failures first and mentions the owner, allowing only that ping', () => {
    const payload = renderFiringPost(post({ outcome: 'partial', counts: { done: 2, failed: 1, skipped: 0 }, failures: [failure('web-06')] }, 1));
    const embed = embedOf(payload);
    expect(embed.title).toBe('⚠️ Schedule nightly-web · 2026-11-30 02:30 UTC · partial');
    expect(embed.color).toBe(COLOR.warning);
    expect(embed.fields?.[0]).toEqual({ name: 'Failures (1)', value: '❌ **web-06** @ kvm-b: **UNSUPPORTED**: QEMU guest agent is not configured' });
    expect(payload.content).toBe(`<@${OWNER}> your schedule **nightly-web** had failures.`);
    expect(payload.allowedMentions).toEqual({ users: [OWNER] });
  });

  it('says loudly when the schedule failed several times in a row', () => {
    const payload = renderFiringPost(post({ outcome: 'failed', counts: { done: 0, failed: 2, skipped: 0 }, failures: [failure('web-01'), failure('web-02', 'NO_SPACE', 'only 3% free')] }, 3));
    const embed = embedOf(payload);
    expect(embed.title).toBe('❌ Schedule nightly-web · 2026-11-30 02:30 UTC · failed');
    expect(embed.color).toBe(COLOR.failure);
    expect(embed.description?.split('\n')[0]).toBe('🚨 **Failed 3 times in a row.**');
    expect(fieldValue(embed, 'Failures (2)')?.split('\n')).toHaveLength(2);
    expect(payload.content).toBe(`<@${OWNER}> your schedule **nightly-web** failed 3 times in a row.`);
  });

  it('lists what retention left alone, with its reason', () => {
    const embed = embedOf(renderFiringPost(post({ retentionSkipped: [{ vm: 'web-01', host: 'kvm-a', name: 'nightly-20261101-023000', reason: 'it is the VM’s current snapshot.' }] })));
    expect(embed.description).toContain('Retention: pruned 2, kept 9, left 1 (below)');
    expect(fieldValue(embed, 'Left by retention (1)')).toBe('nightly-20261101-023000 on **web-01** @ kvm-a: it is the VM’s current snapshot.');
  });

  it('says when a firing had nothing to do', () => {
    const embed = embedOf(renderFiringPost(post({ outcome: 'nothing', counts: { done: 0, failed: 0, skipped: 0 }, pruned: 0, kept: 0 })));
    expect(embed.title).toBe('➖ Schedule nightly-web · 2026-11-30 02:30 UTC · nothing to do');
    expect(embed.description).toMatch(/^Nothing to snapshot/);
  });

  it('mentions no one when the owner is a snapctl operator without a Discord id', () => {
    const payload = renderFiringPost(post({ outcome: 'failed', failures: [failure('web-01')] }, 2, null));
    expect(payload.content).toBeUndefined();
    expect(payload.allowedMentions).toBeUndefined();
  });

  it('escapes names and messages that come from hosts, so they cannot ping or format', () => {
    const embed = embedOf(renderFiringPost(post({ outcome: 'failed', failures: [failure('**web**', 'INTERNAL', '@everyone <@&123456789012345678> [x](http://evil)')] })));
    expect(fieldValue(embed, /^Failures/)).toBe('❌ **\\*\\*web\\*\\*** @ kvm-b: **INTERNAL**: \\@everyone \\<@&123456789012345678> \\[x\\](http://evil)');
  });

  it('shows seconds in the slot only when it has them', () => {
    expect(slotText('2026-11-30T02:30:05.120Z')).toBe('2026-11-30 02:30:05 UTC');
    expect(slotText('not a date')).toBe('not a date');
  });

  it('stays within Discord limits with 500 long failures and 300 left snapshots', () => {
    const long = `error: ${'QEMU guest agent is not connected; `fsfreeze` failed with ```timeout``` '.repeat(60)}`;
    const payload = renderFiringPost(
      post(
        {
          outcome: 'partial',
          failures: Array.from({ length: 500 }, (_, index) => failure(`vm-${index}-${'x'.repeat(180)}`, 'INTERNAL', long)),
          retentionSkipped: Array.from({ length: 300 }, (_, index) => ({ vm: `vm-${index}`, host: 'h'.repeat(63), name: 's'.repeat(128), reason: long })),
        },
        999,
      ),
    );
    expect(refusals(payload, 'channel-create')).toEqual([]);
    expect(fieldValue(embedOf(payload), 'Failures (500)')).toMatch(/… and \d+ more$/);
  });
});

describe('/schedule show and list', () => {
  it('shows what a schedule does, when, what it keeps and where it posts', () => {
    const embed = renderScheduleEmbed(record(), ['2026-12-01T01:30:00.000Z', '2026-12-02T01:30:00.000Z']);
    expect(embed.title).toBe('📅 Schedule nightly-web · active');
    expect(embed.description).toBe('“before the \\*\\*backup\\*\\*”');
    expect(fieldValue(embed, 'Target')).toBe('`web-* !web-canary`');
    expect(fieldValue(embed, 'Cadence')).toBe('`cron "30 2 * * *" (Europe/Berlin)`');
    expect(fieldValue(embed, 'Keep')).toBe('`last=7,weekly=4`');
    expect(fieldValue(embed, 'Snapshot names')).toBe('`nightly-YYYYMMDD-HHMMSS`');
    expect(fieldValue(embed, 'Owner')).toBe(`<@${OWNER}>`);
    expect(fieldValue(embed, 'Posts in')).toBe('<#222222222222222222>');
    expect(fieldValue(embed, 'Next firings')).toBe(`<t:${Date.parse('2026-12-01T01:30:00.000Z') / 1000}:f>\n<t:${Date.parse('2026-12-02T01:30:00.000Z') / 1000}:f>`);
  });

  it('shows a pending schedule with its approval request, and a failing one loudly with its last firing', () => {
    const pending = renderScheduleEmbed(record({ status: 'pending', approvalId: 'schedule-nightly-web-1-abc' }), [], '🔐 Created.');
    expect(pending.title).toBe('📅 Schedule nightly-web · waiting for approval');
    expect(pending.description?.split('\n')[0]).toBe('🔐 Created.');
    expect(fieldValue(pending, 'Approval request')).toBe('`schedule-nightly-web-1-abc`');
    const failing = renderScheduleEmbed(record({ failedInARow: 4, lastFiring: firing({ outcome: 'failed', failures: [failure('web-01')] }) }), []);
    expect(failing.color).toBe(COLOR.failure);
    expect(failing.description).toContain('🚨 **Failed 4 times in a row.**');
    expect(fieldValue(failing, 'Last firing')).toMatch(/^❌ failed — slot <t:\d+:f>: 3 taken, 0 failed, 1 skipped; pruned 2, kept 9\n❌ \*\*web-01\*\* @ kvm-b/);
  });

  it('lists schedules with failing ones first, and says when there are none', () => {
    const embed = renderScheduleList([record(), record({ definition: { ...record().definition, name: 'hourly-db' }, failedInARow: 2 })]);
    expect(embed.title).toBe('Schedules (2)');
    expect(embed.description?.split('\n')[0]).toMatch(/^\*\*hourly-db\*\* — active .* · 🚨 failed 2 times in a row$/);
    expect(embed.footer?.text).toBe('2 active · 1 failing');
    expect(renderScheduleList([]).description).toContain('No schedules');
  });

  it('fits a list of 500 schedules with long targets', () => {
    const many = Array.from({ length: 500 }, (_, index) => record({ definition: { ...record().definition, name: `s-${index}`, target: `web-* ${'x'.repeat(1990)}` } }));
    expect(refusals({ embeds: [renderScheduleList(many)] }, 'webhook-edit')).toEqual([]);
    expect(renderScheduleList(many).description).toMatch(/… and \d+ more/);
  });
});

describe('/hosts with failing schedules', () => {
  it('adds a field naming the schedules that failed at least twice in a row, worst first', () => {
    const records = [record({ failedInARow: 1 }), record({ definition: { ...record().definition, name: 'db' }, failedInARow: 5, status: 'paused', lastFiring: firing() }), record({ definition: { ...record().definition, name: 'web' }, failedInARow: 2 })];
    const failing = failingSchedules(records);
    expect(failing.map((schedule) => schedule.name)).toEqual(['db', 'web']);
    expect(failingSchedulesField(failing)).toEqual({
      name: 'Failing schedules (2)',
      value: `🚨 **db** failed 5 times in a row, last <t:${Date.parse('2026-11-30T02:30:00.000Z') / 1000}:R> (paused)\n🚨 **web** failed 2 times in a row`,
    });
    expect(failingSchedulesField([])).toBeNull();
    const reply = renderHostsReply({ hosts: [], summary: { total: 0, online: 0, stale: 0, offline: 0, queued: 0, running: 0 } }, NOW, failing);
    expect(reply.embeds[0]!.fields?.[0]?.name).toBe('Failing schedules (2)');
    expect(renderHostsReply({ hosts: [], summary: { total: 0, online: 0, stale: 0, offline: 0, queued: 0, running: 0 } }, NOW).embeds[0]!.fields).toBeUndefined();
  });
});

describe('the approval request of a schedule', () => {
  function state(status: ApprovalStatus, overrides: Partial<ApprovalState> = {}): ApprovalState {
    return {
      request: {
        id: 'schedule-nightly-web-1-abc',
        subject: { kind: 'schedule', name: 'nightly-web', version: 1, digest: 'd'.repeat(64), target: 'web-* !web-canary', cadence: 'cron "30 2 * * *" (UTC)', keep: 'last=7', vms: 4 },
        requester: { id: `discord:${OWNER}`, userId: OWNER, displayName: 'ada' },
        origin: 'discord',
        reason: 'its retention deletes snapshots of web-01, and deletes there need 1 approval(s)',
        requestedAt: '2026-11-30T11:50:00.000Z',
        expiresAt: '2026-11-30T12:05:00.000Z',
        required: 1,
        allowSelfApproval: false,
        approvers: ['@administrators'],
      },
      status,
      approvals: [],
      deniedBy: null,
      withdrawnBy: null,
      message: null,
      ...overrides,
    };
  }

  it('says what the schedule does, how many VMs it matches, who asks and why approval is needed', () => {
    const embed = renderApprovalRequest(state('pending'), NOW);
    expect(embed.title).toBe('🔐 Approval needed: schedule nightly-web');
    expect(embed.color).toBe(COLOR.warning);
    expect(embed.description).toBe('Waiting for approval: the schedule fires only once approved.');
    expect(fieldValue(embed, 'Requested by')).toBe(`<@${OWNER}>`);
    expect(fieldValue(embed, 'Target')).toBe('`web-* !web-canary`');
    expect(fieldValue(embed, 'Cadence')).toBe('`cron "30 2 * * *" (UTC)`');
    expect(fieldValue(embed, 'Keep')).toBe('`last=7`; older snapshots of this schedule are deleted');
    expect(fieldValue(embed, 'VMs matched')).toBe('4 now (the target is resolved again at every firing)');
    expect(fieldValue(embed, 'Why approval')).toBe('its retention deletes snapshots of web-01, and deletes there need 1 approval(s)');
    expect(fieldValue(embed, 'Approvals')).toBe('0 of 1 (approvers: administrators; not the requester)');
    expect(fieldValue(embed, 'Expires')).toBe(`<t:${Date.parse('2026-11-30T12:05:00.000Z') / 1000}:R> (2026-11-30T12:05:00.000Z)`);
  });

  it('redraws it approved, denied, expired and withdrawn, with dead buttons', () => {
    expect(renderApprovalRequest(state('approved', { approvals: ['333333333333333333'] }), NOW, 'Approved — schedule **nightly-web** is active.')).toMatchObject({
      title: '🔐 Approval approved: schedule nightly-web',
      description: 'Approved — schedule **nightly-web** is active.',
      color: COLOR.success,
    });
    expect(renderApprovalRequest(state('denied', { deniedBy: '333333333333333333' }), NOW)).toMatchObject({
      title: '🔐 Approval denied: schedule nightly-web',
      description: 'Denied: the schedule does not fire (denied by <@333333333333333333>).',
    });
    expect(renderApprovalRequest(state('expired'), NOW).description).toBe('Expired: the schedule does not fire; delete it and create it again to ask again.');
    expect(renderApprovalRequest(state('withdrawn'), NOW).title).toBe('🔐 Approval withdrawn: schedule nightly-web');
    expect(JSON.stringify(approvalButtons(state('expired')))).toMatch(/"disabled":true.*"disabled":true/);
  });

  it('fits Discord in every state with the longest target, reason and approver lists', () => {
    for (const status of ['pending', 'approved', 'denied', 'expired', 'withdrawn'] as const) {
      const long = state(status, { approvals: Array.from({ length: 24 }, (_, index) => String(200000000000000000n + BigInt(index))) });
      long.request.subject = { ...long.request.subject, target: `web-* ${'`*_~|'.repeat(400)}` } as typeof long.request.subject;
      long.request.reason = 'r'.repeat(2000);
      long.request.approvers = Array.from({ length: 30 }, (_, index) => `@role-${'x'.repeat(90)}-${index}`);
      expect(refusals({ embeds: [renderApprovalRequest(long, NOW)], components: approvalButtons(long) }, 'channel-create'), status).toEqual([]);
    }
  });
});
