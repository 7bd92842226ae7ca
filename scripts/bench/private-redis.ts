import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { findFreePort, startRedisServer } from '../redis-server.js';
import type { CleanupStack } from './cleanup-stack.js';

/** A redis-server of the benchmark's own, on a free loopback port (never 6379 or the managed 6380). */
export interface PrivateRedis {
  url: string;
  port: number;
  /** AOF with appendfsync always, as `npm start` runs it, or no persistence at all. */
  durable: boolean;
  /** A plain client for INFO, CONFIG RESETSTAT, DBSIZE. */
  admin: Redis;
}

const RESERVED_PORTS = new Set([6379, 6380]);

export async function startPrivateRedis(cleanups: CleanupStack, durable: boolean): Promise<PrivateRedis> {
  let port = await findFreePort();
  while (RESERVED_PORTS.has(port)) port = await findFreePort();
  // Under the system temp dir, which is on disk here: fsync costs what it would in ./data.
  const dir = mkdtempSync(join(tmpdir(), 'snapbot-bench-redis-'));
  cleanups.defer('redis data dir', () => rmSync(dir, { recursive: true, force: true }));
  const server = await startRedisServer({ port, dir, durable });
  cleanups.defer('redis-server', () => server.stop());
  const admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined);
  cleanups.defer('redis admin client', () => {
    admin.disconnect();
  });
  // BENCH_APPENDFSYNC=everysec: AOF written every second instead of at every write, to put
  // a number on what `always` (npm start's setting) costs; see docs/BENCHMARKS.md.
  const appendfsync = process.env.BENCH_APPENDFSYNC;
  if (durable && appendfsync) {
    if (appendfsync !== 'always' && appendfsync !== 'everysec') throw new Error(`BENCH_APPENDFSYNC must be always or everysec, got ${JSON.stringify(appendfsync)}`);
    await admin.config('SET', 'appendfsync', appendfsync);
  }
  return { url: server.url, port, durable, admin };
}

/** Calls per command since the last CONFIG RESETSTAT, from INFO commandstats. */
export async function commandCounts(admin: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const info = await admin.info('commandstats');
  const counts = new Map<string, { calls: number; usec: number }>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    counts.set(match[1]!, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return counts;
}

/** One numeric field of INFO memory (used_memory, used_memory_peak, …). */
export async function memoryField(admin: Redis, field: string): Promise<number> {
  const info = await admin.info('memory');
  const match = new RegExp(`^${field}:(\\d+)`, 'm').exec(info);
  return match ? Number(match[1]) : Number.NaN;
}
