import { describe, expect, it } from 'vitest';
import { summarize, type FleetPlan, type FleetRun, type FleetTarget } from '../../../../../bot/core/fleet/index.js';
import { fleetApprovalButtons, fleetPreviewButtons, renderFleetApprovalRequest, renderFleetPreview } from '../../../../../bot/discord/render/render-fleet.js';
import { renderFleetListFile, renderFleetListPage } from '../../../../../bot/discord/render/render-fleet-list.js';
import { fleetSummaryButtons, fleetSummaryPayload, INLINE_TARGETS, renderFleetReport, renderFleetSummary } from '../../../../../bot/discord/render/render-fleet-summary.js';
import type { FleetTargetState } from '../../../../../shared/fleet.js';
import type { HostStatus } from '../../../../../shared/hosts.js';

/** Golden renderings of fleet previews, approval requests, summaries and listings (fixed clock). */
const NOW = Date.parse('2026-11-28T12:00:00.000Z');
const STARTED = NOW - 42_000;

function host(hostId: string, online = true): HostStatus {
  return {
    hostId, online, libvirtUri: 'qemu:///system', libvirtVersion: '9.0.0', qemuVersion: '7.2.0',
    capabilities: { externalRevert: false, externalDelete: true }, vms: [], inventoryAt: null, inventoryError: null,
    concurrency: 4, startedAt: '2026-11-28T00:00:00.000Z', lastSeen: '2026-11-28T11:59:59.000Z', workerVersion: '0.1.0',
  }; // prettier-ignore
}

