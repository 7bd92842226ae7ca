import type { RedisClient } from '../shared/redis.js';
import { decodeFailedReason } from '../shared/errors.js';
import { heartbeatSchema, type Capabilities, type Heartbeat, type JobFailure } from '../shared/hosts.js';
import type { Logger } from '../shared/logger.js';
import { registryKeys } from '../shared/queues.js';
import type { HostInventory } from './inventory.js';

export interface HeartbeatOptions {
  redis: RedisClient;
  prefix: string;
  hostId: string;
  libvirtUri: string;
  concurrency: number;
  intervalMs: number;
  ttlMs: number;
  /** INVENTORY_INTERVAL_MS, published so the bot can tell a stale inventory from a fresh one. */
  inventoryIntervalMs: number;
  workerVersion: string;
  inventory: HostInventory;
  /** Versions and capabilities, read again on each beat (libvirt may come back after being down). */
  versions: () => { libvirtVersion: string | null; qemuVersion: string | null; capabilities: Capabilities };
  logger: Logger;
}

const MAX_ERROR_MESSAGE = 300;

/**
 * Tells the fleet this host is alive: its versions, capabilities and inventory are
 * written every few seconds, and an "alive" key expires when the worker stops beating.
 * The record itself stays, so `snapctl hosts` can show an offline host and when it was
 * last seen.
 */
export class HostHeartbeat {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = new Date().toISOString();
  private readonly keys;
  private lastError: JobFailure | null = null;
  private lastErrorRestored = false;

  constructor(private readonly options: HeartbeatOptions) {
    this.keys = registryKeys(options.prefix);
  }

  start(): void {
    const tick = () => {
      void this.beat().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, this.options.intervalMs);
      });
    };
    this.timer = setTimeout(tick, this.options.intervalMs);
  }

  /**
   * Remembers a failed job for the next beats. `reason` is BullMQ's failedReason,
   * "CODE: message" as the job processor encodes it.
   */
  recordJobFailure(job: { id?: string | undefined; name: string; data: unknown } | undefined, reason: string): void {
    const { code, message } = decodeFailedReason(reason);
    const vm = typeof job?.data === 'object' && job.data !== null && 'vm' in job.data ? job.data.vm : undefined;
    this.lastError = {
      code,
      // virsh's stderr can be long; the heartbeat is read on every /hosts and autocomplete.
      message: message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE - 1)}…` : message,
      at: new Date().toISOString(),
      jobId: job?.id ?? null,
      kind: job?.name ?? null,
      vm: typeof vm === 'string' ? vm : null,
    };
  }

  /** Writes one heartbeat now. Errors are logged: a missed beat must not stop the worker. */
  async beat(): Promise<void> {
    const { redis, hostId } = this.options;
    // While Redis is away a beat would wait in the offline queue, and beats would pile up
    // there; skip them. The first beat after reconnecting says the host is back.
    if (redis.status !== 'ready') return;
    if (!this.lastErrorRestored) await this.restoreLastError();
    const heartbeat: Heartbeat = heartbeatSchema.parse({
      hostId,
      libvirtUri: this.options.libvirtUri,
      ...this.options.versions(),
      ...this.options.inventory.view(),
      concurrency: this.options.concurrency,
      startedAt: this.startedAt,
      lastSeen: new Date().toISOString(),
      workerVersion: this.options.workerVersion,
      inventoryIntervalMs: this.options.inventoryIntervalMs,
      lastError: this.lastError,
    });
    try {
      await redis
        .multi()
        .sadd(this.keys.hosts, hostId)
        .set(this.keys.host(hostId), JSON.stringify(heartbeat))
        .set(this.keys.alive(hostId), heartbeat.lastSeen, 'PX', this.options.ttlMs)
        .exec();
    } catch (error) {
      this.options.logger.warn({ err: error }, 'heartbeat not written');
    }
  }

  /**
   * Takes the last error over from the record the previous worker left: restarting a
   * worker is often the first thing an operator tries, and the reason must stay visible.
   */
  private async restoreLastError(): Promise<void> {
    try {
      const previous = await this.options.redis.get(this.keys.host(this.options.hostId));
      this.lastErrorRestored = true;
      if (previous === null || this.lastError !== null) return;
      const parsed = heartbeatSchema.safeParse(JSON.parse(previous));
      if (parsed.success) this.lastError = parsed.data.lastError ?? null;
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not read the previous heartbeat');
    }
  }

  /** Stops beating and, on a clean stop, marks the host offline at once. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    // With Redis away, the alive key simply expires (HEARTBEAT_TTL_MS).
    if (this.options.redis.status !== 'ready') return;
    try {
      await this.options.redis.del(this.keys.alive(this.options.hostId));
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not mark host offline');
    }
  }
}
