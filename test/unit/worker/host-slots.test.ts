import { describe, expect, it } from 'vitest';
import { HostSlots } from '../../../worker/host-slots.js';

describe('host slots', () => {
  it('lets at most `size` holders run, and serves waiters first come, first served', async () => {
    const slots = new HostSlots(2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      [0, 1, 2, 3, 4, 5].map((index) =>
        slots.withSlot(async () => {
          order.push(index);
          running += 1;
          most = Math.max(most, running);
          await new Promise((resolve) => setTimeout(resolve, 10));
          running -= 1;
        }),
      ),
    );
    expect(most).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('frees the slot when the work throws, and a second release is harmless', async () => {
    const slots = new HostSlots(1);
    await expect(slots.withSlot(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    const release = await slots.acquire();
    release();
    release();
    const again = await Promise.race([slots.acquire().then(() => 'got it'), new Promise((resolve) => setTimeout(() => resolve('stuck'), 100))]);
    expect(again).toBe('got it');
  });
});
