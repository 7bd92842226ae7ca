import { describe, expect, it } from 'vitest';
import { renderHostsReply } from '../../bot/discord/render/render-hosts.js';
import { renderJobFailure, renderJobResult, renderJobStage, renderUserError } from '../../bot/discord/render/render-job.js';
import { pageCount, renderSnapshotListFile, renderSnapshotListPage, SNAPSHOTS_PER_PAGE } from '../../bot/discord/render/render-snapshot-list.js';
import type { HostStatus } from '../../shared/hosts.js';
import type { ResultOf, SnapshotInfo } from '../../shared/jobs.js';

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
  const host = (id: string, online: boolean): HostStatus => ({
    hostId: id, online, libvirtUri: 'qemu:///system', libvirtVersion: '9.0.0', qemuVersion: '7.2.0',
    capabilities: { externalRevert: false, externalDelete: true }, vms: [], inventoryAt: null, inventoryError: null,
    concurrency: 4, startedAt: '2026-11-28T00:00:00.000Z', lastSeen: '2026-11-28T00:00:05.000Z', workerVersion: '0.1.0',
  }); // prettier-ignore

  it('renders a table with status and versions', () => {
    const { embeds, files } = renderHostsReply([host('kvm-a', true), host('kvm-b', false)]);
    expect(embeds[0]!.description).toBe(
      '```\nHOST   STATUS   LIBVIRT  QEMU   EXT-REVERT  VMS\nkvm-a  online   9.0.0    7.2.0  no          0\nkvm-b  offline  9.0.0    7.2.0  no          0\n```',
    );
    expect(embeds[0]!.footer?.text).toBe('1/2 online');
    expect(files).toEqual([]);
  });

  it('attaches the table as a file when it is too long for an embed', () => {
    const hosts = Array.from({ length: 200 }, (_, index) => host(`kvm-${String(index).padStart(3, '0')}`, true));
    const { embeds, files } = renderHostsReply(hosts);
    expect(embeds[0]!.description).toBe('200 of 200 hosts online; the full table is attached.');
    expect(files).toHaveLength(1);
  });
});
