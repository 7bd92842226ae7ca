/**
 * Every renderer in bot/discord/render/, fed the largest inputs snapbot accepts (VM names
 * of 200 characters, snapshot names of 128, host ids of 63, descriptions of 1,000, long
 * virsh errors, hundreds of hosts, targets, failures, snapshots and audit entries), put
 * through `fitMessage` as the bot sends it, and checked with the fake Discord's own rules
 * (route schema, message and component rules): Discord must refuse none of it. Every
 * button's custom id is 1–100 characters and unique in its message.
 */
import { AttachmentBuilder, type APIEmbed } from 'discord.js';
import { describe, expect, it } from 'vitest';
import type { ApprovalState, ApprovalStatus } from '../../../../../bot/core/approvals.js';
import type { AuditEntry } from '../../../../../bot/core/audit.js';
import type { SnapbotCore } from '../../../../../bot/core/core.js';
import { summarize, type FleetListRow, type FleetPlan, type FleetRun, type FleetRunStatus, type FleetTarget } from '../../../../../bot/core/fleet/index.js';
import type { HostsOverview } from '../../../../../bot/core/hosts.js';
import { refusedEditFallback } from '../../../../../bot/discord/channel-messenger.js';
import { renderFleetListReply } from '../../../../../bot/discord/fleet-list-pages.js';
import { renderListReply } from '../../../../../bot/discord/list-pages.js';
import type { ReplyPayload } from '../../../../../bot/discord/reply-payload.js';
import { COLOR } from '../../../../../bot/discord/render/colors.js';
import { fitMessage } from '../../../../../bot/discord/render/discord-limits.js';
import { approvalButtons, renderApprovalFailure, renderApprovalRequest } from '../../../../../bot/discord/render/render-approval.js';
import { renderAuditReply } from '../../../../../bot/discord/render/render-audit.js';
import { fleetListPageCount, renderFleetListPage } from '../../../../../bot/discord/render/render-fleet-list.js';
import { fleetSummaryPayload } from '../../../../../bot/discord/render/render-fleet-summary.js';
import { fleetApprovalPayload, fleetPreviewPayload, renderFleetPreview } from '../../../../../bot/discord/render/render-fleet.js';
import { renderHostsReply } from '../../../../../bot/discord/render/render-hosts.js';
import { renderJobFailure, renderJobResult, renderJobStage, renderUserError, type JobHeading } from '../../../../../bot/discord/render/render-job.js';
import { pageCount, renderSnapshotListPage } from '../../../../../bot/discord/render/render-snapshot-list.js';
import { ERROR_CODES } from '../../../../../shared/errors.js';
import type { FleetTargetState } from '../../../../../shared/fleet.js';
import type { HostOverview, HostStatus } from '../../../../../shared/hosts.js';
import type { JobResult, ResultOf, SnapshotInfo } from '../../../../../shared/jobs.js';
import { customIds } from '../../../../fixtures/fake-discord/component-rules.js';
import { zodFormErrors, type FormError } from '../../../../fixtures/fake-discord/discord-errors.js';
import type { UploadedFile } from '../../../../fixtures/fake-discord/http-body.js';
import { messageRefusal, type MessageRoute } from '../../../../fixtures/fake-discord/message-rules.js';
import { messageCreateSchema, messageEditSchema, webhookEditSchema, webhookExecuteSchema } from '../../../../fixtures/fake-discord/route-schemas.js';

const NOW = Date.parse('2026-11-28T12:00:00.000Z');
const ISO = new Date(NOW - 3_600_000).toISOString();

// ── maximal inputs ───────────────────────────────────────────────────────────

