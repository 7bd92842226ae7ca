import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { performance } from 'node:perf_hooks';
import { SnapbotCore } from '../../bot/core/core.js';
import { listHosts } from '../../bot/core/hosts.js';
import { createSnapshot, snapshotInfo, type OperationOptions } from '../../bot/core/snapshots.js';
import { parseEnv, workerEnvSchema } from '../../shared/config.js';
import { createLogger } from '../../shared/logger.js';
import { FakeVirshHost } from '../../test/fixtures/fake-virsh-host.js';
import { VirshHypervisor } from '../../worker/hypervisor/virsh.js';
import { createVirshRunner, type VirshRunner } from '../../worker/hypervisor/virsh-runner.js';
import { startWorker } from '../../worker/run-worker.js';
import type { CleanupStack } from './cleanup-stack.js';
import { commandCounts, startPrivateRedis } from './private-redis.js';
import { baseEnv, loadAverage, sleep, timeCommand } from './processes.js';
import { printHeading, printLine, printTable, progress, type SectionResult } from './report.js';
import { DISTRIBUTION_HEADERS, distributionRow, ms, summarize, toSteps, type Distribution } from './stats.js';
import { benchAuthority } from './processes.js';

/**
 * Section 1: what the queue adds. The same operations go once through the client API
 * (SnapbotCore + bot/core) → Redis (BullMQ) → the worker (startWorker, in this process)
 * → the fake virsh, and once as the bare virsh calls the worker made for one such
 * operation, replayed with the same runner and the same parallelism. Queued and direct
 * runs alternate, so background load on the machine hits both alike.
 */

export type OverheadOperation = 'info' | 'create';

export interface QueueOverheadOptions {
  ops: number;
  operation: OverheadOperation;
  warmup: number;
  durableRedis: boolean;
}

/** Issue 13: queue overhead measured inside, AOF on (it was 10 / 50 ms before). */
export const OVERHEAD_P50_TARGET_MS = 3;
export const OVERHEAD_P99_TARGET_MS = 15;

const HOST_ID = 'bench-fake';
const BASE_SNAPSHOT = 'bench-base';
/**
 * Creates rotate to a fresh VM after this many pairs: every disk-only snapshot adds an
 * overlay to the VM's chain, and past ~95 overlays the worker cannot read
 * snapshot-dumpxml any more (its XML parser's nesting limit), real libvirt and fake alike.
 */
const CREATE_PAIRS_PER_VM = 40;
/** The snapshot name of the calibration create; replays substitute their own name for it. */
const CALIBRATION_NAME = 'bench-calibration';
const REQUESTED_BY = 'bench:queue-overhead';
const OPERATION_TIMEOUT_MS = 120_000;
const VIRSH_TIMEOUT_MS = 60_000;

interface VirshCallRecord {
  args: readonly string[];
  start: number;
  end: number;
  exitCode: number | undefined;
}

/** Wraps the worker's real virsh runner and notes when each call started and ended. */
class RecordingRunner {
  private records: VirshCallRecord[] = [];
  private running = 0;
  private lastActivity = 0;

  constructor(private readonly inner: VirshRunner) {}

  readonly run: VirshRunner = async (request) => {
    const start = performance.now();
    this.running += 1;
    this.lastActivity = start;
    try {
      const result = await this.inner(request);
      this.records.push({ args: request.args, start, end: performance.now(), exitCode: result.exitCode });
      return result;
    } finally {
      this.running -= 1;
      this.lastActivity = performance.now();
    }
  };

  get inFlight(): number {
    return this.running;
  }

  /** Hands over the calls recorded so far and forgets them. */
  take(): VirshCallRecord[] {
    const taken = this.records;
    this.records = [];
    return taken;
  }

  /** Waits until no virsh call has run for `quietMs` (the worker's background refresh after a change). */
  async waitQuiet(quietMs = 50): Promise<void> {
    while (this.running > 0 || performance.now() - this.lastActivity < quietMs) await sleep(10);
  }
}


