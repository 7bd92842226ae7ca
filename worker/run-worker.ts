import { Worker } from 'bullmq';
import { readFileSync } from 'node:fs';
import { capabilitiesForLibvirt } from '../shared/hosts.js';
import type { WorkerConfig } from '../shared/config.js';
import { redisUrlOf } from '../shared/config.js';
import { loadAuthorityVerifier } from '../shared/authority-keys.js';
import type { Logger } from '../shared/logger.js';
import { hostQueueName, JOB_RETENTION } from '../shared/queues.js';
import { connectRedisWaiting, durableRedisOptions, logConnectionChanges } from '../shared/redis.js';
import { HostHeartbeat } from './heartbeat.js';
import type { Hypervisor, HypervisorVersion } from './hypervisor/hypervisor.js';
import { HostInventory } from './inventory.js';
import { DomainWatch } from './domain-watch.js';
import { JobAdmission } from './job-admission.js';
import { createJobProcessor, settleStalledFleetJob } from './process-job.js';
import type { JobProcessorDeps } from './job-context.js';
import { HostSlots } from './host-slots.js';
import { VmLocks } from './vm-lock.js';
import type { WorkerMetrics } from './metrics.js';

const packageVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

export interface RunningWorker {
  readonly hostId: string;
  /** Stops taking jobs, lets running ones finish (bounded by SHUTDOWN_GRACE_MS), marks the host offline. */
  close(): Promise<void>;
}

/**
 * Starts the worker of one KVM host: a BullMQ Worker on `host.<HOST_ID>`, the inventory
 * it keeps, and the heartbeat that publishes both.
 */
export async function startWorker(
  config: WorkerConfig,
  hypervisor: Hypervisor,
  logger: Logger,
  options: { metrics?: WorkerMetrics } = {},
): Promise<RunningWorker> {
  // Before anything connects: a worker that cannot tell its authority's jobs from others' must not start.
  const verifier = loadAuthorityVerifier(config);
  const redisUrl = redisUrlOf(config);
  const connectionOptions = durableRedisOptions(redisUrl);
  // Started before Redis is up, it waits, logging each attempt with a sentence naming
  // REDIS_URL; once running, it reconnects forever (a Redis restart must not need a
  // worker restart). A refused password still fails at once.
  const redis = await connectRedisWaiting(redisUrl, connectionOptions, logger, 'worker');
  logConnectionChanges(redis, logger, 'worker');

  // libvirt's lifecycle events: while no VM name can have moved, jobs skip the name check's own virsh process.
  const startWatcher = hypervisor.startLifecycleWatcher?.bind(hypervisor);
  const watch = config.LIBVIRT_EVENTS === 'on' && startWatcher ? new DomainWatch({ start: startWatcher, logger }) : null;
  watch?.start();
  const inventory = new HostInventory(hypervisor, logger, watch);
  let version: HypervisorVersion = { libvirt: null, qemu: null };
  const readVersion = async () => {
    try {
      version = await hypervisor.version();
    } catch (error) {
      logger.warn({ err: error }, 'cannot read libvirt version');
    }
  };
  await readVersion();
  await inventory.refreshAll();

  const heartbeat = new HostHeartbeat({
    redis,
    prefix: config.SNAPBOT_PREFIX,
    hostId: config.HOST_ID,
    libvirtUri: config.LIBVIRT_URI,
    concurrency: config.WORKER_CONCURRENCY,
    intervalMs: config.HEARTBEAT_INTERVAL_MS,
    ttlMs: config.HEARTBEAT_TTL_MS,
    inventoryIntervalMs: config.INVENTORY_INTERVAL_MS,
    workerVersion: packageVersion,
    inventory,
    versions: () => ({
      libvirtVersion: version.libvirt,
      qemuVersion: version.qemu,
      capabilities: capabilitiesForLibvirt(version.libvirt),
    }),
    logger,
  });

  const processorDeps: JobProcessorDeps = {
    hostId: config.HOST_ID,
    hypervisor,
    inventory,
    locks: new VmLocks(),
    slots: new HostSlots(config.WORKER_CONCURRENCY),
    capabilities: () => capabilitiesForLibvirt(version.libvirt),
    logger,
    redis,
    prefix: config.SNAPBOT_PREFIX,
    fleetPermitLeaseMs: 3 * config.VIRSH_TIMEOUT_MS,
    admission: new JobAdmission({ verifier, redis, prefix: config.SNAPBOT_PREFIX, hostId: config.HOST_ID, logger }),
  };
  const worker = new Worker(
    hostQueueName(config.HOST_ID),
    createJobProcessor(processorDeps),
    {
      connection: redis,
      prefix: config.SNAPBOT_PREFIX,
      // Twice the slots: jobs waiting for a busy VM must not keep other VMs' jobs from starting.
      concurrency: 2 * config.WORKER_CONCURRENCY,
      lockDuration: config.JOB_LOCK_MS,
      stalledInterval: config.JOB_STALLED_CHECK_MS,
      // A job whose worker dies while it is active runs again (every operation finds what
      // an earlier run of it did); after the third death it fails, and its fleet target is
      // settled from the 'failed' event (settleStalledFleetJob): a job that kills its
      // worker must not loop for ever.
      maxStalledCount: 2,
      // For jobs that carry no retention of their own; the same as the bot gives its jobs.
      ...JOB_RETENTION,
    },
  );
  options.metrics?.watch({ worker, redis, prefix: config.SNAPBOT_PREFIX, hypervisor, domainWatch: watch });
  worker.on('error', (error) => logger.warn({ err: error.message }, 'worker error'));
  worker.on('failed', (job, error) => {
    logger.info({ jobId: job?.id, reason: error.message }, 'job failed');
    heartbeat.recordJobFailure(job, error.message);
    void settleStalledFleetJob(processorDeps, job, error).catch((settleError: unknown) =>
      logger.warn({ err: settleError, jobId: job?.id }, 'could not settle the fleet target of a job failed for its stall limit'),
    );
  });
  await worker.waitUntilReady();

  // The first heartbeat goes out only once the worker listens, so "online" means "takes jobs".
  await heartbeat.beat();
  heartbeat.start();
  const inventoryTimer = setInterval(() => {
    void (async () => {
      if (version.libvirt === null) await readVersion();
      await inventory.refreshAll();
    })();
  }, config.INVENTORY_INTERVAL_MS);
  logger.info(
    { queue: hostQueueName(config.HOST_ID), authority: verifier.keyId, libvirt: version.libvirt, qemu: version.qemu, vms: inventory.view().vms.length },
    'worker ready',
  );

  let closing: Promise<void> | undefined;
  return {
    hostId: config.HOST_ID,
    close() {
      closing ??= (async () => {
        clearInterval(inventoryTimer);
        await options.metrics?.stop();
        await heartbeat.stop();
        let timer: NodeJS.Timeout | undefined;
        const graceOver = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), config.SHUTDOWN_GRACE_MS);
        });
        const outcome = await Promise.race([worker.close().then(() => 'closed' as const), graceOver]);
        clearTimeout(timer);
        if (outcome === 'timeout') {
          // Jobs still running are left locked; they stall and run again (idempotently) on the next start.
          logger.warn({ graceMs: config.SHUTDOWN_GRACE_MS }, 'jobs still running at shutdown; forcing close');
          await worker.close(true);
        }
        watch?.stop();
        // quit() would wait in the offline queue for a Redis that is away.
        if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
        else redis.disconnect();
        logger.info('worker stopped');
      })();
      return closing;
    },
  };
}