/** A name of exactly `length` UTF-16 units with Markdown, backticks, code fences and an astral character in it. */
function maxName(prefix: string, length: number, seed = 0): string {
  const filler = `*_~|\`\`\`${'界'}😀>#-${seed}-`;
  let name = `${prefix}${seed}-`;
  while (name.length < length) name += filler;
  name = name.slice(0, length);
  // Do not end on half of a surrogate pair, nor on a blank.
  if (/[\uD800-\uDBFF]$/.test(name)) name = `${name.slice(0, -1)}x`;
  return name;
}
/** Host ids are hostnames: letters, digits, dashes. */
const maxHost = (seed: number) => `kvm-${String(seed).padStart(4, '0')}-${'h'.repeat(63)}`.slice(0, 63);
const VM = maxName('vm', 200);
const SNAP = maxName('snap', 128);
const HOST = maxHost(1);
const DESCRIPTION = `${'Before the upgrade: ```\nrm -rf /tmp/*\n``` **bold** <@123456789012345678> @everyone\n'.repeat(20)}`.slice(0, 1000);
const BLANK_DESCRIPTION = '   \n\t  \n ';
const VIRSH_ERROR = `error: Failed to create snapshot\nerror: internal error: ${'QEMU guest agent is not connected; `fsfreeze` failed with ```timeout``` '.repeat(60)}`;
/** The longest failure message a worker writes: the sentence with VM and host, and two virsh lines of 300 characters. */
const WORKER_MESSAGE = `virsh failed for VM ${VM} on host ${HOST} (virsh: error: ${'x'.repeat(299)}…; ${'y'.repeat(299)}…)`;
const USER_ID = '111111111111111111';

function snapshot(name: string, description: string | null, extra: Partial<SnapshotInfo> = {}): SnapshotInfo {
  return { name, createdAt: ISO, state: 'running', location: 'internal', memory: true, parent: maxName('parent', 128), current: false, description, jobId: 'job-1', ...extra };
}

const where = { host: HOST, vm: { name: VM, uuid: '6f1c1b1e-1111-4222-8333-444455556666' }, durationMs: 12_345 };

function results(description: string | null): Array<Exclude<JobResult, { kind: 'list' }>> {
  return [
    { ...where, kind: 'create', mode: 'full', snapshot: snapshot(SNAP, description), note: `A full snapshot of a shut-off VM holds the disks only. ${VIRSH_ERROR}`, recovered: true },
    { ...where, kind: 'create', mode: 'disk-only', snapshot: snapshot(SNAP, description, { location: 'external', memory: false }), note: null, recovered: false },
    { ...where, kind: 'info', snapshot: snapshot(SNAP, description, { current: true }) },
    {
      ...where,
      kind: 'revert',
      snapshot: snapshot(SNAP, description),
      vmState: 'running',
      undoPoint: snapshot(maxName('pre-revert', 128), null),
      prunedUndoPoints: Array.from({ length: 40 }, (_, index) => maxName('pre-revert', 128, index)),
      recovered: true,
      note: VIRSH_ERROR,
    },
    { ...where, kind: 'delete', deleted: snapshot(SNAP, description), recovered: false, note: null },
  ];
}

function listResult(count: number): ResultOf<'list'> {
  return {
    ...where,
    kind: 'list',
    snapshots: Array.from({ length: count }, (_, index) => snapshot(maxName('snap', 128, index), index % 3 === 0 ? BLANK_DESCRIPTION : DESCRIPTION, { current: index === 7 })),
  };
}

