/**
 * snapctl prints names from libvirt and messages from hosts on an operator's terminal:
 * invisible and direction-changing characters are written out (`<U+200B>`), and so are
 * terminal control characters (an ESC from a VM name must not drive the terminal).
 */
import { describe, expect, it } from 'vitest';
import { summarize, type FleetPlan, type FleetRun } from '../../../bot/core/fleet/index.js';
import { renderFleetList, renderFleetPreview, renderFleetSummary } from '../../../bot/cli/render-fleet.js';
import { renderAudit, renderResult, renderSnapshotDetails, renderSnapshotTable } from '../../../bot/cli/render-text.js';
import type { SnapshotInfo } from '../../../shared/jobs.js';

const ISO = '2026-11-28T11:00:00.000Z';
const HIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u034f\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]/u;

function snapshot(name: string, extra: Partial<SnapshotInfo> = {}): SnapshotInfo {
  return { name, createdAt: ISO, state: 'running', location: 'internal', memory: false, parent: null, current: false, description: 'ok\u202e', jobId: null, ...extra };
}

describe('snapctl text', () => {
  it('writes out hidden characters in snapshot tables and details, keeping columns aligned', () => {
    const table = renderSnapshotTable([snapshot('baseline\u200b'), snapshot('baseline')]);
    expect(table).not.toMatch(HIDDEN);
    expect(table).toContain('baseline<U+200B>');
    const [header, first, second] = table.split('\n');
    expect(first!.indexOf('2026')).toBe(second!.indexOf('2026'));
    expect(header!.indexOf('CREATED')).toBe(first!.indexOf('2026'));
    expect(renderSnapshotDetails(snapshot('\u2066evil\u2069'))).toContain('<U+2066>evil<U+2069>');
  });

  it('writes out terminal control characters and hidden ones in results and audit', () => {
    const text = renderResult({
      kind: 'revert', host: 'kvm-1', vm: { name: 'vm\u001b[2J', uuid: 'u' }, durationMs: 1, snapshot: snapshot('baseline\u200b'), vmState: 'running',
      undoPoint: null, prunedUndoPoints: [], recovered: false, note: 'virsh said \u009b31m',
    }); // prettier-ignore
    expect(text).not.toMatch(HIDDEN);
    expect(text).toContain('vm<U+001B>[2J');
    expect(text).toContain("'baseline<U+200B>'");
    const audit = renderAudit([{ id: '1-0', at: ISO, event: 'requested', actor: 'discord:1', action: 'revert', host: 'kvm-1', vm: 'a\ufeff', snapshot: 'b\u00ad' }]);
    expect(audit).not.toMatch(HIDDEN);
    expect(audit).toContain('a<U+FEFF>');
  });

  it('writes them out in fleet previews, summaries and listings', () => {
    const plan: FleetPlan = {
      id: 'a1b2c3', action: 'delete', selector: 'web-*\u200b', name: 'pre-*', mode: null, description: null, createdAt: ISO,
      requester: { id: 'snapctl:eve', userId: null, displayName: 'eve' }, origin: 'snapctl',
      targets: [{ index: 0, host: 'kvm-1', vm: 'web\u200d', uuid: '00000000-0000-4000-8000-000000000000', snapshot: 'pre-\u202e1' }],
      skipped: { offlineHosts: [], existing: [], forbidden: [], withoutMatch: 0 }, perHost: 4, maxConcurrent: 64, approval: null, retryOf: null,
    }; // prettier-ignore
    const run: FleetRun = {
      plan, status: 'finished', targets: new Map([[0, { state: 'failed', at: 0, code: 'INTERNAL', message: 'boom\u001b]0;title\u0007' }]]), approvals: [], deniedBy: null,
      expiresAt: null, startedAt: 0, finishedAt: 1, cancelledBy: null, message: null,
    }; // prettier-ignore
    for (const text of [renderFleetPreview(plan), renderFleetSummary(summarize(run, [], 1)), renderFleetList([{ host: 'kvm-1', online: true, vm: 'web\u200d', state: 'running', snapshots: ['x\u2028y'] }])]) {
      expect(text).not.toMatch(HIDDEN);
      expect(text).toMatch(/<U\+(200B|200D|2028)>/);
    }
  });
});
