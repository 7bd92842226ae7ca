import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChannelPacer } from '../../../../bot/discord/channel-messenger.js';

afterEach(() => {
  vi.useRealTimers();
});

/**
 * A skippable progress edit gives way to urgent ones: a fleet summary's coalescer sends
 * one edit at a time, so a progress edit waiting behind approval outcomes held back that
 * summary's own final edit (measured: 13.8 s after the run finished, two runs and five
 * approvals in one channel).
 */
describe('ChannelPacer: skippable progress edits', () => {
  it('resolves a waiting skippable progress edit with false when an urgent one arrives; the urgent one takes its place', async () => {
    vi.useFakeTimers();
    const pacer = new ChannelPacer({ count: 1, windowMs: 1_000 });
    const outcome: string[] = [];
    void pacer.slot('edit:1', 'progress').then((sent) => outcome.push(`first ${sent}`));
    void pacer.slot('edit:1', 'progress', { skippable: true }).then((sent) => outcome.push(`summary progress ${sent}`));
    void pacer.slot('edit:1', 'progress').then((sent) => outcome.push(`plain progress ${sent}`));
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome).toEqual(['first true']);
    void pacer.slot('edit:1', 'urgent').then((sent) => outcome.push(`approval ${sent}`));
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome).toEqual(['first true', 'summary progress false']);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outcome).toEqual(['first true', 'summary progress false', 'approval true']);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outcome).toEqual(['first true', 'summary progress false', 'approval true', 'plain progress true']);
  });

  it('skips a skippable progress edit at once while urgent ones wait, and sends it when none do', async () => {
    vi.useFakeTimers();
    const pacer = new ChannelPacer({ count: 1, windowMs: 1_000 });
    const outcome: string[] = [];
    void pacer.slot('edit:1', 'urgent').then((sent) => outcome.push(`a ${sent}`));
    void pacer.slot('edit:1', 'urgent').then((sent) => outcome.push(`b ${sent}`));
    await expect(pacer.slot('edit:1', 'progress', { skippable: true })).resolves.toBe(false);
    // Another channel's urgent requests do not matter.
    await expect(pacer.slot('edit:2', 'progress', { skippable: true })).resolves.toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outcome).toEqual(['a true', 'b true']);
    const late = pacer.slot('edit:1', 'progress', { skippable: true });
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(late).resolves.toBe(true);
    pacer.close();
  });
});
