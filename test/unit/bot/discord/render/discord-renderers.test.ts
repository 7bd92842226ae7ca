import { describe, expect, it } from 'vitest';
import { summarizeHosts } from '../../../../../bot/core/hosts.js';
import { renderHostsReply } from '../../../../../bot/discord/render/render-hosts.js';
import { renderJobFailure, renderJobResult, renderJobStage, renderUserError } from '../../../../../bot/discord/render/render-job.js';
import { pageCount, renderSnapshotListFile, renderSnapshotListPage, SNAPSHOTS_PER_PAGE } from '../../../../../bot/discord/render/render-snapshot-list.js';
import type { HostOverview } from '../../../../../shared/hosts.js';
import type { ResultOf, SnapshotInfo } from '../../../../../shared/jobs.js';

const snapshot = (name: string, overrides: Partial<SnapshotInfo> = {}): SnapshotInfo => ({
  name,
  createdAt: '2026-11-28T01:02:03.000Z',
  state: 'running',
  location: 'internal',
  memory: true,
  parent: null,
  current: false,
  description: null,
  jobId: null,
  ...overrides,
});

const vm = { name: 'web-01', uuid: '6f1c0c4e-1111-4222-8333-944455556666' };

describe('job renderers', () => {
  it('renders a created snapshot', () => {
    const result: ResultOf<'create'> = {
      kind: 'create', host: 'kvm-a', vm, durationMs: 1234, mode: 'disk-only', note: null, recovered: false,
      snapshot: snapshot('pre-upgrade', { location: 'external', memory: false, description: 'before apt upgrade' }),
    }; // prettier-ignore
    expect(renderJobResult(result)).toEqual({
      title: '✅ Snapshot pre-upgrade created',
      color: 0x2ecc71,
      fields: [
        { name: 'VM', value: 'web-01', inline: true },
        { name: 'Host', value: 'kvm-a', inline: true },
        { name: 'Duration', value: '1.2 s', inline: true },
        { name: 'Mode', value: 'disk-only', inline: true },
        { name: 'Location', value: 'external', inline: true },
        { name: 'Memory', value: 'no (disks only)', inline: true },
        { name: 'Description', value: 'before apt upgrade' },
      ],
    });
  });

  it('colours a result with a note as a warning and shows the note', () => {
    const result: ResultOf<'create'> = {
      kind: 'create', host: 'kvm-a', vm, durationMs: 10, mode: 'full', recovered: false,
      note: 'VM was shut off: there is no memory to save, so the snapshot holds the disks only.',
      snapshot: snapshot('cold', { memory: false, state: 'shutoff' }),
    }; // prettier-ignore
    const embed = renderJobResult(result);
    expect(embed.color).toBe(0xe67e22);
    expect(embed.fields?.find((field) => field.name === 'Mode')?.value).toBe('full');
    expect(embed.fields?.at(-1)).toEqual({ name: 'Note', value: result.note });
  });

  it('renders a revert with the state the VM is in now', () => {
    const embed = renderJobResult({ kind: 'revert', host: 'kvm-a', vm, durationMs: 2000, snapshot: snapshot('s1'), vmState: 'running', undoPoint: null, prunedUndoPoints: [] });
    expect(embed.title).toBe('✅ web-01 reverted to s1');
    expect(embed.description).toBe('The VM is now **running**.');
  });

  it('renders the queued and running stages', () => {
    const heading = { kind: 'create' as const, vm: 'web-01', snapshot: 'pre-upgrade' };
    expect(renderJobStage(heading, { stage: 'queued', host: 'kvm-a', jobId: 'j-1' })).toEqual({
      title: 'Create snapshot · web-01 · pre-upgrade',
      color: 0x3498db,
      description: '⏳ Queued on **kvm-a**',
      footer: { text: 'job j-1' },
    });
    expect(renderJobStage(heading, { stage: 'progress', progress: { phase: 'running', host: 'kvm-a', message: 'create on web-01' } }).description).toBe(
      '⚙️ Running on **kvm-a**: create on web-01',
    );
  });

  it('renders a failure with the code, its sentence and what happened', () => {
    const embed = renderJobFailure({ kind: 'delete', vm: 'web-01', snapshot: 's1' }, { code: 'UNSUPPORTED', message: 'libvirt 9.0 cannot.' }, 'kvm-a');
    expect(embed).toEqual({
      title: '❌ Delete snapshot · web-01 · s1 failed',
      color: 0xe74c3c,
      description: "**UNSUPPORTED** — This host's libvirt cannot do that.\nlibvirt 9.0 cannot.",
      fields: [{ name: 'Host', value: 'kvm-a', inline: true }],
    });
    expect(renderUserError({ code: 'FORBIDDEN', message: 'You are not allowed to revert on VM web-01.' })).toBe(
      '**FORBIDDEN** — You are not allowed to do that.\nYou are not allowed to revert on VM web-01.',
    );
  });
});

