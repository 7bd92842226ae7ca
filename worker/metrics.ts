import { Queue, type Job, type Worker } from 'bullmq';
import type { RedisClient } from '../shared/redis.js';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { decodeFailedReason } from '../shared/errors.js';
import { heartbeatSchema, queueDepthOf } from '../shared/hosts.js';
import type { JobKind } from '../shared/jobs.js';
import type { Logger } from '../shared/logger.js';
import { cachedReadiness, cacheFor, redisReadiness, registerProcessMetrics, runReadinessProbes, withTimeout, type ReadinessProbe } from '../shared/metrics-server.js';
import { hostQueueName, registryKeys } from '../shared/queues.js';
import type { Hypervisor } from './hypervisor/hypervisor.js';
import type { VirshCallObservation } from './hypervisor/virsh.js';

/**
 * The worker's metrics (served by shared/metrics-server.ts when METRICS_PORT is set).
 * Counted as things happen: jobs from the BullMQ Worker's `completed` / `failed` /
 * `stalled` events, virsh calls from the adapter's observer. Read on scrape: its own
 * queue's depth and its last heartbeat, from Redis, cached for a few seconds.
 * Labels stay few: host, job kind, virsh subcommand, error code; never a VM or a job id.
 */

/** virsh calls run from ~10 ms (a query on a quiet host) to VIRSH_TIMEOUT_MS (5 min by default, memory snapshots). */
export const VIRSH_DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** How long a scrape's Redis reads are reused: Prometheus and people may scrape at once. */
export const SCRAPE_CACHE_MS = 5_000;
/** How long the libvirt probe's answer is kept: a probe every second must not start virsh every second. */
export const LIBVIRT_PROBE_CACHE_MS = 5_000;
/** A scrape's Redis reads give up after this long (the values are then left out, not made up). */
const SCRAPE_READ_TIMEOUT_MS = 2_000;

/** Job names are job kinds; anything else (a job no bot sent) is counted as `other`, keeping the label bounded. */
const JOB_KINDS: Record<JobKind, true> = { create: true, list: true, info: true, revert: true, delete: true };

export function jobKindLabel(job: Pick<Job, 'name'> | undefined): string {
  const name = job?.name;
  return name !== undefined && Object.hasOwn(JOB_KINDS, name) ? name : 'other';
}

/**
 * Whether a failed attempt was the job's last: BullMQ stamps `finishedOn` only when it
 * moves a job to failed for good (not when it puts it back for a retry).
 */
export function isFinalFailure(job: Pick<Job, 'finishedOn'> | undefined): boolean {
  return job === undefined || job.finishedOn !== undefined;
}

/** What the worker hands over once its BullMQ Worker exists (run-worker.ts). */
export interface WatchedWorker {
  worker: Worker;
  redis: RedisClient;
  prefix: string;
  hypervisor: Hypervisor;
  /** libvirt's lifecycle-event watcher (worker/domain-watch.ts); null when LIBVIRT_EVENTS=off. */
  domainWatch?: { readonly isListening: boolean } | null;
}

interface QueueReading {
  counts: Record<'waiting' | 'active' | 'delayed' | 'failed', number>;
  /** The last heartbeat that reached Redis (seconds since the epoch), or null when none is on record. */
  heartbeatAt: number | null;
}

