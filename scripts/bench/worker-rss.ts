import type { Redis } from 'ioredis';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SnapbotCore } from '../../bot/core/core.js';
import { listSnapshots, snapshotInfo } from '../../bot/core/snapshots.js';
import { createLogger } from '../../shared/logger.js';
import { hostQueueName } from '../../shared/queues.js';
import { FakeVirshHost } from '../../test/fixtures/fake-virsh-host.js';
import { WORKER_ENVIRONMENT, WORKER_NODE_FLAGS } from '../worker-node-flags.js';
import type { CleanupStack } from './cleanup-stack.js';
import { memoryField, startPrivateRedis } from './private-redis.js';
import { baseEnv, benchAuthority, loadAverage, processMemory, PROJECT_ROOT, sleep, startNodeProcess, timeCommand, WORKER_MAIN, type ProcessMemory } from './processes.js';
import { printHeading, printLine, printTable, progress, type SectionResult } from './report.js';
import { DISTRIBUTION_HEADERS, distributionRow, mib, summarize } from './stats.js';

/**
 * Section 3: the worker process's memory. Its resident set is read from
 * /proc/PID/status when idle, right after a burst of jobs, and again after it has been
 * idle for a while; then Redis's memory and key count show what job retention keeps.
 */

export interface WorkerRssOptions {
  jobs: number;
  /** Jobs the client keeps in flight. */
  concurrency: number;
  /** Bursts of `jobs`, each followed by the idle wait. */
  rounds: number;
  idleBeforeMs: number;
  idleAfterMs: number;
  durableRedis: boolean;
}

/** Issue 13: ≤ 70 MiB idle (was ≤ 80 MB before it). */
export const IDLE_RSS_TARGET_BYTES = 70 * 1024 * 1024;
/** "No growth" with room for allocator noise: the RSS after the idle wait may exceed the idle RSS by this much. */
export const GROWTH_TOLERANCE_BYTES = 5 * 1024 * 1024;

const HOST_ID = 'bench-rss';
const VM_COUNT = 8;
const SNAPSHOT = 'base';
const REQUESTED_BY = 'bench:worker-rss';

interface MemoryReading extends ProcessMemory {
  label: string;
}

