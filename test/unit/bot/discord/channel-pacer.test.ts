import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChannelPacer } from '../../../../bot/discord/channel-messenger.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('ChannelPacer', () => {
  it('lets the budget through at once and holds the rest until the window moves on', async () => {
    vi.useFakeTimers();
    const pacer = new ChannelPacer({ count: 5, windowMs: 5_000 });
    const released: number[] = [];
    for (let index = 0; index < 7; index += 1) void pacer.slot('edit:1', 'progress').then(() => released.push(index));
    await vi.advanceTimersByTimeAsync(0);
    expect(released).toEqual([0, 1, 2, 3, 4]);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(released).toHaveLength(5);
    await vi.advanceTimersByTimeAsync(1);
    expect(released).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('sends an urgent request (an approval outcome) before progress edits that waited longer', async () => {
    vi.useFakeTimers();
    const pacer = new ChannelPacer({ count: 1, windowMs: 1_000 });
    const order: string[] = [];
    void pacer.slot('edit:1', 'progress').then(() => order.push('first'));
    void pacer.slot('edit:1', 'progress').then(() => order.push('summary A'));
    void pacer.slot('edit:1', 'progress').then(() => order.push('summary B'));
    void pacer.slot('edit:1', 'urgent').then(() => order.push('approval'));
    void pacer.slot('edit:1', 'urgent').then(() => order.push('final'));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(order).toEqual(['first', 'approval', 'final', 'summary A', 'summary B']);
  });

  it('counts each channel on its own', async () => {
    vi.useFakeTimers();
    const pacer = new ChannelPacer({ count: 1, windowMs: 1_000 });
    const released: string[] = [];
    void pacer.slot('edit:1', 'progress').then(() => released.push('1a'));
    void pacer.slot('edit:1', 'progress').then(() => released.push('1b'));
    void pacer.slot('edit:2', 'progress').then(() => released.push('2a'));
    await vi.advanceTimersByTimeAsync(0);
    expect(released).toEqual(['1a', '2a']);
    expect(pacer.waiting('edit:1')).toBe(1);
    pacer.close();
    await vi.advanceTimersByTimeAsync(0);
    expect(released).toEqual(['1a', '2a', '1b']);
  });
});