/** Wall time during which at least one virsh process ran. */
function virshBusyMs(steps: readonly VirshCallRecord[][]): number {
  return steps.reduce((total, step) => total + Math.max(...step.map((call) => call.end)) - Math.min(...step.map((call) => call.start)), 0);
}

/** The part of a recorded call that says what it did: subcommand and its options, without --connect. */
function describeCall(args: readonly string[]): string {
  // A command line of several commands (worker/hypervisor/virsh-script.ts): name them.
  const script = args.length === 2 && args[1]!.includes('\n') ? args[1]! : null;
  if (script !== null) {
    const names = script.split('\n').flatMap((line) => /^'?([a-z-]+)'?(?: |$)/.exec(line)?.[1] ?? []).filter((name) => name !== 'echo');
    return `[${names.join(' + ')} in one process]`;
  }
  return args
    .filter((arg) => !arg.startsWith('--connect='))
    .map((arg) => (arg.startsWith('--description=') ? '--description=…' : arg.replace(/--domain=[0-9a-f-]{36}/, '--domain=UUID')))
    .join(' ');
}

interface ReplayCall {
  args: string[];
  exitCode: number | undefined;
}

/** An operation as the worker ran it: steps of virsh calls (calls in one step ran in parallel). */
interface CallTemplate {
  steps: ReplayCall[][];
  /** Calls the worker started after answering (inventory refresh after a change); not replayed. */
  background: string[];
}

/** The calibration's argv with its VM UUID and snapshot name replaced by another pair's. */
/** The target: the create itself and at most one read. */
const CREATE_PROCESS_TARGET = 2;

function substitute(args: readonly string[], replacements: ReadonlyMap<string, string>): string[] {
  return args.map((arg) => [...replacements].reduce((result, [from, to]) => result.split(from).join(to), arg));
}

interface QueuedSample {
  totalMs: number;
  /** Client: validate, read heartbeats, add the job (until queue.add resolved). */
  clientMs: number;
  /** From queue.add resolving to the worker's first virsh call. */
  pickupMs: number;
  /** Worker time between virsh steps (progress updates, lock, parsing). */
  gapsMs: number;
  /** From the worker's last virsh call ending to the client holding the result. */
  returnMs: number;
  virshMs: number;
  calls: number;
}