describe('snapshot list renderer', () => {
  const many: ResultOf<'list'> = {
    kind: 'list', host: 'kvm-a', vm, durationMs: 5,
    snapshots: Array.from({ length: 40 }, (_, index) =>
      snapshot(`s-${String(39 - index).padStart(2, '0')}`, { current: index === 0, description: index === 1 ? 'two\nlines with `ticks`' : null }),
    ),
  }; // prettier-ignore

  it('shows one page as a table inside the embed limits', () => {
    expect(pageCount(40)).toBe(Math.ceil(40 / SNAPSHOTS_PER_PAGE));
    const page = renderSnapshotListPage(many, 0);
    expect(page.title).toBe('Snapshots of web-01 on kvm-a');
    expect(page.footer?.text).toBe('40 snapshot(s), newest first · * current · page 1/3');
    const lines = page.description!.split('\n');
    expect(lines[0]).toBe('```');
    expect(lines[1]).toMatch(/^\s+NAME\s+CREATED\s+LOCATION\s+MEMORY\s+DESCRIPTION$/);
    expect(lines[2]).toBe('*  s-39  2026-11-28 01:02  internal  yes');
    expect(lines[3]).toBe("   s-38  2026-11-28 01:02  internal  yes     two ⏎ lines with 'ticks'");
    expect(lines).toHaveLength(SNAPSHOTS_PER_PAGE + 3);
    expect(page.description!.length).toBeLessThanOrEqual(4096);
  });

  it('clamps pages past either end', () => {
    expect(renderSnapshotListPage(many, 99).footer?.text).toMatch(/page 3\/3$/);
    expect(renderSnapshotListPage(many, -1).footer?.text).toMatch(/page 1\/3$/);
  });

  it('says so when a VM has no snapshots', () => {
    const page = renderSnapshotListPage({ ...many, snapshots: [] }, 0);
    expect(page.description).toBe('```\nno snapshots\n```');
    expect(page.footer?.text).toBe('0 snapshot(s), newest first · * current');
  });

  it('puts every snapshot, uncut, in the attached file', () => {
    const file = renderSnapshotListFile(many);
    expect(file.trimEnd().split('\n')).toHaveLength(41);
    expect(file).toContain('two ⏎ lines with `ticks`');
  });
});

