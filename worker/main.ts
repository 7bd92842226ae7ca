#!/usr/bin/env node
import { loadDotEnv, parseEnv, workerEnvSchema } from '../shared/config.js';
import { SnapbotError } from '../shared/errors.js';
import { createLogger } from '../shared/logger.js';
import { readMetricsListen } from '../shared/metrics-config.js';
import { VirshHypervisor } from './hypervisor/virsh.js';
import { startWorker } from './run-worker.js';

/** `npm run worker`: the worker for this KVM host's libvirt, against REDIS_URL. */
async function main(): Promise<void> {
  loadDotEnv();
  const config = parseEnv(workerEnvSchema);
  const metricsListen = readMetricsListen();
  const logger = createLogger('snapbot-worker', config.LOG_LEVEL).child({ host: config.HOST_ID });
  // prom-client and the HTTP server are loaded only when metrics are on (METRICS_PORT):
  // a worker without them stays ~10 MiB smaller.
  const metrics = metricsListen ? new (await import('./metrics.js')).WorkerMetrics({ hostId: config.HOST_ID, logger }) : undefined;
  const hypervisor = new VirshHypervisor({
    virshPath: config.VIRSH_PATH,
    uri: config.LIBVIRT_URI,
    timeoutMs: config.VIRSH_TIMEOUT_MS,
    queryTimeoutMs: config.VIRSH_QUERY_TIMEOUT_MS,
    logger,
    hostId: config.HOST_ID,
    observer: metrics?.observeVirsh,
  });
  // Bound before anything connects: a port that is taken stops the worker at once, naming METRICS_PORT.
  if (metrics && metricsListen) {
    const { startMetricsServer } = await import('../shared/metrics-server.js');
    await startMetricsServer({ ...metricsListen, registry: metrics.registry, readiness: () => metrics.readiness(), logger });
  }
  // Handlers go in before start-up, so a signal that comes while the worker starts (or
  // just after it said "ready") still stops it cleanly instead of killing it mid-way.
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  let stopRequested = false;
  let signals = 0;
  const closeAndExit = () => void worker!.close().then(() => process.exit(0));
  const stop = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    logger.info({ signal }, 'stopping: no new jobs; waiting for running ones');
    stopRequested = true;
    if (worker) closeAndExit();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  worker = await startWorker(config, hypervisor, logger, { metrics });
  if (stopRequested) closeAndExit();
}

main().catch((error: unknown) => {
  const message = error instanceof SnapbotError ? `${error.code}: ${error.message}` : String(error);
  process.stderr.write(`snapbot worker: ${message}\n`);
  process.exit(1);
});
