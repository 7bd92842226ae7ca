import { Queue, QueueEvents } from 'bullmq';
import { SnapbotError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { Signer } from '../../shared/signing.js';
import { DEFAULT_POLICY, type Policy } from '../../shared/policy.js';
import { hostQueueName } from '../../shared/queues.js';
import { bullmqConnection, connectRedis, connectRedisWaiting, failFastRedisOptions, logConnectionChanges, reconnectingRedisOptions, type RedisClient } from '../../shared/redis.js';

export interface CoreOptions {
  redisUrl: string;
  prefix: string;
  logger: Logger;
  /** Who may do what: role rules apply to chat members; approval rules and break-glass to everyone, snapctl included. */
  policy?: Policy;
  /**
   * 'fail-fast' (default; snapctl) fails when Redis cannot be reached at start and gives
   * up after a few quick reconnects; 'forever' (the bot, a long-running process) waits for
   * Redis at start and reconnects with capped backoff for as long as Redis is away. Either
   * way calls fail at once while disconnected.
   */
  redisReconnect?: 'fail-fast' | 'forever';
  /**
   * The authority's key (the control process holds it; see shared/authority-keys.ts):
   * every job that changes a VM, every approval request and vote, fleet plan and notice
   * is signed with it. A process without it (snapctl) can only read.
   */
  signer?: Signer;
}

/**
 * The control plane's handle on Redis: one fail-fast connection for reads and enqueues,
 * and per host a BullMQ Queue and the QueueEvents stream that reports its jobs' progress
 * and results. Discord and snapctl each open one and call the operations with it.
 */
export class SnapbotCore {
  private readonly queues = new Map<string, Queue>();
  private readonly events = new Map<string, Promise<QueueEvents>>();

  private constructor(
    readonly redis: RedisClient,
    readonly options: CoreOptions,
  ) {}

  /** Connects to Redis; REDIS_UNAVAILABLE naming the URL when it cannot. */
  static async connect(options: CoreOptions): Promise<SnapbotCore> {
    const forever = options.redisReconnect === 'forever';
    // A long-running process waits for a Redis that is not up yet; snapctl fails at once.
    const redis = forever
      ? await connectRedisWaiting(options.redisUrl, reconnectingRedisOptions(options.redisUrl), options.logger, 'core')
      : await connectRedis(options.redisUrl, failFastRedisOptions(options.redisUrl));
    if (forever) logConnectionChanges(redis, options.logger, 'core');
    else redis.on('error', (error: Error) => options.logger.debug({ err: error.message }, 'redis connection error'));
    return new SnapbotCore(redis, options);
  }

  get prefix(): string {
    return this.options.prefix;
  }

  get logger(): Logger {
    return this.options.logger;
  }

  /** The authority's key; INTERNAL in a process that holds none (it may only read). */
  /** Whether this process can sign (and check its own seals): the control process. snapctl's reads cannot. */
  get hasSigner(): boolean {
    return this.options.signer !== undefined;
  }

  get signer(): Signer {
    if (!this.options.signer) throw new SnapbotError('INTERNAL', 'This process holds no signing key: only the control process (npm run bot) may queue changes.');
    return this.options.signer;
  }

  get policy(): Policy {
    return this.options.policy ?? DEFAULT_POLICY;
  }

  queueFor(hostId: string): Queue {
    let queue = this.queues.get(hostId);
    if (!queue) {
      queue = new Queue(hostQueueName(hostId), { connection: this.redis, prefix: this.prefix });
      queue.on('error', (error) => this.logger.debug({ err: error.message, hostId }, 'queue error'));
      this.queues.set(hostId, queue);
    }
    return queue;
  }

  /** The host queue's event stream, listening before anything is enqueued so no event is missed. */
  eventsFor(hostId: string): Promise<QueueEvents> {
    let events = this.events.get(hostId);
    if (!events) {
      const queueEvents = new QueueEvents(hostQueueName(hostId), {
        connection: bullmqConnection(this.options.redisUrl),
        prefix: this.prefix,
      });
      queueEvents.on('error', (error) => this.logger.debug({ err: error.message, hostId }, 'queue events error'));
      events = queueEvents.waitUntilReady().then(() => queueEvents);
      this.events.set(hostId, events);
    }
    return events;
  }

  /** Closes every connection; BullMQ's graceful close waits for Redis, so past `graceMs` (Redis away) the connections are dropped. */
  async close(graceMs = 2_000): Promise<void> {
    const graceful = (async () => {
      const events = await Promise.allSettled([...this.events.values()]);
      await Promise.allSettled(events.map((result) => (result.status === 'fulfilled' ? result.value.close() : undefined)));
      await Promise.allSettled([...this.queues.values()].map((queue) => queue.close()));
      await this.redis.quit().catch(() => this.redis.disconnect());
    })();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
    if ((await Promise.race([graceful, late])) === 'late') {
      this.logger.warn({ graceMs }, 'Redis did not answer while closing; dropping the connections');
      for (const queue of this.queues.values()) void queue.disconnect().catch(() => undefined);
      this.redis.disconnect();
    }
    clearTimeout(timer);
  }
}
