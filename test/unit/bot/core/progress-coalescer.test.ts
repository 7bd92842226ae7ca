import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProgressCoalescer } from '../../../../bot/core/progress-coalescer.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(() => {
  vi.useRealTimers();
});

describe('progress coalescing', () => {
  it('delivers the first update at once and then at most one per interval, ending with the latest', async () => {
    const delivered: number[] = [];
    const coalescer = new ProgressCoalescer<number>(async (value) => {
      delivered.push(value);
    }, 100);
    // The machine's clock is not the subject here (a loaded CI box stretches real sleeps).
    vi.useFakeTimers();
    for (let value = 1; value <= 30; value += 1) {
      coalescer.push(value);
      await vi.advanceTimersByTimeAsync(10);
    }
    await coalescer.flush();
    vi.useRealTimers();
    expect(delivered[0]).toBe(1);
    expect(delivered.at(-1)).toBe(30);
    // ~300 ms of updates at 100 ms spacing: about 4 deliveries, never 30.
    expect(delivered.length).toBeLessThanOrEqual(6);
    expect(delivered).toEqual([...delivered].sort((a, b) => a - b));
  });

  it('never runs two deliveries at once, even when one is slow', async () => {
    let running = 0;
    let maxRunning = 0;
    const coalescer = new ProgressCoalescer<number>(async () => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      await sleep(50);
      running -= 1;
    }, 10);
    for (let value = 0; value < 20; value += 1) {
      coalescer.push(value);
      await sleep(5);
    }
    await coalescer.flush(99);
    expect(maxRunning).toBe(1);
  });

  it('flush delivers a final value even right after another delivery', async () => {
    const delivered: string[] = [];
    const coalescer = new ProgressCoalescer<string>(async (value) => {
      delivered.push(value);
    }, 10_000);
    coalescer.push('queued');
    await coalescer.flush('done');
    expect(delivered).toEqual(['queued', 'done']);
  });

  it('keeps going after a failed delivery', async () => {
    const errors: unknown[] = [];
    const delivered: number[] = [];
    const coalescer = new ProgressCoalescer<number>(
      async (value) => {
        if (value === 1) throw new Error('429');
        delivered.push(value);
      },
      1,
      (error) => errors.push(error),
    );
    coalescer.push(1);
    await coalescer.flush(2);
    expect(errors).toHaveLength(1);
    expect(delivered).toEqual([2]);
  });
});
