/**
 * Queue and key names. Everything lives under one Redis hash tag (`{snapbot}` by
 * default) so that a Redis Cluster keeps every queue in one slot, as BullMQ flows need.
 */
export const DEFAULT_PREFIX = '{snapbot}';

/** BullMQ queue names may not contain ':'; host ids are validated to hostname characters. */
export function hostQueueName(hostId: string): string {
  return `host.${hostId}`;
}

export function registryKeys(prefix: string) {
  return {
    /** Set of every host id that has ever sent a heartbeat. */
    hosts: `${prefix}:hosts`,
    /** JSON heartbeat of a host: versions, capabilities, inventory. Kept after the host stops. */
    host: (hostId: string) => `${prefix}:host:${hostId}`,
    /** Exists while the host's worker is alive (expires with a TTL, deleted on clean stop). */
    alive: (hostId: string) => `${prefix}:host:${hostId}:alive`,
  };
}

/** Attempts of a job: transient failures (libvirt restarting, lock timeouts) are retried after 1 s, 2 s, 4 s, 8 s. */
export const JOB_ATTEMPTS = 5;
export const JOB_BACKOFF = { type: 'exponential', delay: 1000 } as const;

/**
 * How long BullMQ keeps finished jobs, for every job and every worker: completed ones a
 * day (their results are read by whoever waits), failed ones a week (for `/hosts` and
 * post-mortems); at most 5,000 of each per host, enough for a fleet run's every target.
 */
export const JOB_RETENTION = {
  removeOnComplete: { age: 24 * 3600, count: 5000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 5000 },
} as const;