function targets(spec: Array<[string, string[]]>, snapshot = 'pre-rollout-20261128'): FleetTarget[] {
  let index = 0;
  return spec.flatMap(([hostId, vms]) => vms.map((vm) => ({ index: index++, host: hostId, vm, uuid: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`, snapshot })));
}

function plan(overrides: Partial<FleetPlan> = {}): FleetPlan {
  return {
    id: 'a1b2c3d4e5f6',
    action: 'snapshot',
    selector: 'web-* !web-canary',
    name: 'pre-rollout-{date}',
    mode: 'disk-only',
    description: null,
    createdAt: new Date(NOW).toISOString(),
    requester: { id: 'discord:111111111111111111', userId: '111111111111111111', displayName: 'ada' },
    origin: 'discord',
    targets: targets([
      ['kvm-a', ['web-01', 'web-03', 'web-04']],
      ['kvm-b', ['web-05', 'web-06']],
    ]),
    skipped: {
      offlineHosts: [{ hostId: 'kvm-c', lastSeen: '2026-11-28T11:50:00.000Z', vms: 2 }],
      existing: [{ host: 'kvm-a', vm: 'web-02', snapshot: 'pre-rollout-20261128' }],
      forbidden: [],
      withoutMatch: 0,
    },
    perHost: 4,
    maxConcurrent: 64,
    approval: null,
    retryOf: null,
    ...overrides,
  };
}

function run(fleetPlan: FleetPlan, states: Record<number, FleetTargetState>, overrides: Partial<FleetRun> = {}): FleetRun {
  return {
    plan: fleetPlan,
    status: 'running',
    targets: new Map(Object.entries(states).map(([index, state]) => [Number(index), state])),
    approvals: [],
    deniedBy: null,
    expiresAt: null,
    startedAt: STARTED,
    finishedAt: null,
    cancelledBy: null,
    message: null,
    ...overrides,
  };
}

const done = (durationMs = 1500): FleetTargetState => ({ state: 'done', at: NOW, durationMs, note: null });
const failed = (code: string, message: string): FleetTargetState => ({ state: 'failed', at: NOW, code, message });
const HOSTS = [host('kvm-a'), host('kvm-b'), host('kvm-c', false)];

describe('the fleet preview', () => {
  it('shows per-host counts, the offline host, VMs that hold the name and the approval decision', async () => {
    const embed = renderFleetPreview(plan(), NOW);
    expect(embed.title).toBe('Fleet snapshot · pre-rollout-{date} — preview');
    expect(embed.description).toBe(
      [
        '**5 VMs on 2 hosts** — snapshot `pre-rollout-{date}` (e.g. `pre-rollout-20261128`), disk-only',
        'Target: `web-* !web-canary`',
        '```',
        'HOST   VMS  FIRST',
        'kvm-a  3    web-01, web-03, web-04',
        'kvm-b  2    web-05, web-06',
        '```',
      ].join('\n'),
    );
    expect(embed.fields).toEqual([
      { name: 'Excluded: 1 offline host', value: `📴 **kvm-c** — last seen <t:${Date.parse('2026-11-28T11:50:00.000Z') / 1000}:R>; 2 VMs not included` },
      { name: 'Skipped: 1 VM already holds the name', value: 'web-02 @ kvm-a' },
      { name: 'Approval', value: 'Not needed: the run starts when you confirm.' },
      { name: 'Limits', value: '4 per host, 64 at once across the fleet', inline: true },
      { name: 'Requested by', value: '<@111111111111111111>', inline: true },
    ]);
    await expect(JSON.stringify({ embed, buttons: fleetPreviewButtons(plan()) }, null, 2)).toMatchFileSnapshot('./__golden__/fleet-preview.json');
  });

  it('says why approval is needed and on what terms', () => {
    const withApproval = plan({
      action: 'delete',
      name: 'pre-*',
      mode: null,
      approval: { reason: 'fleet deletes need approval', approvers: ['@administrators', 'sre'], required: 2, allowSelfApproval: false, ttlMinutes: 15 },
    });
    const embed = renderFleetPreview(withApproval, NOW);
    expect(embed.description!.split('\n')[0]).toBe('**5 snapshots on 2 hosts** — delete snapshots matching `pre-*`');
    expect(embed.fields!.find((field) => field.name === 'Approval')!.value).toBe(
      '**Needed** (fleet deletes need approval): 2 approvals from administrators, sre, not the requester, within 15 min of confirming.',
    );
    expect(JSON.stringify(fleetPreviewButtons(withApproval))).toContain('"label":"Confirm and ask for approval"');
  });

  it('offers no Confirm when nothing is left to do', () => {
    const empty = plan({ targets: [] });
    expect(renderFleetPreview(empty, NOW).description!.split('\n')[0]).toMatch(/^\*\*Nothing to do\*\*/);
    expect(fleetPreviewButtons(empty)[0]!.components[0]).toMatchObject({ custom_id: 'fleet:a1b2c3d4e5f6:confirm', disabled: true });
  });

  it('puts the note of what happened above the preview once it was acted on', () => {
    expect(renderFleetPreview(plan(), NOW, '🗑️ Cancelled by <@1>; nothing was queued.').description!.startsWith('🗑️ Cancelled by <@1>; nothing was queued.\n\n**5 VMs')).toBe(true);
  });

  it('stays within Discord limits with a thousand hosts and skipped VMs', () => {
    const big = plan({
      targets: targets(Array.from({ length: 1000 }, (_, index) => [`kvm-${String(index).padStart(4, '0')}`, ['web-01', 'web-02']] as [string, string[]])),
      skipped: {
        offlineHosts: Array.from({ length: 200 }, (_, index) => ({ hostId: `kvm-off-${index}`, lastSeen: '2026-11-28T11:00:00.000Z', vms: 3 })),
        existing: Array.from({ length: 500 }, (_, index) => ({ host: 'kvm-0001', vm: `vm-${index}`, snapshot: 'x' })),
        forbidden: Array.from({ length: 500 }, (_, index) => ({ host: 'kvm-0001', vm: `secret-${index}` })),
        withoutMatch: 0,
      },
    });
    const embed = renderFleetPreview(big, NOW);
    expect(embed.description!.length).toBeLessThanOrEqual(4096);
    expect(embed.description).toContain('… and 985 more hosts');
    for (const field of embed.fields!) expect(field.value.length).toBeLessThanOrEqual(1024);
    expect(embed.fields![0]!.value).toMatch(/… and \d+ more$/);
    expect(embed.fields![1]!.value).toMatch(/… and 490 more$/);
  });
});