function approvalState(action: 'revert' | 'delete', status: ApprovalStatus, description: string | null): ApprovalState {
  const approvers = Array.from({ length: 30 }, (_, index) => maxName('@role', 100, index));
  return {
    request: {
      id: 'a'.repeat(32),
      subject: {
        kind: 'snapshot',
        action,
        host: HOST,
        vm: VM,
        uuid: where.vm.uuid,
        snapshot: snapshot(SNAP, description, { memory: action === 'revert' && status !== 'denied' }),
        undoPoint: action === 'revert' ? { mode: 'full', keep: 3 } : null,
        jobId: `approval-${'a'.repeat(32)}`,
      },
      requester: { id: `snapctl:${'u'.repeat(200)}@${'m'.repeat(200)}`, userId: status === 'pending' ? USER_ID : null, displayName: maxName('who', 100) },
      origin: status === 'pending' ? 'discord' : 'snapctl',
      reason: maxName('policy rule', 300),
      requestedAt: ISO,
      expiresAt: new Date(NOW + 900_000).toISOString(),
      required: 25,
      allowSelfApproval: false,
      approvers,
    },
    status,
    approvals: Array.from({ length: 24 }, (_, index) => String(200000000000000000n + BigInt(index))),
    deniedBy: status === 'denied' ? USER_ID : null,
    withdrawnBy: status === 'withdrawn' ? USER_ID : null,
    message: { channelId: '1'.repeat(18), messageId: '2'.repeat(18) },
  };
}

const HOST_COUNT = 40;
const hostIds = Array.from({ length: HOST_COUNT }, (_, index) => maxHost(index));

function fleetTargets(count: number, snapshotName: string): FleetTarget[] {
  return Array.from({ length: count }, (_, index) => ({
    index,
    host: hostIds[index % HOST_COUNT]!,
    vm: maxName('vm', 200, index),
    uuid: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
    snapshot: snapshotName,
  }));
}

function fleetPlan(action: 'snapshot' | 'delete', count: number, overrides: Partial<FleetPlan> = {}): FleetPlan {
  const name = action === 'snapshot' ? maxName('pre-{vm}-{date}', 128) : maxName('pre-*', 128);
  return {
    id: 'b'.repeat(32),
    action,
    selector: maxName('web-* host:kvm-* !web-canary ', 1000),
    name,
    mode: action === 'snapshot' ? 'full' : null,
    description: action === 'snapshot' ? DESCRIPTION : null,
    createdAt: ISO,
    requester: { id: `discord:${USER_ID}`, userId: USER_ID, displayName: maxName('ada', 100) },
    origin: 'discord',
    targets: fleetTargets(count, maxName('pre-rendered', 128)),
    skipped: {
      offlineHosts: Array.from({ length: 40 }, (_, index) => ({ hostId: maxHost(100 + index), lastSeen: index % 2 ? ISO : 'not a date', vms: 1000 + index })),
      existing: Array.from({ length: 300 }, (_, index) => ({ host: maxHost(index), vm: maxName('vm', 200, index), snapshot: name })),
      forbidden: Array.from({ length: 300 }, (_, index) => ({ host: maxHost(index), vm: maxName('secret', 200, index) })),
      withoutMatch: 5000,
    },
    perHost: 1000,
    maxConcurrent: 100_000,
    approval: { reason: maxName('snapshots of more than 50 VMs', 500), approvers: Array.from({ length: 30 }, (_, index) => maxName('@role', 100, index)), required: 25, allowSelfApproval: false, ttlMinutes: 1440 },
    retryOf: 'c'.repeat(32),
    ...overrides,
  };
}

function fleetRun(plan: FleetPlan, status: FleetRunStatus, states: (index: number) => FleetTargetState | undefined): FleetRun {
  const targets = new Map<number, FleetTargetState>();
  for (const target of plan.targets) {
    const state = states(target.index);
    if (state) targets.set(target.index, state);
  }
  return {
    plan,
    status,
    targets,
    approvals: Array.from({ length: 24 }, (_, index) => String(300000000000000000n + BigInt(index))),
    deniedBy: status === 'denied' ? USER_ID : null,
    expiresAt: new Date(NOW + 3_600_000).toISOString(),
    startedAt: NOW - 600_000,
    finishedAt: status === 'finished' ? NOW : null,
    cancelledBy: `snapctl:${'u'.repeat(200)}@${'m'.repeat(200)}`,
    message: null,
  };
}