export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly hostId: string;
  private readonly logger: Logger;
  private domainWatch: { readonly isListening: boolean } | null = null;
  private watched: { worker: Worker; redis: RedisClient; queue: Queue; probes: ReadinessProbe[]; read: () => Promise<QueueReading> } | undefined;
  private stopping = false;

  private readonly jobs: Counter<'kind' | 'host' | 'result'>;
  private readonly retries: Counter<'kind' | 'host' | 'code'>;
  private readonly stalled: Counter<'host'>;
  private readonly virshDuration: Histogram<'host' | 'subcommand'>;
  private readonly virshFailed: Counter<'host' | 'subcommand' | 'class'>;

  constructor(options: { hostId: string; logger: Logger }) {
    this.hostId = options.hostId;
    this.logger = options.logger;
    const registers = [this.registry];
    registerProcessMetrics(this.registry);
    this.jobs = new Counter({
      name: 'snapbot_worker_jobs_total',
      help: 'Snapshot jobs this worker finished, by job kind and result: done, or failed:<CODE> with the error code of its last attempt.',
      labelNames: ['kind', 'host', 'result'],
      registers,
    });
    this.retries = new Counter({
      name: 'snapbot_worker_job_retries_total',
      help: 'Failed attempts of snapshot jobs that BullMQ retries (transient errors such as HYPERVISOR_UNAVAILABLE or BUSY), by job kind and error code.',
      labelNames: ['kind', 'host', 'code'],
      registers,
    });
    this.stalled = new Counter({
      name: 'snapbot_worker_jobs_stalled_total',
      help: "Jobs this worker's stall check found active with an expired lock (their worker died or lost Redis) and put back to run again.",
      labelNames: ['host'],
      registers,
    });
    this.virshDuration = new Histogram({
      name: 'snapbot_virsh_call_duration_seconds',
      help: 'How long each virsh call took, by subcommand, failed calls included.',
      labelNames: ['host', 'subcommand'],
      buckets: VIRSH_DURATION_BUCKETS,
      registers,
    });
    this.virshFailed = new Counter({
      name: 'snapbot_virsh_calls_failed_total',
      help: 'virsh calls that failed, by subcommand and class (the error code: HYPERVISOR_UNAVAILABLE, TIMEOUT, BUSY, DOMAIN_NOT_FOUND, ...).',
      labelNames: ['host', 'subcommand', 'class'],
      registers,
    });
    const metrics = this;
    new Gauge({
      name: 'snapbot_worker_queue_jobs',
      help: "Jobs on this worker's own queue (host.<HOST_ID>) by state: waiting (prioritized included), active, delayed, failed (kept a week). Read from Redis on scrape, cached 5 s.",
      labelNames: ['host', 'state'],
      registers,
      async collect() {
        this.reset();
        const reading = await metrics.reading();
        if (!reading) return;
        for (const [state, count] of Object.entries(reading.counts)) this.set({ host: metrics.hostId, state }, count);
      },
    });
    new Gauge({
      name: 'snapbot_worker_heartbeat_last_success_timestamp_seconds',
      help: 'When the last heartbeat of this host reached Redis (seconds since the epoch, by the worker clock). Read from Redis on scrape.',
      labelNames: ['host'],
      registers,
      async collect() {
        this.reset();
        const reading = await metrics.reading();
        if (reading?.heartbeatAt != null) this.set({ host: metrics.hostId }, reading.heartbeatAt);
      },
    });
    new Gauge({
      name: 'snapbot_worker_libvirt_events_listening',
      help: "1 while the worker's libvirt lifecycle-event watcher listens (jobs skip the VM name check while no name moved); 0 when it is off, unsupported or reconnecting (every job checks).",
      labelNames: ['host'],
      registers,
      collect() {
        this.set({ host: metrics.hostId }, metrics.domainWatch?.isListening ? 1 : 0);
      },
    });
    new Gauge({
      name: 'snapbot_worker_ready',
      help: '1 when /readyz answers 200: the worker takes jobs, Redis answers PING and libvirt answers virsh version; else 0.',
      labelNames: ['host'],
      registers,
      async collect() {
        this.set({ host: metrics.hostId }, (await metrics.readiness()).length === 0 ? 1 : 0);
      },
    });
  }

  /** The virsh adapter's observer (VirshHypervisorOptions.observer). */
  readonly observeVirsh = (call: VirshCallObservation): void => {
    const labels = { host: this.hostId, subcommand: call.subcommand };
    this.virshDuration.observe(labels, Math.max(0, call.durationMs) / 1000);
    if (call.failure !== null) this.virshFailed.inc({ ...labels, class: call.failure });
  };

  /** Starts counting the worker's jobs; called as soon as its BullMQ Worker exists, so no job goes uncounted. */
  watch({ worker, redis, prefix, hypervisor, domainWatch }: WatchedWorker): void {
    const host = this.hostId;
    this.domainWatch = domainWatch ?? null;
    worker.on('completed', (job) => this.jobs.inc({ kind: jobKindLabel(job), host, result: 'done' }));
    worker.on('failed', (job, error) => {
      const { code } = decodeFailedReason(error.message);
      if (isFinalFailure(job)) this.jobs.inc({ kind: jobKindLabel(job), host, result: `failed:${code}` });
      else this.retries.inc({ kind: jobKindLabel(job), host, code });
    });
    worker.on('stalled', () => this.stalled.inc({ host }));
    // The Worker's own connection; a Queue over it costs no connection of its own.
    const queue = new Queue(hostQueueName(host), { connection: redis, prefix });
    queue.on('error', (error) => this.logger.debug({ err: error.message }, 'metrics queue error'));
    const read = cacheFor(
      () =>
        withTimeout(
          Promise.all([queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed'), lastHeartbeat(redis, prefix, host)]).then(([counts, heartbeatAt]) => ({
            counts: { ...queueDepthOf(counts), failed: counts.failed ?? 0 },
            heartbeatAt,
          })),
          SCRAPE_READ_TIMEOUT_MS,
          `Redis did not answer within ${SCRAPE_READ_TIMEOUT_MS} ms`,
        ),
      SCRAPE_CACHE_MS,
    );
    const libvirt: ReadinessProbe = {
      name: 'libvirt',
      async probe() {
        await hypervisor.version();
      },
    };
    this.watched = { worker, redis, queue, probes: [redisReadiness(redis), cachedReadiness(libvirt, LIBVIRT_PROBE_CACHE_MS)], read };
  }

  /** Marks the worker as stopping (/readyz 503) and lets go of the queue handle. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.watched?.queue.close().catch(() => undefined);
  }

  /** Why the worker is not ready, one line per reason; empty when it is. */
  async readiness(): Promise<string[]> {
    if (this.stopping || this.watched?.worker.closing) return ['worker: stopping (takes no new jobs)'];
    if (!this.watched) return ['worker: starting (not taking jobs yet)'];
    if (!this.watched.worker.isRunning()) return ['worker: not taking jobs (its BullMQ worker is not running)'];
    return runReadinessProbes(this.watched.probes);
  }

  /** The scrape's Redis reading, or null (logged) when Redis cannot give it now. */
  private async reading(): Promise<QueueReading | null> {
    if (!this.watched) return null;
    try {
      return await this.watched.read();
    } catch (error) {
      this.logger.debug({ err: error instanceof Error ? error.message : String(error) }, 'metrics: cannot read queue depth and heartbeat');
      return null;
    }
  }
}

/**
 * The last heartbeat that reached Redis, as written there: the alive key holds its time
 * while it lives; once it has expired (beats are failing), the host's record still says
 * when it was last seen.
 */
async function lastHeartbeat(redis: RedisClient, prefix: string, host: string): Promise<number | null> {
  const keys = registryKeys(prefix);
  const alive = await redis.get(keys.alive(host));
  if (alive !== null) return parseSeconds(alive);
  const record = await redis.get(keys.host(host));
  if (record === null) return null;
  try {
    const parsed = heartbeatSchema.pick({ lastSeen: true }).safeParse(JSON.parse(record));
    return parsed.success ? parseSeconds(parsed.data.lastSeen) : null;
  } catch {
    return null; // not JSON: no time on record
  }
}

function parseSeconds(iso: string): number | null {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms / 1000;
}