describe('the fleet approval request', () => {
  const pending = (status: FleetRun['status'] = 'pending', extra: Partial<FleetRun> = {}) =>
    run(plan({ action: 'delete', name: 'pre-*', mode: null, approval: { reason: 'fleet deletes need approval', approvers: ['@administrators'], required: 2, allowSelfApproval: false, ttlMinutes: 15 } }), {}, {
      status,
      startedAt: null,
      expiresAt: '2026-11-28T12:15:00.000Z',
      approvals: ['222222222222222222'],
      ...extra,
    });

  it('shows who asks, what, where, why, the votes and the expiry, with live buttons', async () => {
    const embed = renderFleetApprovalRequest(pending(), undefined, NOW);
    expect(embed.title).toBe('🔐 Approval needed: fleet delete of 5 targets');
    expect(embed.description!.split('\n')[0]).toBe('Waiting for approval.');
    expect(embed.fields!.find((field) => field.name === 'Approvals')!.value).toBe('1 of 2: <@222222222222222222> (approvers: administrators; not the requester)');
    expect(embed.fields!.find((field) => field.name === 'Expires')!.value).toBe(`<t:${Date.parse('2026-11-28T12:15:00.000Z') / 1000}:R> (2026-11-28T12:15:00.000Z)`);
    expect(JSON.stringify(fleetApprovalButtons(pending()))).not.toContain('"disabled":true');
    await expect(JSON.stringify({ embed, buttons: fleetApprovalButtons(pending()) }, null, 2)).toMatchFileSnapshot('./__golden__/fleet-approval-request.json');
  });

  it('disables every button once expired, denied or withdrawn, and says so', () => {
    expect(renderFleetApprovalRequest(pending('expired')).title).toBe('🔐 Approval expired: fleet delete of 5 targets');
    expect(renderFleetApprovalRequest(pending('denied', { deniedBy: '333333333333333333' })).description!.split('\n')[0]).toBe('Denied: nothing was done (by <@333333333333333333>).');
    expect(renderFleetApprovalRequest(pending('discarded', { cancelledBy: 'discord:111111111111111111' })).description!.split('\n')[0]).toBe(
      'Withdrawn: nothing was done (by <@111111111111111111>).',
    );
    for (const status of ['expired', 'denied', 'discarded'] as const) {
      const buttons = fleetApprovalButtons(pending(status))[0]!.components;
      expect(buttons.map((button) => button.disabled)).toEqual([true, true, true]);
    }
  });
});

