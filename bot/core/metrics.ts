import { QueueEvents } from 'bullmq';
import { Counter, Gauge, Registry } from 'prom-client';
import { CONTROL_QUEUE } from '../../shared/control.js';
import { decodeFailedReason } from '../../shared/errors.js';
import { judgeHost, queueDepthOf, type HostState } from '../../shared/hosts.js';
import { approvalKeys, fleetIndexKeys } from '../../shared/keys.js';
import type { MetricsListen } from '../../shared/metrics-config.js';
import { cacheFor, redisReadiness, registerProcessMetrics, runReadinessProbes, startMetricsServer, withTimeout, type MetricsServer } from '../../shared/metrics-server.js';
import { bullmqConnection } from '../../shared/redis.js';
import type { ScheduleStatus } from '../../shared/schedules/definition.js';
import type { SnapbotCore } from './core.js';
import { listHosts } from './hosts.js';
import { listSchedules } from './schedules/store.js';

/**
 * The control process's metrics: the fleet as Redis holds it, read on scrape (every
 * known host's queue depth and heartbeat age, pending approvals, fleet runs under way,
 * schedules) and cached for a few seconds, plus the snapctl requests handled. Labels:
 * host and schedule names (operators keep both few), states, error codes; never a VM or
 * a job id.
 */

/** Scrapes within this long share one round of Redis reads. */
export const CONTROL_SCRAPE_CACHE_MS = 5_000;
/**
 * Schedules are read less often: reading one checks its seal, and a forged one is
 * audited on every read, which a scrape every few seconds would turn into a flood.
 */
export const SCHEDULES_CACHE_MS = 60_000;
/** A scrape's Redis reads give up after this long; the values are then left out, not made up. */
const SCRAPE_READ_TIMEOUT_MS = 3_000;

const HOST_STATES: readonly HostState[] = ['online', 'stale', 'offline'];
const SCHEDULE_STATUSES: readonly ScheduleStatus[] = ['pending', 'active', 'paused', 'denied', 'expired'];
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

interface HostReading {
  hostId: string;
  state: HostState;
  /** Seconds since its last heartbeat (its lastSeen against this process's clock). */
  heartbeatAgeSeconds: number;
  /** Null when its queue could not be read. */
  queue: Record<(typeof QUEUE_STATES)[number], number> | null;
}

interface ControlPlaneReading {
  hosts: HostReading[];
  pendingApprovals: number;
  activeFleetRuns: number;
}

interface ScheduleReading {
  name: string;
  status: ScheduleStatus;
  failedInARow: number;
}