function hostStatus(hostId: string, online: boolean): HostStatus {
  return {
    hostId, online, libvirtUri: 'qemu:///system', libvirtVersion: '10.10.0', qemuVersion: '9.2.0',
    capabilities: { externalRevert: true, externalDelete: true }, vms: [], inventoryAt: ISO, inventoryError: null,
    concurrency: 4, startedAt: ISO, lastSeen: ISO, workerVersion: '0.1.0',
  }; // prettier-ignore
}

const failed = (index: number): FleetTargetState => ({ state: 'failed', at: NOW, code: index % 7 === 0 ? 'NOT_A_CODE' : ERROR_CODES[index % ERROR_CODES.length]!, message: index < 20 ? `${VIRSH_ERROR} #${index}` : WORKER_MESSAGE });

function hostsOverview(count: number): HostsOverview {
  const states: Array<HostOverview['state']> = ['online', 'stale', 'offline'];
  const hosts: HostOverview[] = Array.from({ length: count }, (_, index) => {
    const state = states[index % 3]!;
    return {
      ...hostStatus(maxHost(index), state !== 'offline'),
      vms: Array.from({ length: 3 }, (_, vm) => ({ name: maxName('vm', 200, vm), uuid: `u-${vm}`, state: 'running', snapshots: [] })),
      libvirtVersion: index % 5 === 0 ? null : '10.10.0',
      state,
      staleReason: state === 'stale' ? `inventory read failed: ${VIRSH_ERROR}` : null,
      queue: index % 4 === 0 ? null : { waiting: 100_000 + index, delayed: 5000, active: 64 },
      lastError: index % 2 === 0 ? { code: 'INTERNAL', message: VIRSH_ERROR, at: ISO, jobId: 'j'.repeat(60), kind: 'create', vm: maxName('vm', 200, index) } : null,
    };
  });
  return { hosts, summary: { total: count, online: Math.ceil(count / 3), stale: Math.floor(count / 3), offline: count - Math.ceil(count / 3) - Math.floor(count / 3), queued: 10_000_000, running: 12_800 } };
}

function auditEntries(count: number): AuditEntry[] {
  return Array.from({ length: count }, (_, index) => ({
    id: `${NOW}-${index}`,
    at: ISO,
    event: 'requested',
    actor: index % 2 ? `discord:${USER_ID}` : `snapctl:${'u'.repeat(100)}@${'m'.repeat(100)}`,
    action: 'revert',
    host: maxHost(index),
    vm: maxName('vm', 200, index),
    snapshot: maxName('snap', 128, index),
    requestId: 'a'.repeat(32),
    jobId: 'j'.repeat(60),
    detail: `${VIRSH_ERROR} ${DESCRIPTION}`,
  }));
}

/** The core's Redis, as the listing replies use it (they store the pages for the buttons). */
const storingCore = { prefix: '{snapbot}', redis: { set: async () => 'OK' } } as unknown as SnapbotCore;

// ── the fake's rules, applied as the bot sends each payload ──────────────────

const SCHEMAS = { 'channel-create': messageCreateSchema, 'channel-edit': messageEditSchema, 'webhook-edit': webhookEditSchema, 'webhook-create': webhookExecuteSchema } as const;
type Route = keyof typeof SCHEMAS;

/**
 * The body discord.js sends for `payload` (JSON as on the wire; files as multipart parts
 * `files[n]` with an `attachments` entry each), fitted as the bot fits it.
 */
function wire(payload: ReplyPayload & { flags?: number }, route: Route): { body: Record<string, unknown>; files: UploadedFile[] } {
  const fitted = fitMessage(payload);
  const files: UploadedFile[] = (fitted.files ?? []).map((file, index) => {
    const attachment = file as AttachmentBuilder;
    return { field: `files[${index}]`, filename: attachment.name ?? `file-${index}`, contentType: 'text/plain', data: Buffer.from(attachment.attachment as Buffer) };
  });
  const body: Record<string, unknown> = JSON.parse(
    JSON.stringify({
      ...(fitted.content !== undefined ? { content: fitted.content } : {}),
      ...(fitted.embeds !== undefined ? { embeds: fitted.embeds } : {}),
      ...(fitted.components !== undefined ? { components: fitted.components } : {}),
      ...(payload.flags !== undefined ? { flags: payload.flags } : {}),
      ...(route === 'channel-create' ? { allowed_mentions: { parse: [] } } : {}),
      ...(files.length ? { attachments: files.map((file, id) => ({ id, filename: file.filename })) } : {}),
    }),
  ) as Record<string, unknown>;
  return { body, files };
}

