import type { Redis } from 'ioredis';
import { heartbeatSchema, type Capabilities, type Heartbeat } from '../shared/hosts.js';
import type { Logger } from '../shared/logger.js';
import { registryKeys } from '../shared/queues.js';
import type { HostInventory } from './inventory.js';

export interface HeartbeatOptions {
  redis: Redis;
  prefix: string;
  hostId: string;
  libvirtUri: string;
  concurrency: number;
  intervalMs: number;
  ttlMs: number;
  workerVersion: string;
  inventory: HostInventory;
  /** Versions and capabilities, read again on each beat (libvirt may come back after being down). */
  versions: () => { libvirtVersion: string | null; qemuVersion: string | null; capabilities: Capabilities };
  logger: Logger;
}

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

  /** Writes one heartbeat now. Errors are logged: a missed beat must not stop the worker. */
  async beat(): Promise<void> {
    const { redis, hostId } = this.options;
    const heartbeat: Heartbeat = heartbeatSchema.parse({
      hostId,
      libvirtUri: this.options.libvirtUri,
      ...this.options.versions(),
      ...this.options.inventory.view(),
      concurrency: this.options.concurrency,
      startedAt: this.startedAt,
      lastSeen: new Date().toISOString(),
      workerVersion: this.options.workerVersion,
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

  /** Stops beating and, on a clean stop, marks the host offline at once. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    try {
      await this.options.redis.del(this.keys.alive(this.options.hostId));
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not mark host offline');
    }
  }
}