/** Every known host (from the heartbeats' registry), its queue, pending approvals, fleet runs under way. */
export async function readControlPlane(core: SnapbotCore, now: number = Date.now()): Promise<ControlPlaneReading> {
  const [hosts, pendingApprovals, activeFleetRuns] = await Promise.all([
    listHosts(core),
    core.redis.zcard(approvalKeys(core.prefix).pending),
    core.redis.scard(fleetIndexKeys(core.prefix).active),
  ]);
  // Concurrent, so ioredis writes them back to back: a few round trips for 2 hosts or 50.
  const depths = await Promise.allSettled(hosts.map((host) => core.queueFor(host.hostId).getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed')));
  return {
    hosts: hosts.map((host, index): HostReading => {
      const depth = depths[index];
      const counts = depth?.status === 'fulfilled' ? depth.value : null;
      return {
        hostId: host.hostId,
        state: judgeHost(host, host.online).state,
        heartbeatAgeSeconds: Math.max(0, (now - Date.parse(host.lastSeen)) / 1000),
        queue: counts && { ...queueDepthOf(counts), failed: counts.failed ?? 0 },
      };
    }),
    pendingApprovals,
    activeFleetRuns,
  };
}

/** Registers the control process's metrics in `registry`; `readiness` is what /readyz says. */
export function registerControlMetrics(core: SnapbotCore, registry: Registry): { requests: Counter<'result'>; readiness: () => Promise<string[]> } {
  const registers = [registry];
  const readPlane = cacheFor(() => withTimeout(readControlPlane(core), SCRAPE_READ_TIMEOUT_MS, 'Redis did not answer in time'), CONTROL_SCRAPE_CACHE_MS);
  const readSchedules = cacheFor(
    () =>
      withTimeout(
        listSchedules(core).then((records) => records.map((record): ScheduleReading => ({ name: record.definition.name, status: record.status, failedInARow: record.failedInARow }))),
        SCRAPE_READ_TIMEOUT_MS,
        'Redis did not answer in time',
      ),
    SCHEDULES_CACHE_MS,
  );
  const quietly = async <T>(read: () => Promise<T>, what: string): Promise<T | null> => {
    try {
      return await read();
    } catch (error) {
      core.logger.debug({ err: error instanceof Error ? error.message : String(error) }, `metrics: cannot read ${what}`);
      return null;
    }
  };
  const plane = () => quietly(readPlane, 'hosts, queues, approvals and fleet runs');
  const schedules = () => quietly(readSchedules, 'schedules');
  const probes = [redisReadiness(core.redis)];
  const readiness = () => runReadinessProbes(probes);

  new Gauge({
    name: 'snapbot_queue_jobs',
    help: "Jobs on each known host's queue (host.<HOST_ID>) by state: waiting (prioritized included), active, delayed, failed (kept a week). Read from Redis on scrape, cached 5 s.",
    labelNames: ['host', 'state'],
    registers,
    async collect() {
      this.reset();
      for (const host of (await plane())?.hosts ?? []) {
        if (!host.queue) continue;
        for (const state of QUEUE_STATES) this.set({ host: host.hostId, state }, host.queue[state]);
      }
    },
  });
  new Gauge({
    name: 'snapbot_host_heartbeat_age_seconds',
    help: "Seconds since each known host's last heartbeat (its worker's lastSeen, against the control process's clock). Grows while a host is down.",
    labelNames: ['host'],
    registers,
    async collect() {
      this.reset();
      for (const host of (await plane())?.hosts ?? []) this.set({ host: host.hostId }, host.heartbeatAgeSeconds);
    },
  });
  new Gauge({
    name: 'snapbot_hosts',
    help: 'Known hosts by state, as /hosts shows them: online, stale (alive, but its inventory read failed or is old), offline.',
    labelNames: ['state'],
    registers,
    async collect() {
      this.reset();
      const reading = await plane();
      if (!reading) return;
      for (const state of HOST_STATES) this.set({ state }, reading.hosts.filter((host) => host.state === state).length);
    },
  });
  new Gauge({
    name: 'snapbot_approvals_pending',
    help: 'Approval requests waiting for votes (reverts, deletes, fleet runs, schedules), expired ones included until the sweep marks them.',
    registers,
    async collect() {
      this.reset();
      const reading = await plane();
      if (reading) this.set(reading.pendingApprovals);
    },
  });
  new Gauge({
    name: 'snapbot_fleet_runs_active',
    help: 'Fleet runs under way (running or cancelling).',
    registers,
    async collect() {
      this.reset();
      const reading = await plane();
      if (reading) this.set(reading.activeFleetRuns);
    },
  });
  new Gauge({
    name: 'snapbot_schedules',
    help: 'Schedules by status: pending (approval), active, paused, denied, expired. Read on scrape, cached 60 s.',
    labelNames: ['status'],
    registers,
    async collect() {
      this.reset();
      const records = await schedules();
      if (!records) return;
      for (const status of SCHEDULE_STATUSES) this.set({ status }, records.filter((record) => record.status === status).length);
    },
  });
  new Gauge({
    name: 'snapbot_schedule_failed_in_a_row',
    help: 'Firings in a row of each schedule that ended with failures (0 after a clean one). Read on scrape, cached 60 s.',
    labelNames: ['schedule'],
    registers,
    async collect() {
      this.reset();
      for (const record of (await schedules()) ?? []) this.set({ schedule: record.name }, record.failedInARow);
    },
  });
  new Gauge({
    name: 'snapbot_control_ready',
    help: '1 when /readyz answers 200 (Redis answers PING), else 0.',
    registers,
    async collect() {
      this.set((await readiness()).length === 0 ? 1 : 0);
    },
  });
  const requests = new Counter({
    name: 'snapbot_control_requests_total',
    help: "snapctl requests handled by the control processes, by result: done, or failed:<CODE> (FORBIDDEN for refused ones). Counted from the control queue's events since this process started.",
    labelNames: ['result'],
    registers,
  });
  return { requests, readiness };
}

/**
 * Serves the control process's metrics and health on METRICS_HOST:METRICS_PORT, and
 * counts snapctl requests from the control queue's event stream. The control server's
 * BullMQ worker is its own business; its events are what every process may see.
 */
export async function startControlMetrics(core: SnapbotCore, listen: MetricsListen): Promise<MetricsServer> {
  const registry = new Registry();
  registerProcessMetrics(registry);
  const { requests, readiness } = registerControlMetrics(core, registry);
  const server = await startMetricsServer({ ...listen, registry, readiness, logger: core.logger });
  const events = new QueueEvents(CONTROL_QUEUE, { connection: bullmqConnection(core.options.redisUrl), prefix: core.prefix });
  events.on('error', (error) => core.logger.debug({ err: error.message }, 'metrics: control queue events error'));
  events.on('completed', () => requests.inc({ result: 'done' }));
  events.on('failed', ({ failedReason }) => requests.inc({ result: `failed:${decodeFailedReason(failedReason).code}` }));
  return {
    address: server.address,
    async close() {
      await server.close();
      await events.close().catch(() => events.disconnect());
    },
  };
}