/** What Discord would say to `payload` on `route`: schema errors, form errors, emptiness, upload size. */
function refusalsOf(payload: ReplyPayload & { flags?: number }, route: Route): string[] {
  const { body, files } = wire(payload, route);
  const problems: string[] = [];
  const parsed = SCHEMAS[route].safeParse(body);
  if (!parsed.success) problems.push(...zodFormErrors(parsed.error.issues, body).map(formErrorLine));
  const existing = route.endsWith('edit') ? { content: 'before', embeds: [{}], components: [], attachmentIds: [], flags: 0 } : undefined;
  const refusal = messageRefusal(body as Parameters<typeof messageRefusal>[0], { route: route as MessageRoute, path: [], files, ...(existing ? { existing } : {}) });
  if (refusal) problems.push(`${refusal.status} ${JSON.stringify(refusal.body)}`);
  const ids = customIds((body['components'] as unknown[] | undefined) ?? []);
  for (const id of ids) if (id.length < 1 || id.length > 100) problems.push(`custom_id of ${id.length} characters: ${id}`);
  if (new Set(ids).size !== ids.length) problems.push(`duplicate custom ids: ${ids.join(', ')}`);
  return problems;
}

function formErrorLine(error: FormError): string {
  return `${error.path.join('.')}: ${error.code}: ${error.message}`;
}

/** Checks each case, reporting them all at once. */
function expectAccepted(cases: Array<[label: string, payload: ReplyPayload & { flags?: number }, route: Route]>): void {
  const report = cases.flatMap(([label, payload, route]) => refusalsOf(payload, route).map((problem) => `${label} (${route}): ${problem}`));
  expect(report).toEqual([]);
}

// ── the renderers ────────────────────────────────────────────────────────────

describe('job stages and results (live reply edits; channel posts and edits once the token is gone)', () => {
  const headings: JobHeading[] = (['create', 'list', 'info', 'revert', 'delete'] as const).map((kind) => ({ kind, vm: VM, snapshot: kind === 'list' ? undefined : SNAP }));

  it('fits every stage, result, failure and user error', () => {
    const cases: Array<[string, ReplyPayload & { flags?: number }, Route]> = [];
    for (const heading of headings) {
      const stages = [
        renderJobStage(heading, { stage: 'queued', host: HOST, jobId: 'j'.repeat(200) }),
        renderJobStage(heading, { stage: 'progress', progress: { phase: 'running', host: HOST, message: VIRSH_ERROR } }),
        renderJobStage(heading, { stage: 'progress', progress: { phase: 'waiting-for-vm', host: HOST, message: DESCRIPTION } }),
      ];
      for (const [index, embed] of stages.entries()) {
        for (const route of ['webhook-edit', 'channel-edit'] as const) cases.push([`${heading.kind} stage ${index}`, { embeds: [embed] }, route]);
      }
      for (const code of ERROR_CODES) {
        const failure = { embeds: [renderJobFailure(heading, { code, message: VIRSH_ERROR }, HOST)], components: [] };
        cases.push([`${heading.kind} failure ${code}`, failure, 'webhook-edit'], [`${heading.kind} failure ${code}`, failure, 'channel-edit']);
        // The channel post when the token is gone: the requester mentioned in the content.
        cases.push([`${heading.kind} failure ${code} posted`, { ...failure, content: `<@${USER_ID}>` }, 'channel-create']);
        cases.push([`user error ${code}`, { content: renderUserError({ code, message: VIRSH_ERROR }), flags: 64 }, 'webhook-create']);
      }
    }
    for (const description of [DESCRIPTION, BLANK_DESCRIPTION, null]) {
      for (const result of results(description)) {
        cases.push([`${result.kind} result (${JSON.stringify(description?.slice(0, 5))})`, { embeds: [renderJobResult(result)] }, 'webhook-edit']);
        cases.push([`${result.kind} result posted`, { content: `<@${USER_ID}>`, embeds: [renderJobResult(result)] }, 'channel-create']);
      }
    }
    expectAccepted(cases);
  });

  it('fits the text a refused edit falls back to (the whole text attached)', () => {
    const payload = { embeds: [renderJobResult(results(DESCRIPTION)[3]!)], components: [] };
    expectAccepted([['fallback', refusedEditFallback(`https://discord.com/channels/${'1'.repeat(19)}/${'2'.repeat(19)}/${'3'.repeat(19)}`, payload), 'channel-create']]);
  });
});