export async function runQueueOverhead(options: QueueOverheadOptions, cleanups: CleanupStack): Promise<SectionResult> {
  printHeading(`1. Queue overhead: ${options.ops} × ${options.operation} through Redis vs the same virsh calls directly`);
  const loadBefore = loadAverage();

  const redis = await startPrivateRedis(cleanups, options.durableRedis);
  const fake = await FakeVirshHost.create();
  cleanups.defer('fake virsh host', () => fake.dispose());
  // One VM for info; for create, enough that no VM's overlay chain gets long (see CREATE_PAIRS_PER_VM).
  const vmCount = options.operation === 'info' ? 1 : Math.ceil((options.ops + options.warmup) / CREATE_PAIRS_PER_VM) + 1;
  const vms = Array.from({ length: vmCount }, (_, index) => fake.addDomain({ name: `bench-web-${String(index).padStart(2, '0')}` }));
  // Each VM starts with one snapshot, made straight through the fake, so that every
  // operation sees a current snapshot, as the calibration did.
  for (const vm of vms) {
    const created = await timeCommand(
      fake.path,
      ['--connect=qemu:///system', 'snapshot-create-as', `--domain=${vm.uuid}`, `--name=${BASE_SNAPSHOT}`, '--disk-only', '--atomic'],
      { ...baseEnv(), ...fake.env },
    );
    if (created.code !== 0) throw new Error(`fake virsh snapshot-create-as failed: ${created.stderr}`);
  }
  const calibrationVm = vms[0]!;
  // The worker's runner passes the bench's environment on to virsh; the fake finds its state through it.
  process.env.FAKE_VIRSH_STATE = fake.stateDir;
  cleanups.defer('FAKE_VIRSH_STATE', () => {
    delete process.env.FAKE_VIRSH_STATE;
  });

  const prefix = `{snapbot-bench-${process.pid}}`;
  const config = parseEnv(workerEnvSchema, {
    REDIS_URL: redis.url,
    SNAPBOT_PREFIX: prefix,
    HOST_ID,
    LIBVIRT_URI: 'qemu:///system',
    VIRSH_PATH: fake.path,
    LOG_LEVEL: 'warn',
    // The periodic inventory re-read (5 virsh calls per VM every 30 s) would land inside
    // measured operations; it is not queue overhead, so it is pushed out of the run.
    INVENTORY_INTERVAL_MS: String(24 * 3600 * 1000),
  });
  // 'error': the worker logs a warning for every virsh call that exits 1, and create's
  // idempotency probe expects one per operation ("no snapshot with matching name").
  const logger = createLogger('bench-worker', process.env.BENCH_WORKER_LOG ?? 'error');
  const recorder = new RecordingRunner(createVirshRunner(fake.path));
  const hypervisor = new VirshHypervisor({
    virshPath: fake.path,
    uri: config.LIBVIRT_URI,
    timeoutMs: config.VIRSH_TIMEOUT_MS,
    queryTimeoutMs: config.VIRSH_QUERY_TIMEOUT_MS,
    logger,
    hostId: HOST_ID,
    runner: recorder.run,
  });
  const worker = await startWorker(config, hypervisor, logger);
  cleanups.defer('in-process worker', () => worker.close());
  const core = await SnapbotCore.connect({ signer: benchAuthority(), redisUrl: redis.url, prefix, logger: createLogger('bench-client', 'warn') });
  cleanups.defer('client core', () => core.close());
  await recorder.waitQuiet();
  recorder.take();

  const directRunner = createVirshRunner(fake.path);
  const operationOptions = (onQueued: () => void): OperationOptions => ({ timeoutMs: OPERATION_TIMEOUT_MS, onQueued });

  /** Runs one operation through the queue; the records are the virsh calls it caused. */
  const runQueued = async (vm: string, name: string): Promise<{ sample: QueuedSample; critical: VirshCallRecord[]; background: VirshCallRecord[] }> => {
    let queuedAt = Number.NaN;
    const started = performance.now();
    const opts = operationOptions(() => {
      queuedAt = performance.now();
    });
    if (options.operation === 'info') await snapshotInfo(core, { vm, name, requestedBy: REQUESTED_BY }, opts);
    else await createSnapshot(core, { vm, name, mode: 'disk-only', requestedBy: REQUESTED_BY }, opts);
    const finished = performance.now();
    // A change makes the worker re-read the VM after it answered; let that finish outside the measurement.
    if (recorder.inFlight > 0) await recorder.waitQuiet();
    const records = recorder.take();
    // Every call of the job itself ended before the worker answered; later ones are background.
    const critical = records.filter((record) => record.start >= started && record.end <= finished);
    const background = records.filter((record) => record.end > finished);
    const steps = toSteps(critical);
    const virshMs = virshBusyMs(steps);
    const firstStart = Math.min(...critical.map((record) => record.start));
    const lastEnd = Math.max(...critical.map((record) => record.end));
    const totalMs = finished - started;
    const clientMs = queuedAt - started;
    const pickupMs = firstStart - queuedAt;
    const returnMs = finished - lastEnd;
    return {
      sample: { totalMs, clientMs, pickupMs, returnMs, gapsMs: totalMs - clientMs - pickupMs - returnMs - virshMs, virshMs, calls: critical.length },
      critical,
      background,
    };
  };

  progress('queue overhead: calibrating');
  // Calibration: one operation of each kind, whose virsh calls (from the fake's own call
  // log) become the direct replay.
  const createTemplate = await runCalibration(async () => {
    await createSnapshot(core, { vm: calibrationVm.name, name: CALIBRATION_NAME, mode: 'disk-only', requestedBy: REQUESTED_BY }, operationOptions(() => undefined));
  });
  const infoTemplate = await runCalibration(async () => {
    await snapshotInfo(core, { vm: calibrationVm.name, name: BASE_SNAPSHOT, requestedBy: REQUESTED_BY }, operationOptions(() => undefined));
  });

  async function runCalibration(operation: () => Promise<void>): Promise<CallTemplate> {
    await recorder.waitQuiet();
    recorder.take();
    fake.clearCalls();
    const started = performance.now();
    await operation();
    const finished = performance.now();
    await recorder.waitQuiet();
    const records = recorder.take();
    // Processes, not commands: a virsh process may run several commands (worker/hypervisor/virsh-script.ts).
    const logged = fake.processes().map((call) => JSON.stringify(call.argv));
    const steps = toSteps(records.filter((record) => record.start >= started && record.end <= finished));
    for (const record of records) {
      if (!logged.includes(JSON.stringify(record.args))) throw new Error(`the fake's call log lacks ${describeCall(record.args)}`);
    }
    if (logged.length !== records.length) {
      throw new Error(`the fake logged ${logged.length} calls but the worker ran ${records.length}`);
    }
    return {
      steps: steps.map((step) => step.map((record) => ({ args: [...record.args], exitCode: record.exitCode }))),
      background: records.filter((record) => record.end > finished).map((record) => describeCall(record.args)),
    };
  }

  printCallSequence('info', infoTemplate);
  printCallSequence('create --mode disk-only', createTemplate);

  const template = options.operation === 'info' ? infoTemplate : createTemplate;
  let replayMismatches = 0;
  const runDirect = async (vm: { uuid: string }, name: string): Promise<number> => {
    const replacements = new Map(options.operation === 'info' ? [] : [[calibrationVm.uuid, vm.uuid], [CALIBRATION_NAME, name]]);
    const started = performance.now();
    for (const step of template.steps) {
      const results = await Promise.all(
        step.map((call) => directRunner({ args: substitute(call.args, replacements), timeoutMs: VIRSH_TIMEOUT_MS })),
      );
      results.forEach((result, index) => {
        if (result.exitCode !== step[index]!.exitCode) replayMismatches += 1;
      });
    }
    return performance.now() - started;
  };

  // Pair n (warm-ups first) works on VM vmFor(n) with snapshots bench-q-n (queued) and bench-d-n (direct).
  const vmFor = (pair: number) => (options.operation === 'info' ? calibrationVm : vms[1 + Math.floor(pair / CREATE_PAIRS_PER_VM)]!);
  const nameFor = (kind: 'q' | 'd', pair: number) => (options.operation === 'info' ? BASE_SNAPSHOT : `bench-${kind}-${pair}`);
  const runPair = async (pair: number, queuedFirst: boolean) => {
    const vm = vmFor(pair);
    if (queuedFirst) {
      const { sample } = await runQueued(vm.name, nameFor('q', pair));
      return { sample, directMs: await runDirect(vm, nameFor('d', pair)) };
    }
    const directMs = await runDirect(vm, nameFor('d', pair));
    return { sample: (await runQueued(vm.name, nameFor('q', pair))).sample, directMs };
  };
  progress(`queue overhead: ${options.warmup} warm-up pairs`);
  for (let index = 0; index < options.warmup; index += 1) {
    await runPair(index, true);
  }

  await redis.admin.config('RESETSTAT');
  const runStarted = performance.now();
  const queued: QueuedSample[] = [];
  const direct: number[] = [];
  const paired: number[] = [];
  let callCountMismatches = 0;
  const expectedCalls = template.steps.flat().length;
  for (let index = 0; index < options.ops; index += 1) {
    // Alternate which goes first, so neither always runs on a machine warmed by the other.
    const { sample, directMs } = await runPair(options.warmup + index, index % 2 === 0);
    if (sample.calls !== expectedCalls) callCountMismatches += 1;
    queued.push(sample);
    direct.push(directMs);
    paired.push(sample.totalMs - directMs);
    if ((index + 1) % 50 === 0) progress(`queue overhead: ${index + 1}/${options.ops} (load ${loadAverage()})`);
  }
  const runSeconds = (performance.now() - runStarted) / 1000;
  const commands = await commandCounts(redis.admin);
  const pieces = await timeClientPieces(core, redis.admin);

  const queuedTotal = summarize(queued.map((sample) => sample.totalMs));
  const directTotal = summarize(direct);
  const overhead = summarize(paired);
  const inside = summarize(queued.map((sample) => sample.totalMs - sample.virshMs));
  printLine(
    `\nRedis: ${redis.durable ? 'AOF, appendfsync always (as npm start runs it)' : 'no persistence'}, loopback port ${redis.port}; ` +
      `worker in this process (startWorker), concurrency ${config.WORKER_CONCURRENCY}; fake virsh ${fake.path}`,
  );
  printLine(`Operations run one at a time; ${options.warmup} warm-up pairs not counted. Load average before: ${loadBefore}, after: ${loadAverage()}.`);
  printTable(`End to end, per operation (${options.operation}, ${expectedCalls} virsh calls in ${template.steps.length} steps)`, DISTRIBUTION_HEADERS, [
    distributionRow('queued: client API → Redis → worker → virsh → result', queuedTotal),
    distributionRow('direct: the same virsh calls, same parallelism', directTotal),
    distributionRow('overhead: queued − direct, same op pair', overhead),
    [
      'overhead: percentile of queued − percentile of direct',
      '',
      ms(queuedTotal.p50 - directTotal.p50),
      ms(queuedTotal.p90 - directTotal.p90),
      ms(queuedTotal.p99 - directTotal.p99),
      ms(queuedTotal.max - directTotal.max),
    ],
  ]);
  printTable('Where the queued time goes (measured inside the one process: client, worker and virsh runner share a clock)', DISTRIBUTION_HEADERS, [
    distributionRow('virsh processes running (wall)', summarize(queued.map((sample) => sample.virshMs))),
    distributionRow('everything else = overhead measured inside', inside),
    distributionRow('  client: validate, read heartbeats, queue.add', summarize(queued.map((sample) => sample.clientMs))),
    distributionRow('  queue.add resolved → first virsh call', summarize(queued.map((sample) => sample.pickupMs))),
    distributionRow('  worker between virsh steps', summarize(queued.map((sample) => sample.gapsMs))),
    distributionRow('  last virsh call → client has the result', summarize(queued.map((sample) => sample.returnMs))),
  ]);
  const addLabel = `queue.add to a queue no worker reads (Lua${redis.durable ? ' + AOF fsync' : ''})`;
  printTable('Pieces of the client side, timed alone after the run: back to back, and each after 50 ms idle', DISTRIBUTION_HEADERS, [
    distributionRow('Redis PING round trip, back to back', pieces.ping.backToBack),
    distributionRow('  after 50 ms idle', pieces.ping.afterIdle),
    distributionRow('listHosts (resolveTarget: read + parse heartbeats), back to back', pieces.listHosts.backToBack),
    distributionRow('  after 50 ms idle', pieces.listHosts.afterIdle),
    distributionRow(`${addLabel}, back to back`, pieces.add.backToBack),
    distributionRow('  after 50 ms idle', pieces.add.afterIdle),
  ]);
  printRedisCommands(commands, options.ops, runSeconds);
  if (callCountMismatches > 0 || replayMismatches > 0) {
    printLine(`Note: ${callCountMismatches} queued operations made a different number of virsh calls than the calibration; ${replayMismatches} replayed calls exited differently.`);
  }

  return {
    section: '1. queue overhead',
    checks: [
      { what: `overhead p50 (queued − direct, ${options.operation})`, target: `≤ ${OVERHEAD_P50_TARGET_MS} ms`, measured: `${ms(overhead.p50)} ms`, met: overhead.p50 <= OVERHEAD_P50_TARGET_MS },
      { what: `overhead p99 (queued − direct, ${options.operation})`, target: `≤ ${OVERHEAD_P99_TARGET_MS} ms`, measured: `${ms(overhead.p99)} ms`, met: overhead.p99 <= OVERHEAD_P99_TARGET_MS },
      { what: 'overhead p50, measured inside (queued − virsh wall)', target: `≤ ${OVERHEAD_P50_TARGET_MS} ms`, measured: `${ms(inside.p50)} ms`, met: inside.p50 <= OVERHEAD_P50_TARGET_MS },
      { what: 'overhead p99, measured inside (queued − virsh wall)', target: `≤ ${OVERHEAD_P99_TARGET_MS} ms`, measured: `${ms(inside.p99)} ms`, met: inside.p99 <= OVERHEAD_P99_TARGET_MS },
      { what: `virsh processes per ${options.operation} job (steps)`, target: '-', measured: `${expectedCalls} (${template.steps.length})`, met: null },
      {
        what: 'virsh processes per disk-only create job',
        target: `≤ ${CREATE_PROCESS_TARGET}`,
        measured: `${createTemplate.steps.flat().length}: ${createTemplate.steps.flat().map((call) => describeCall(call.args)).join(', ')}`,
        met: createTemplate.steps.flat().length <= CREATE_PROCESS_TARGET,
      },
    ],
  };
}