describe('the fleet summary', () => {
  it('shows counts overall and per host, failures first with their code, and a Cancel button while running', async () => {
    const live = summarize(
      run(plan(), {
        0: done(),
        1: { state: 'running', at: NOW },
        2: failed('TIMEOUT', 'virsh snapshot-create-as took longer than 300 s and was killed.'),
        3: { state: 'queued' },
      }),
      HOSTS,
      NOW,
    );
    const embed = renderFleetSummary(live);
    expect(embed.title).toBe('⚙️ Fleet snapshot · pre-rollout-{date} · running');
    expect(embed.description!.split('\n').slice(0, 3)).toEqual([
      '**1/5 done** · 1 failed · 1 running · 2 queued',
      '▰▰▰▰▰▰▰▰▱▱▱▱▱▱▱▱▱▱▱▱ 40%',
      `Started <t:${STARTED / 1000}:R> · 42.0 s so far.`,
    ]);
    expect(embed.description).toContain(['HOST   DONE  FAIL  RUN  QUEUE  CANCEL  LOST', 'kvm-a  1     1     1    0      0       0', 'kvm-b  0     0     0    2      0       0'].join('\n'));
    expect(embed.fields![0]).toEqual({ name: 'Failures (1)', value: '❌ **web-04** @ kvm-a — **TIMEOUT**: virsh snapshot-create-as took longer than 300 s and was killed.' });
    expect(embed.fields![1]!.value.split('\n')[0]).toBe('❌ web-04 @ kvm-a — TIMEOUT');
    expect(fleetSummaryButtons(live)[0]!.components[0]).toMatchObject({ custom_id: 'fleet:a1b2c3d4e5f6:cancel', label: 'Cancel the rest' });
    expect(fleetSummaryPayload(live).files).toBeUndefined();
    await expect(JSON.stringify({ embed, buttons: fleetSummaryButtons(live) }, null, 2)).toMatchFileSnapshot('./__golden__/fleet-summary-running.json');
  });

  it('counts targets on a host that went offline as lost', () => {
    const live = summarize(run(plan(), { 0: done(), 3: { state: 'running', at: NOW } }), [host('kvm-a'), host('kvm-b', false)], NOW);
    expect(live.counts.lost).toBe(2);
    expect(renderFleetSummary(live).description!.split('\n')[0]).toBe('**1/5 done** · 2 queued · 2 on offline hosts');
    expect(renderFleetSummary(live).fields![0]!.value.split('\n')).toEqual(['📴 **web-05** @ kvm-b — host offline; not finished', '📴 **web-06** @ kvm-b — host offline; not finished']);
  });

  it('ends with the duration and a "Retry failed" button when something failed', () => {
    const final = summarize(
      run(plan(), { 0: done(), 1: done(), 2: failed('UNSUPPORTED', 'no guest agent'), 3: done(), 4: done() }, { status: 'finished', finishedAt: NOW }),
      HOSTS,
      NOW,
    );
    const embed = renderFleetSummary(final);
    expect(embed.title).toBe('⚠️ Fleet snapshot · pre-rollout-{date} · 1 failed');
    expect(embed.description!.split('\n')[2]).toBe(`Took 42.0 s (started <t:${STARTED / 1000}:f>).`);
    expect(fleetSummaryButtons(final)[0]!.components[0]).toMatchObject({ custom_id: 'fleet:a1b2c3d4e5f6:retry', label: 'Retry failed (1)' });
  });

  it('says done, with no buttons, when every target succeeded; and cancelled when it was', () => {
    const all = Object.fromEntries([0, 1, 2, 3, 4].map((index) => [index, done()]));
    const ok = summarize(run(plan(), all, { status: 'finished', finishedAt: NOW }), HOSTS, NOW);
    expect(renderFleetSummary(ok)).toMatchObject({ title: '✅ Fleet snapshot · pre-rollout-{date} · done', color: 0x2ecc71 });
    expect(fleetSummaryButtons(ok)).toEqual([]);
    const cancelled = summarize(
      run(plan(), { 0: done(), 1: { state: 'cancelled', at: NOW }, 2: { state: 'cancelled', at: NOW }, 3: done(), 4: { state: 'cancelled', at: NOW } }, { status: 'finished', finishedAt: NOW, cancelledBy: 'discord:111111111111111111' }),
      HOSTS,
      NOW,
    );
    const embed = renderFleetSummary(cancelled);
    expect(embed.title).toBe('🛑 Fleet snapshot · pre-rollout-{date} · cancelled');
    expect(embed.description!.split('\n')[0]).toBe('**2/5 done** · 3 cancelled');
    expect(embed.fields!.find((field) => field.name === 'Cancelled by')!.value).toBe('<@111111111111111111>');
  });

  it('attaches the per-VM report, failures first, to the final summary of a long run', async () => {
    const many = plan({ targets: targets([['kvm-a', Array.from({ length: 30 }, (_, index) => `vm-${String(index).padStart(2, '0')}`)]]) });
    const states: Record<number, FleetTargetState> = Object.fromEntries(many.targets.map((target) => [target.index, done(1000 + target.index)]));
    states[17] = failed('BUSY', 'libvirt state change lock held by another job');
    const final = summarize(run(many, states, { status: 'finished', finishedAt: NOW }), HOSTS, NOW);
    expect(final.total).toBeGreaterThan(INLINE_TARGETS);
    const payload = fleetSummaryPayload(final);
    expect(payload.files!.map((file) => file.name)).toEqual(['fleet-a1b2c3d4e5f6.txt']);
    expect(payload.embeds[0]!.fields!.map((field) => field.name)).toEqual(['Failures (1)', 'Report', 'Requested by']);
    const report = renderFleetReport(final);
    expect(report.split('\n').slice(0, 7)).toEqual([
      "Fleet run a1b2c3d4e5f6: snapshot pre-rollout-{date} (disk-only) on 'web-* !web-canary'",
      'Requested by ada (discord:111111111111111111)',
      `Status finished; started ${new Date(STARTED).toISOString()}, took 42.0 s`,
      '30 targets: 29 done, 1 failed, 0 running, 0 queued, 0 cancelled, 0 lost',
      '',
      'STATE   HOST   VM     SNAPSHOT              DURATION  DETAIL',
      'failed  kvm-a  vm-17  pre-rollout-20261128  -         BUSY: libvirt state change lock held by another job',
    ]);
    await expect(report).toMatchFileSnapshot('./__golden__/fleet-report.txt');
    // While it runs, no file: it would be re-uploaded with every edit.
    expect(fleetSummaryPayload(summarize(run(many, states), HOSTS, NOW)).files).toBeUndefined();
  });

  it('stays within Discord limits for ten thousand targets on five hundred hosts', () => {
    const hostIds = Array.from({ length: 500 }, (_, index) => `kvm-${String(index).padStart(3, '0')}`);
    const huge = plan({ targets: targets(hostIds.map((hostId) => [hostId, Array.from({ length: 20 }, (_, index) => `vm-${index}`)])) });
    const states: Record<number, FleetTargetState> = Object.fromEntries(
      huge.targets.map((target) => [target.index, target.index % 7 === 0 ? failed('TIMEOUT', 'x'.repeat(500)) : done()]),
    );
    const embed = renderFleetSummary(summarize(run(huge, states), hostIds.map((id) => host(id)), NOW));
    expect(embed.description!.length).toBeLessThanOrEqual(4096);
    expect(embed.description).toContain('… and 485 more hosts');
    for (const field of embed.fields!) expect(field.value.length).toBeLessThanOrEqual(1024);
    expect(embed.fields![0]!.name).toBe('Failures (1429)');
    expect(embed.fields![0]!.value).toMatch(/… and 142\d more$/);
  });
});