describe('approval requests of one snapshot (channel post, then edits)', () => {
  it('fits every state, both actions, long and blank descriptions, the outcome and the result below', () => {
    const cases: Array<[string, ReplyPayload, Route]> = [];
    for (const action of ['revert', 'delete'] as const) {
      for (const status of ['pending', 'approved', 'denied', 'expired', 'withdrawn'] as const) {
        for (const description of [DESCRIPTION, BLANK_DESCRIPTION, null]) {
          const state = approvalState(action, status, description);
          const label = `${action} ${status} ${JSON.stringify(description?.slice(0, 5))}`;
          cases.push([label, { embeds: [renderApprovalRequest(state, NOW)], components: approvalButtons(state) }, 'channel-create']);
          cases.push([`${label} running`, { embeds: [renderApprovalRequest(state, NOW, `Approved — running on **${HOST}**…`)], components: approvalButtons(state) }, 'channel-edit']);
          const result = results(description).find((candidate) => candidate.kind === action)!;
          cases.push([`${label} done`, { embeds: [renderApprovalRequest(state, NOW, 'Approved and done.'), renderJobResult(result)], components: approvalButtons(state) }, 'channel-edit']);
          cases.push([`${label} failed`, { embeds: [renderApprovalRequest(state, NOW, renderApprovalFailure({ code: 'INTERNAL', message: VIRSH_ERROR.repeat(3) }))], components: approvalButtons(state) }, 'channel-edit']);
        }
      }
    }
    expectAccepted(cases);
  });
});

