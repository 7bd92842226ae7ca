import type { RedisOptions as BullmqRedisOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { SnapbotError } from './errors.js';

/** ioredis options from a `redis://`, `rediss://` or `unix://` URL. */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const parsed = new URL(url);
  if (parsed.protocol === 'unix:') return { path: decodeURIComponent(parsed.pathname) };
  const db = parsed.pathname.length > 1 ? Number.parseInt(parsed.pathname.slice(1), 10) : 0;
  return {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number.parseInt(parsed.port, 10) : 6379,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    db: Number.isNaN(db) ? 0 : db,
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** Shows a Redis URL in messages without its password. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable REDIS_URL)';
  }
}

/**
 * Options for processes that must not hang when Redis is down (snapctl, the bot's
 * producers): commands fail at once instead of queueing while disconnected.
 */
export function failFastRedisOptions(url: string): RedisOptions {
  return {
    ...redisOptionsFromUrl(url),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 3_000,
    retryStrategy: (times) => (times > 3 ? null : 200 * times),
  };
}

/** Options for long-lived workers: reconnect forever; BullMQ requires maxRetriesPerRequest null. */
export function durableRedisOptions(url: string): RedisOptions {
  return {
    ...redisOptionsFromUrl(url),
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(times * 500, 5_000),
  };
}

/**
 * Connects and pings once, so that an unreachable Redis is reported as REDIS_UNAVAILABLE
 * naming the URL, instead of as a hang or a raw ECONNREFUSED later.
 */
export async function connectRedis(url: string, options: RedisOptions): Promise<Redis> {
  const redis = new Redis({ ...options, lazyConnect: true });
  redis.on('error', () => {
    /* reported through the failing command below, or by the owner's own listener */
  });
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (error) {
    redis.disconnect();
    throw new SnapbotError(
      'REDIS_UNAVAILABLE',
      `Cannot reach Redis at ${redactRedisUrl(url)} (set REDIS_URL, or run \`npm start\` for a managed local Redis): ${
        error instanceof Error ? error.message : String(error)
      }`,
      { cause: error },
    );
  }
}

/**
 * BullMQ connection options for a dedicated connection (QueueEvents blocks on XREAD,
 * so it may not share a client). BullMQ types its options on their own; the values are
 * the same ioredis options.
 */
export function bullmqConnectionOptions(options: RedisOptions): BullmqRedisOptions {
  return Object.assign<BullmqRedisOptions, RedisOptions>({}, { ...options, maxRetriesPerRequest: null });
}
