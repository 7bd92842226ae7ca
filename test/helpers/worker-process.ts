import type { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { spawnNode, WORKER_MAIN, type SpawnedProcess } from './processes.js';

export const FAKE_LIBVIRT_URI = 'qemu:///system';

export interface WorkerProcessOptions {
  redisUrl: string;
  prefix: string;
  hostId: string;
  fake: FakeVirshHost;
  env?: Record<string, string>;
}

/**
 * The real worker entry point (`npm run worker`) as a child process against a fake
 * virsh, with short heartbeat and stall timings so crash tests take seconds.
 */
export async function startWorkerProcess(options: WorkerProcessOptions): Promise<SpawnedProcess> {
  const worker = spawnNode(WORKER_MAIN, {
    REDIS_URL: options.redisUrl,
    SNAPBOT_PREFIX: options.prefix,
    HOST_ID: options.hostId,
    LIBVIRT_URI: FAKE_LIBVIRT_URI,
    VIRSH_PATH: options.fake.path,
    HEARTBEAT_INTERVAL_MS: '300',
    HEARTBEAT_TTL_MS: '1500',
    INVENTORY_INTERVAL_MS: '5000',
    JOB_LOCK_MS: '2000',
    JOB_STALLED_CHECK_MS: '1000',
    SHUTDOWN_GRACE_MS: '10000',
    LOG_LEVEL: 'info',
    ...options.fake.env,
    ...options.env,
  });
  await worker.waitFor('worker ready');
  return worker;
}