describe('fleet previews, approval requests and summaries', () => {
  const plans = [
    fleetPlan('snapshot', 1000),
    fleetPlan('delete', 1000),
    fleetPlan('snapshot', 0),
    fleetPlan('snapshot', 3, { approval: null, retryOf: null, skipped: { offlineHosts: [], existing: [], forbidden: [], withoutMatch: 0 } }),
    fleetPlan('snapshot', 500, { description: BLANK_DESCRIPTION, selector: ' ', name: ' ' }),
  ];

  it('fits the preview (with and without the note it gets once acted on) and the approval request in every state', () => {
    const cases: Array<[string, ReplyPayload, Route]> = [];
    for (const [index, plan] of plans.entries()) {
      cases.push([`preview ${index}`, fleetPreviewPayload(plan, NOW), 'webhook-edit']);
      const url = `https://discord.com/channels/${'1'.repeat(19)}/${'2'.repeat(19)}/${'3'.repeat(19)}`;
      for (const note of [`🔐 Confirmed by <@${USER_ID}>; approval requested: ${url} — expires <t:1800000000:R>`, `▶️ Started by <@${USER_ID}>; live summary: ${url}`, `🗑️ Cancelled by <@${USER_ID}>; nothing was queued.`]) {
        cases.push([`preview ${index} noted`, { embeds: [renderFleetPreview(plan, NOW, note)], components: [] }, 'webhook-edit']);
      }
      for (const status of ['pending', 'approved', 'denied', 'expired', 'discarded', 'running'] as const) {
        const run = fleetRun(plan, status, () => undefined);
        cases.push([`fleet approval ${index} ${status}`, fleetApprovalPayload(run), 'channel-create']);
        cases.push([`fleet approval ${index} ${status} outcome`, fleetApprovalPayload(run, renderApprovalFailure({ code: 'INTERNAL', message: VIRSH_ERROR })), 'channel-edit']);
      }
    }
    expectAccepted(cases);
  });

  it('fits live and final summaries with 500 failures, 40 hosts with long ids, and the approval note above', () => {
    const hosts = hostIds.map((hostId, index) => hostStatus(hostId, index % 5 !== 0));
    const approvedNote: APIEmbed = {
      title: '🔐 Approved',
      color: COLOR.neutral,
      description: `Approved by ${Array.from({ length: 24 }, (_, index) => `<@${300000000000000000n + BigInt(index)}>`).join(', ')} (${maxName('reason', 500)}).`,
    };
    const cases: Array<[string, ReplyPayload, Route]> = [];
    for (const [index, plan] of plans.entries()) {
      const mixed = (target: number): FleetTargetState | undefined =>
        target < 500 ? failed(target) : target % 4 === 0 ? { state: 'done', at: NOW, durationMs: 1234, note: DESCRIPTION } : target % 4 === 1 ? { state: 'running', at: NOW } : target % 4 === 2 ? { state: 'cancelled', at: NOW } : undefined;
      for (const status of ['running', 'cancelling', 'finished'] as const) {
        const summary = summarize(fleetRun(plan, status, mixed), hosts, NOW);
        cases.push([`summary ${index} ${status}`, fleetSummaryPayload(summary), 'channel-edit']);
        cases.push([`summary ${index} ${status} approved`, fleetSummaryPayload(summary, [approvedNote]), 'channel-edit']);
        cases.push([`summary ${index} ${status} posted`, fleetSummaryPayload(summary, [approvedNote]), 'channel-create']);
      }
      const allFailed = summarize(fleetRun(plan, 'finished', failed), hosts, NOW);
      cases.push([`summary ${index} all failed`, fleetSummaryPayload(allFailed, [approvedNote]), 'channel-edit']);
    }
    expectAccepted(cases);
  });

  it('fits the final summary of a 10,000-VM run where every target failed with the longest message a worker writes (the report file stays under the upload limit)', () => {
    const plan = fleetPlan('delete', 10_000);
    const summary = summarize(fleetRun(plan, 'finished', (index) => ({ state: 'failed', at: NOW, code: 'INTERNAL', message: WORKER_MESSAGE.replace('VM ', `VM ${index} `) })), hostIds.map((hostId) => hostStatus(hostId, true)), NOW);
    const payload = fleetSummaryPayload(summary);
    expectAccepted([['10,000 failures', payload, 'channel-edit']]);
    const report = (payload.files?.[0]?.attachment as Buffer).toString();
    // What the file leaves out, it says, with where to see everything.
    expect(report).toMatch(/^Fleet run b{32}: delete /);
    expect(report.trimEnd().split('\n').at(-1)).toMatch(/more targets? not in this file.*snapctl fleet status b{32}/);
  });
});