type PieceTimes = { backToBack: Distribution; afterIdle: Distribution };

/**
 * Times the client's Redis steps one by one, to show where its share of the overhead
 * goes: back to back (everything hot), and after 50 ms of idleness, as inside an
 * operation, where every round trip first has to wake the client and Redis up.
 */
async function timeClientPieces(core: SnapbotCore, admin: Redis): Promise<{ ping: PieceTimes; listHosts: PieceTimes; add: PieceTimes }> {
  const timeIt = async (work: () => Promise<unknown>): Promise<PieceTimes> => {
    const backToBack: number[] = [];
    const afterIdle: number[] = [];
    for (let index = 0; index < 200; index += 1) {
      const started = performance.now();
      await work();
      backToBack.push(performance.now() - started);
    }
    for (let index = 0; index < 100; index += 1) {
      await sleep(50);
      const started = performance.now();
      await work();
      afterIdle.push(performance.now() - started);
    }
    return { backToBack: summarize(backToBack), afterIdle: summarize(afterIdle) };
  };
  const ping = await timeIt(() => admin.ping());
  const hosts = await timeIt(() => listHosts(core));
  // A queue of its own, so that no worker runs these jobs; removed afterwards.
  const idle = new Queue('bench-no-worker', { connection: core.redis, prefix: core.prefix });
  try {
    const add = await timeIt(() => idle.add('info', { bench: true }));
    return { ping, listHosts: hosts, add };
  } finally {
    await idle.obliterate({ force: true });
    await idle.close();
  }
}

