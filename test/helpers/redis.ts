import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { findFreePort, startRedisServer, type RedisServerHandle } from '../../scripts/redis-server.js';

/** A private redis-server on a free port for one test file; never the machine's own Redis. */
export interface TestRedis {
  url: string;
  server: RedisServerHandle;
  /** A plain client for assertions. */
  client: Redis;
  stop(): Promise<void>;
}

export async function startTestRedis(options: { durable?: boolean } = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'snapbot-redis-'));
  const server = await startRedisServer({ port: await findFreePort(), dir, durable: options.durable ?? false });
  const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
  return {
    url: server.url,
    server,
    client,
    async stop() {
      client.disconnect();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh key prefix per test, so tests sharing one Redis never see each other's queues. */
export function uniquePrefix(label: string): string {
  return `{snapbot-test-${label}-${Math.random().toString(36).slice(2, 8)}}`;
}