describe('listings: /fleet list, /snapshot list, /hosts, /snapshot audit', () => {
  it('fits every page of /fleet list over 1,000 VMs with long names and many snapshots each', async () => {
    const rows: FleetListRow[] = Array.from({ length: 1000 }, (_, index) => ({
      host: maxHost(index % 50),
      online: index % 9 !== 0,
      vm: maxName('vm', 200, index),
      state: 'running',
      snapshots: index % 10 === 0 ? [] : Array.from({ length: index % 30 }, (_, snap) => maxName('snap', 128, snap)),
    }));
    const query = { target: maxName('web-* ', 1000), name: maxName('pre-*', 128) };
    const cases: Array<[string, ReplyPayload, Route]> = [['first page', await renderFleetListReply(storingCore, rows, query), 'webhook-edit']];
    for (let page = 0; page < fleetListPageCount(rows.length); page += 1) cases.push([`page ${page}`, { embeds: [renderFleetListPage(rows, query, page)] }, 'webhook-edit']);
    cases.push(['empty', await renderFleetListReply(storingCore, [], query), 'webhook-edit']);
    expectAccepted(cases);
  });

  it('fits every page of /snapshot list of a VM with 300 snapshots of 128 characters and 1,000-character descriptions', async () => {
    const result = listResult(300);
    const cases: Array<[string, ReplyPayload, Route]> = [['first page', await renderListReply(storingCore, result), 'webhook-edit']];
    for (let page = 0; page < pageCount(result.snapshots.length); page += 1) cases.push([`page ${page}`, { embeds: [renderSnapshotListPage(result, page)] }, 'webhook-edit']);
    cases.push(['one page', await renderListReply(storingCore, listResult(3)), 'webhook-edit'], ['none', await renderListReply(storingCore, listResult(0)), 'webhook-edit']);
    expectAccepted(cases);
  });

  it('fits /hosts with 1, 15, 200 and 1,000 hosts, each with long errors and stale reasons', () => {
    expectAccepted([1, 15, 200, 1000].map((count) => [`${count} hosts`, renderHostsReply(hostsOverview(count), NOW), 'webhook-edit'] as [string, ReplyPayload, Route]));
    expectAccepted([['no hosts', renderHostsReply({ hosts: [], summary: { total: 0, online: 0, stale: 0, offline: 0, queued: 0, running: 0 } }, NOW), 'webhook-edit']]);
  });

  it('fits /snapshot audit with 200 entries of long names and details (ephemeral reply edit)', () => {
    expectAccepted([
      ['200 entries', renderAuditReply(auditEntries(200), VM), 'webhook-edit'],
      ['none', renderAuditReply([], VM), 'webhook-edit'],
    ]);
  });
});

describe('the checks themselves', () => {
  it('catch what Discord refuses: an unfitted title, a blank field, a duplicated or long custom id', () => {
    const title = { title: `✅ Snapshot ${SNAP} of ${VM} created` };
    const unfitted = messageRefusal({ embeds: [title] }, { route: 'webhook-edit', path: [], files: [] });
    expect(JSON.stringify(unfitted?.body)).toMatch(/BASE_TYPE_MAX_LENGTH/);
    expect(refusalsOf({ embeds: [title] }, 'webhook-edit')).toEqual([]); // fitMessage cuts it
    expect(refusalsOf({ embeds: [{ title: 'x', fields: [{ name: 'Description', value: BLANK_DESCRIPTION }] }] }, 'webhook-edit')).toEqual([]);
    expect(JSON.stringify(messageRefusal({ embeds: [{ title: 'x', fields: [{ name: 'Description', value: BLANK_DESCRIPTION }] }] }, { route: 'webhook-edit', path: [], files: [] })?.body)).toMatch(/BASE_TYPE_REQUIRED/);
    const button = (id: string) => ({ type: 2 as const, style: 1 as const, label: 'x', custom_id: id });
    expect(refusalsOf({ embeds: [{ title: 'x' }], components: [{ type: 1, components: [button('a'), button('a')] }] }, 'channel-edit').join('\n')).toMatch(/COMPONENT_CUSTOM_ID_DUPLICATED/);
    expect(refusalsOf({ embeds: [{ title: 'x' }], components: [{ type: 1, components: [button('a'.repeat(101))] }] }, 'channel-edit').join('\n')).toMatch(/custom_id/);
    expect(refusalsOf({ content: '   ' }, 'channel-create').join('\n')).toMatch(/50006/);
  });
});