function printCallSequence(label: string, template: CallTemplate): void {
  const rows = template.steps.map((step, index) => [String(index + 1), step.map((call) => describeCall(call.args) + (call.exitCode === 0 ? '' : ` [exit ${call.exitCode}]`)).join('  ‖  ')]);
  if (template.background.length > 0) rows.push(['after', template.background.join('  ·  ')]);
  printTable(`virsh calls the worker makes for one ${label} (‖ = in parallel; "after" = background, after it answered)`, ['step', 'calls'], rows, 2);
}

function printRedisCommands(commands: Map<string, { calls: number; usec: number }>, ops: number, seconds: number): void {
  const rows = [...commands.entries()]
    .filter(([name]) => name !== 'info' && name !== 'config|resetstat')
    .sort((a, b) => b[1].calls - a[1].calls)
    .map(([name, { calls, usec }]) => [name, (calls / ops).toFixed(2), (usec / ops / 1000).toFixed(3)]);
  const total = rows.reduce((sum, row) => sum + Number(row[1]), 0);
  const totalUsec = [...commands.values()].reduce((sum, { usec }) => sum + usec, 0);
  rows.push(['total', total.toFixed(2), (totalUsec / ops / 1000).toFixed(3)]);
  printTable(
    `Redis commands per queued operation (all clients, INFO commandstats over the ${seconds.toFixed(0)} s run, heartbeats every 5 s included)`,
    ['command', 'calls/op', 'server ms/op'],
    rows,
  );
}