describe('/fleet list', () => {
  const rows = [
    { host: 'kvm-a', online: true, vm: 'web-01', state: 'running', snapshots: ['pre-rollout-20261128', 'nightly-20261127', 'nightly-20261126', 'nightly-20261125'] },
    { host: 'kvm-c', online: false, vm: 'web-08', state: 'running', snapshots: [] },
  ];

  it('renders VMs with their snapshots, cut to fit, offline hosts marked', async () => {
    const embed = renderFleetListPage(rows, { target: 'web-*' }, 0);
    expect(embed.description).toBe(
      ['```', 'VM      HOST             SNAPSHOTS', 'web-01  kvm-a            pre-rollout-20261128, nightly-20261127 (+2)', 'web-08  kvm-c (offline)  -', '```'].join('\n'),
    );
    expect(embed.footer).toEqual({ text: '2 VM(s) on 2 host(s), 1 with snapshots' });
    await expect(renderFleetListFile(rows)).toMatchFileSnapshot('./__golden__/fleet-list.txt');
  });

  it('pages long listings', () => {
    const many = Array.from({ length: 45 }, (_, index) => ({ host: 'kvm-a', online: true, vm: `vm-${String(index).padStart(2, '0')}`, state: 'running', snapshots: ['s'] }));
    const last = renderFleetListPage(many, { target: 'all', name: 's*' }, 99);
    // The glob's star is escaped, or it would start italics.
    expect(last.title).toBe('Fleet snapshots · all · s\\*');
    expect(last.footer).toEqual({ text: '45 VM(s) on 1 host(s), 45 with matching snapshots · page 3/3' });
    expect(last.description!.split('\n').filter((line) => line.startsWith('vm-'))).toHaveLength(5);
  });
});