describe('hosts renderer', () => {
  const NOW = Date.parse('2026-11-28T00:10:00.000Z');
  const host = (id: string, overrides: Partial<HostOverview> = {}): HostOverview => ({
    hostId: id, online: true, state: 'online', staleReason: null, libvirtUri: 'qemu:///system', libvirtVersion: '9.0.0', qemuVersion: '7.2.0',
    capabilities: { externalRevert: false, externalDelete: true }, vms: [], inventoryAt: '2026-11-28T00:09:50.000Z', inventoryError: null,
    concurrency: 4, startedAt: '2026-11-28T00:00:00.000Z', lastSeen: '2026-11-28T00:09:59.000Z', workerVersion: '0.1.0',
    inventoryIntervalMs: 30_000, lastError: null, queue: { waiting: 0, delayed: 0, active: 0 },
    ...overrides,
  }); // prettier-ignore
  const overview = (hosts: HostOverview[]) => ({ hosts, summary: summarizeHosts(hosts) });
  const failure = { code: 'TIMEOUT', message: 'virsh snapshot-create-as took longer than 300 s and was killed.', at: '2026-11-28T00:06:00.000Z', jobId: '17', kind: 'create', vm: 'web-01' };

  it('puts the summary counts first, then one compact line per host, then why hosts are stale and their last errors', () => {
    const { embeds, files } = renderHostsReply(
      overview([
        host('kvm-a', { libvirtVersion: '10.0.0', qemuVersion: '8.2.2', capabilities: { externalRevert: true, externalDelete: true }, vms: [{ name: 'web-01', uuid: 'u1', state: 'running', snapshots: [] }] }),
        host('kvm-b', { state: 'stale', staleReason: 'inventory read failed: failed to connect to the hypervisor', queue: { waiting: 2, delayed: 1, active: 1 }, lastError: failure }),
        host('kvm-c', { online: false, state: 'offline', queue: { waiting: 4, delayed: 0, active: 0 } }),
      ]),
      NOW,
    );
    expect(embeds[0]!.description).toBe(
      [
        '**1 online** · 1 stale · 1 offline · 7 queued · 1 running',
        '```',
        'HOST   STATUS   LIBVIRT  QEMU   EXT  VMS  QUEUE  RUN  LAST ERROR',
        'kvm-a  online   10.0.0   8.2.2  r+d  1    0      0    -',
        'kvm-b  stale    9.0.0    7.2.0  d    0    3      1    TIMEOUT 4m',
        'kvm-c  offline  9.0.0    7.2.0  d    0    4      0    -',
        '```',
        '⚠ **kvm-b** stale: inventory read failed: failed to connect to the hypervisor',
        '⏻ **kvm-c** offline, last seen <t:1795824599:R>',
        '✖ **kvm-b** TIMEOUT <t:1795824360:R> (create web-01): virsh snapshot-create-as took longer than 300 s and was killed.',
      ].join('\n'),
    );
    expect(embeds[0]!.color).toBe(0xe67e22);
    expect(embeds[0]!.footer?.text).toContain('EXT: external snapshots');
    expect(files).toEqual([]);
  });

  it('is red when every host is offline', () => {
    const { embeds } = renderHostsReply(overview([host('kvm-a', { online: false, state: 'offline' })]), NOW);
    expect(embeds[0]!.color).toBe(0xe74c3c);
  });

  it('is green when every host is online and fresh, and shows an unreadable queue as ?', () => {
    const { embeds } = renderHostsReply(overview([host('kvm-a', { queue: null })]), NOW);
    expect(embeds[0]!.color).toBe(0x2ecc71);
    expect(embeds[0]!.description).toContain('kvm-a  online  9.0.0    7.2.0  d    0    ?      ?    -');
  });

  it('keeps 30 hosts in one embed, within Discord limits', () => {
    const hosts = Array.from({ length: 30 }, (_, index) =>
      host(`kvm-${String(index).padStart(2, '0')}`, index % 10 === 3 ? { state: 'stale', staleReason: 'inventory is 2 min old (read every 30 s)', lastError: failure } : {}),
    );
    const { embeds, files } = renderHostsReply(overview(hosts), NOW);
    const description = embeds[0]!.description!;
    expect(description.startsWith('**27 online** · 3 stale · 0 offline · 0 queued · 0 running\n```')).toBe(true);
    expect(description.length).toBeLessThanOrEqual(4096);
    expect(description.split('\n').filter((line) => /^kvm-\d\d /.test(line))).toHaveLength(30);
    expect(Math.max(...description.split('\n').map((line) => line.length))).toBeLessThanOrEqual(120);
    expect(files).toEqual([]);
  });

  it('narrows to the stale and offline hosts and attaches the full table when the fleet is too big for an embed', async () => {
    const hosts = Array.from({ length: 200 }, (_, index) =>
      host(`kvm-${String(index).padStart(3, '0')}`, index % 50 === 7 ? { online: false, state: 'offline', lastError: failure } : {}),
    );
    const { embeds, files } = renderHostsReply(overview(hosts), NOW);
    const description = embeds[0]!.description!;
    expect(description.length).toBeLessThanOrEqual(4096);
    expect(description.split('\n').slice(0, 3)).toEqual([
      '**196 online** · 0 stale · 4 offline · 0 queued · 0 running',
      'Stale and offline hosts (the full table is attached):',
      '```',
    ]);
    expect(description.split('\n').filter((line) => /^kvm-\d{3} /.test(line)).map((line) => line.slice(0, 7))).toEqual(['kvm-007', 'kvm-057', 'kvm-107', 'kvm-157']);
    expect(files).toHaveLength(1);
    const file = String((files[0]!.attachment as Buffer).toString('utf8'));
    expect(file.split('\n').filter((line) => /^kvm-\d{3} /.test(line))).toHaveLength(200);
    expect(file).toContain('✖ kvm-007 TIMEOUT 2026-11-28T00:06:00.000Z (create web-01): virsh snapshot-create-as');
  });

  it('says so when every host of a big fleet is online', () => {
    const hosts = Array.from({ length: 200 }, (_, index) => host(`kvm-${String(index).padStart(3, '0')}`));
    const { embeds, files } = renderHostsReply(overview(hosts), NOW);
    expect(embeds[0]!.description).toBe('**200 online** · 0 stale · 0 offline · 0 queued · 0 running\nAll 200 hosts are online; the full table is attached.');
    expect(files).toHaveLength(1);
  });

  it('cuts the notes, not the table, when many hosts have errors', () => {
    const long = { ...failure, message: 'x'.repeat(400) };
    const hosts = Array.from({ length: 25 }, (_, index) => host(`kvm-${String(index).padStart(2, '0')}`, { lastError: long }));
    const { embeds, files } = renderHostsReply(overview(hosts), NOW);
    const description = embeds[0]!.description!;
    expect(description.length).toBeLessThanOrEqual(4096);
    expect(description.split('\n').filter((line) => /^kvm-\d\d /.test(line))).toHaveLength(25);
    expect(description).toMatch(/\n… \d+ more note\(s\) in the attached file$/);
    expect(files).toHaveLength(1);
  });

  it('asks for a worker when no host has reported', () => {
    const { embeds } = renderHostsReply(overview([]), NOW);
    expect(embeds[0]!.description).toBe('No host has reported yet. Start a worker on each KVM host.');
  });
});
