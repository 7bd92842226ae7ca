import { describe, expect, it } from 'vitest';
import { durableRedisOptions, failFastRedisOptions, reconnectDelay, reconnectingRedisOptions, RECONNECT_CAP_MS } from '../../../shared/redis.js';

/** Issue 10, finding 8: long-running processes reconnect forever; snapctl gives up fast. */
describe('Redis reconnect policies', () => {
  it('reconnectDelay starts at about 100 ms, doubles, is capped, and never gives up', () => {
    expect(reconnectDelay(1)).toBeGreaterThanOrEqual(80);
    expect(reconnectDelay(1)).toBeLessThanOrEqual(120);
    expect(reconnectDelay(4)).toBeGreaterThanOrEqual(640);
    for (const times of [8, 20, 1_000, 1_000_000]) {
      const delay = reconnectDelay(times);
      expect(delay).toBeGreaterThanOrEqual(RECONNECT_CAP_MS * 0.8);
      expect(delay).toBeLessThanOrEqual(RECONNECT_CAP_MS * 1.2);
    }
  });

  it('the bot core reconnects forever with the offline queue off; workers forever with BullMQ settings', () => {
    const core = reconnectingRedisOptions('redis://:pw@127.0.0.1:6380');
    expect(core).toMatchObject({ enableOfflineQueue: false, password: 'pw', port: 6380 });
    expect(core.retryStrategy!(10_000)).toBeGreaterThan(0);
    const worker = durableRedisOptions('redis://127.0.0.1:6380');
    expect(worker.maxRetriesPerRequest).toBeNull();
    expect(worker.retryStrategy!(10_000)).toBeGreaterThan(0);
  });

  it('snapctl stays fail-fast: it stops reconnecting after three tries', () => {
    const options = failFastRedisOptions('redis://127.0.0.1:6380');
    expect(options.enableOfflineQueue).toBe(false);
    expect(options.retryStrategy!(3)).toBe(600);
    expect(options.retryStrategy!(4)).toBeNull();
  });
});
