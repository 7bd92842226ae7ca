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
