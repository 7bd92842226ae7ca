import { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  createRedisClient,
  duplicateRedisClient,
  durableRedisOptions,
  failFastRedisOptions,
  isRedisConnectionError,
  reconnectDelay,
  reconnectingRedisOptions,
  RECONNECT_CAP_MS,
} from '../../../shared/redis.js';

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

describe('Redis Cluster clients', () => {
  const url = 'redis-cluster://snapbot:p%40ss@10.0.0.1:7000,10.0.0.2:7001';

  it('gives a Cluster the nodes, the reconnect policy and offline queue of the options, and each node the credentials and retry limit', () => {
    const client = createRedisClient(url, { ...failFastRedisOptions(url), lazyConnect: true });
    try {
      expect(client).toBeInstanceOf(Cluster);
      const cluster = client as Cluster;
      expect(cluster.options.enableOfflineQueue).toBe(false);
      expect(cluster.options.clusterRetryStrategy!(4)).toBeNull();
      expect(cluster.options.redisOptions).toMatchObject({ username: 'snapbot', password: 'p@ss', maxRetriesPerRequest: 1, connectTimeout: 3_000 });
      expect(cluster.options.redisOptions).not.toHaveProperty('retryStrategy');
      expect(cluster.options.redisOptions).not.toHaveProperty('lazyConnect');
      // About 20 s of retries while a dead master's replica takes over.
      expect(cluster.options.maxRedirections! * cluster.options.retryDelayOnFailover!).toBe(20_000);
    } finally {
      client.disconnect();
    }
  });

  it('a duplicate for a BullMQ worker keeps the credentials and takes maxRetriesPerRequest null', () => {
    const client = createRedisClient(url, { ...reconnectingRedisOptions(url), lazyConnect: true });
    const copy = duplicateRedisClient(client, { maxRetriesPerRequest: null }) as Cluster;
    try {
      expect(copy.options.redisOptions).toMatchObject({ username: 'snapbot', password: 'p@ss', maxRetriesPerRequest: null });
    } finally {
      copy.disconnect();
      client.disconnect();
    }
  });

  it("counts a cluster without a reachable node or with its slots moving as Redis away, not as the command's failure", () => {
    for (const message of ['None of startup nodes is available', "Cluster isn't ready and enableOfflineQueue options is false", 'CLUSTERDOWN The cluster is down', 'TRYAGAIN Multiple keys request during rehashing of slot', 'Too many Cluster redirections. Last error: Error: Connection is closed.', 'READONLY You can\'t write against a read only replica.']) {
      expect(isRedisConnectionError(new Error(message)), message).toBe(true);
    }
    expect(isRedisConnectionError(new Error("CROSSSLOT Keys in request don't hash to the same slot"))).toBe(false);
  });
});