export async function runWorkerRss(options: WorkerRssOptions, cleanups: CleanupStack): Promise<SectionResult> {
  printHeading(`3. Worker memory: idle, after ${options.jobs} jobs × ${options.rounds}, idle again`);
  const loadBefore = loadAverage();
  const redis = await startPrivateRedis(cleanups, options.durableRedis);
  const fake = await FakeVirshHost.create();
  cleanups.defer('fake virsh host', () => fake.dispose());
  const fakeEnv = { ...baseEnv(), ...fake.env };
  const vms: string[] = [];
  for (let index = 0; index < VM_COUNT; index += 1) {
    const { uuid, name } = fake.addDomain({ name: `bench-rss-${index}` });
    vms.push(name);
    // Straight through the fake, before the worker starts: the idle reading sees no job yet.
    const created = await timeCommand(fake.path, ['--connect=qemu:///system', 'snapshot-create-as', `--domain=${uuid}`, `--name=${SNAPSHOT}`, '--disk-only', '--atomic'], fakeEnv);
    if (created.code !== 0) throw new Error(`fake virsh snapshot-create-as failed: ${created.stderr}`);
  }

  const prefix = `{snapbot-bench-${process.pid}}`;
  progress('worker rss: starting the worker process on the fake virsh');
  // The worker trusts the bench's authority key (made here in a fresh checkout); the client signs with it.
  benchAuthority();
  const worker = startNodeProcess(process.env.BENCH_WORKER_MAIN || WORKER_MAIN, {
    ...fakeEnv,
    SNAPBOT_DATA_DIR: join(PROJECT_ROOT, 'data'),
    // As npm start runs it (its V8 flags and malloc setting), unless BENCH_WORKER_NODE_DEFAULTS=1
    // asks for Node's defaults; BENCH_WORKER_NODE_OPTIONS gives other V8 flags to compare.
    ...(process.env.BENCH_WORKER_NODE_DEFAULTS === '1' ? {} : { ...WORKER_ENVIRONMENT, NODE_OPTIONS: WORKER_NODE_FLAGS.join(' ') }),
    ...(process.env.BENCH_WORKER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_WORKER_NODE_OPTIONS } : {}),
    REDIS_URL: redis.url,
    SNAPBOT_PREFIX: prefix,
    HOST_ID,
    LIBVIRT_URI: 'qemu:///system',
    VIRSH_PATH: fake.path,
    LOG_LEVEL: 'info',
  });
  cleanups.defer('worker process', () => worker.stop());
  await worker.waitFor('worker ready', 60_000);
  const readings: MemoryReading[] = [];
  const read = (label: string) => {
    const memory = processMemory(worker.pid);
    readings.push({ label, ...memory });
    return memory.rss;
  };
  await sleep(options.idleBeforeMs);
  const idleRss = read(`idle, ${options.idleBeforeMs / 1000} s after "worker ready"`);

  const core = await SnapbotCore.connect({ signer: benchAuthority(), redisUrl: redis.url, prefix, logger: createLogger('bench-client', 'warn') });
  cleanups.defer('client core', () => core.close());
  const latencies: number[] = [];
  let failures = 0;
  let firstFailure = '';
  let peakDuringRun = 0;
  const afterIdle: number[] = [];
  let jobSeconds = 0;
  for (let round = 1; round <= options.rounds; round += 1) {
    progress(`worker rss: round ${round}: ${options.jobs} list/info jobs, ${options.concurrency} in flight`);
    let next = 0;
    const sampler = setInterval(() => {
      peakDuringRun = Math.max(peakDuringRun, processMemory(worker.pid).rss);
    }, 250);
    const started = performance.now();
    const client = async () => {
      for (let index = next++; index < options.jobs; index = next++) {
        const vm = vms[index % vms.length]!;
        const jobStarted = performance.now();
        try {
          if (index % 2 === 0) await listSnapshots(core, { vm, requestedBy: REQUESTED_BY }, { timeoutMs: 300_000 });
          else await snapshotInfo(core, { vm, name: SNAPSHOT, requestedBy: REQUESTED_BY }, { timeoutMs: 300_000 });
          latencies.push(performance.now() - jobStarted);
        } catch (error) {
          failures += 1;
          firstFailure ||= error instanceof Error ? error.message : String(error);
        }
        if ((index + 1) % 200 === 0) progress(`worker rss: ${index + 1}/${options.jobs} (load ${loadAverage()})`);
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, () => client()));
    jobSeconds += (performance.now() - started) / 1000;
    clearInterval(sampler);
    read(`right after round ${round}`);
    await sleep(options.idleAfterMs);
    afterIdle.push(read(`after round ${round} + ${options.idleAfterMs / 1000} s idle`));
  }

  const keys = await countKeys(redis.admin, prefix);
  const usedMemory = await memoryField(redis.admin, 'used_memory');
  const queueKey = `${prefix}:${hostQueueName(HOST_ID)}`;
  const completed = await redis.admin.zcard(`${queueKey}:completed`);
  const events = await redis.admin.xlen(`${queueKey}:events`);
  const totalJobs = options.jobs * options.rounds;

  printLine(`\nWorker: dist/worker/main.js, defaults (concurrency 4, heartbeat 5 s, inventory every 30 s), ${VM_COUNT} fake VMs with one snapshot each; LOG_LEVEL info.`);
  printLine(`Jobs: list and info alternately, round robin over the VMs, ${options.concurrency} in flight from one client. Load average before: ${loadBefore}, after: ${loadAverage()}.`);
  printTable(
    'Worker resident memory (/proc/PID/status)',
    ['when', 'VmRSS MiB', 'RssAnon MiB', 'RssFile MiB', 'VmHWM (peak so far) MiB'],
    readings.map((reading) => [reading.label, mib(reading.rss), mib(reading.anon), mib(reading.file), mib(reading.hwm)]),
  );
  printLine(`Highest VmRSS sampled during the runs (every 250 ms): ${mib(peakDuringRun)} MiB.`);
  printTable(`Job latency seen by the client (${totalJobs} jobs in ${jobSeconds.toFixed(0)} s, ${(totalJobs / jobSeconds).toFixed(1)} jobs/s, ${failures} failed)`, DISTRIBUTION_HEADERS, [
    distributionRow('list / info, end to end', summarize(latencies)),
  ]);
  if (failures > 0) printLine(`First failure: ${firstFailure}`);
  printTable('Redis after the runs', ['figure', 'value'], [
    ['used_memory', `${mib(usedMemory)} MiB (${usedMemory} bytes)`],
    ['keys (DBSIZE)', String(await redis.admin.dbsize())],
    ...[...keys.entries()].map(([kind, count]) => [`  keys: ${kind}`, String(count)]),
    ['completed jobs kept (ZCARD …:completed)', String(completed)],
    ['events stream length (XLEN …:events)', String(events)],
  ]);

  const finalRss = afterIdle[afterIdle.length - 1] ?? Number.NaN;
  const growth = finalRss - idleRss;
  return {
    section: '3. worker memory',
    checks: [
      { what: 'worker VmRSS idle', target: `≤ ${mib(IDLE_RSS_TARGET_BYTES)} MiB`, measured: `${mib(idleRss)} MiB`, met: idleRss <= IDLE_RSS_TARGET_BYTES },
      {
        what: `VmRSS growth: after ${totalJobs} jobs + ${options.idleAfterMs / 1000} s idle vs idle`,
        target: `none (≤ ${mib(GROWTH_TOLERANCE_BYTES)} MiB)`,
        measured: `${growth >= 0 ? '+' : ''}${mib(growth)} MiB (${mib(finalRss)} MiB)`,
        met: growth <= GROWTH_TOLERANCE_BYTES,
      },
      { what: `Redis used_memory after ${totalJobs} jobs`, target: 'no target', measured: `${mib(usedMemory)} MiB`, met: null },
      { what: 'Redis keys after the runs', target: 'bounded by retention', measured: `${[...keys.values()].reduce((a, b) => a + b, 0)}`, met: null },
    ],
  };
}

/** Keys by kind: one hash per retained job, and BullMQ's per-queue bookkeeping keys by name. */
async function countKeys(admin: Redis, prefix: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const jobKey = /:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(:.+)?$/;
  let cursor = '0';
  do {
    const [nextCursor, keys] = await admin.scan(cursor, 'COUNT', 1000);
    cursor = nextCursor;
    for (const key of keys) {
      const match = jobKey.exec(key);
      const kind = match ? `job${match[1] ?? ''} (one per kept job)` : key.startsWith(prefix) ? key.slice(prefix.length) : key;
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }
  } while (cursor !== '0');
  return new Map([...counts.entries()].sort((a, b) => b[1] - a[1]));
}
