import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SnapbotCore } from '../../bot/core/core.js';
import { listHosts } from '../../bot/core/hosts.js';
import { createLogger } from '../../shared/logger.js';
import type { SnapshotMode } from '../../shared/jobs.js';
import { createTinyDomain, destroyTinyDomain, LIBVIRT_E2E_URI, type TinyDomain } from '../../test/e2e/helpers/libvirt-host.js';
import type { CleanupStack } from './cleanup-stack.js';
import { startPrivateRedis } from './private-redis.js';
import { baseEnv, loadAverage, PROJECT_ROOT, SNAPCTL_MAIN, startNodeProcess, timeCommand, WORKER_MAIN, type TimedRun } from './processes.js';
import { printHeading, printLine, printTable, progress, type SectionResult } from './report.js';
import { ms, summarize } from './stats.js';
import { benchAuthority } from './processes.js';

/**
 * Section 2: `snapctl create` end to end on the real libvirt + QEMU, against
 * `virsh snapshot-create-as` alone, for disk-only and full snapshots. The worker and the
 * control process are the real entry points (dist/worker/main.js, dist/bot/main.js) as
 * their own processes; snapctl is started fresh for every snapshot, as an operator or a
 * cron job would, and sends its signed request to the control process, which signs the
 * job for the worker.
 */

/** `npm run bot`: without DISCORD_TOKEN it serves snapctl only. */
const CONTROL_MAIN = join(PROJECT_ROOT, 'dist', 'bot', 'main.js');
/**
 * The checkout's data directory, given to every child (they run outside the checkout):
 * the control process signs with its authority.key, the worker trusts authority.key.pub,
 * and snapctl signs with its operator.key, which the control process (no policy file)
 * trusts as the local administrator.
 */
const DATA_DIR = join(PROJECT_ROOT, 'data');

export interface SnapctlWallTimeOptions {
  runs: number;
  durableRedis: boolean;
}

const HOST_ID = 'bench-kvm';
const MODES: readonly SnapshotMode[] = ['disk-only', 'full'];

interface ModeFigures {
  mode: SnapshotMode;
  snapctl: number[];
  virsh: number[];
  /** The worker's own durationMs from the result: resolving the VM, checks, virsh calls. */
  job: number[];
  /** snapctl --help and snapctl create stopped at its config check, timed after each pair: the breakdown's start-up parts. */
  help: number[];
  load: number[];
}

/** Median and p90 columns. */
function medianRow(label: string, values: readonly number[]): string[] {
  const distribution = summarize(values);
  return [label, String(distribution.count), ms(distribution.p50), ms(distribution.p90), ms(distribution.min), ms(distribution.max)];
}

const MEDIAN_HEADERS = ['', 'n', 'median ms', 'p90 ms', 'min ms', 'max ms'];

/**
 * The median of a[i] / b[i]: each pair was measured back to back, so a drift in the
 * machine's speed (other work on its 2 cores) cancels out, as it does not in a ratio of
 * two medians.
 */
function pairedRatio(a: readonly number[], b: readonly number[]): number {
  return summarize(a.map((value, index) => value / b[index]!)).p50;
}

function describeFailure(what: string, run: TimedRun): Error {
  return new Error(`${what} exited ${run.code}:\n${run.stdout}${run.stderr}`);
}

export async function runSnapctlWallTime(options: SnapctlWallTimeOptions, cleanups: CleanupStack): Promise<SectionResult> {
  printHeading(`2. snapctl create on real libvirt vs virsh snapshot-create-as alone (${options.runs} runs per mode)`);
  const loadBefore = loadAverage();

  // ensureLibvirt() finds scripts/libvirt-up.sh relative to its own module, which is
  // wrong once compiled into dist/test/: run the same script from the checkout instead.
  progress('snapctl: bringing libvirt up (scripts/libvirt-up.sh)');
  const up = await timeCommand('bash', [join(PROJECT_ROOT, 'scripts', 'libvirt-up.sh')], { ...baseEnv() }, 900_000);
  if (up.code !== 0) throw describeFailure('scripts/libvirt-up.sh', up);
  printLine(up.stdout.trim());

  const domains = new Map<SnapshotMode, TinyDomain>();
  for (const mode of MODES) {
    const name = `snapbot-bench-${mode}-${process.pid}`;
    progress(`snapctl: defining and starting tiny domain ${name}`);
    const domain = await createTinyDomain(name, { start: true });
    cleanups.defer(`domain ${name}`, () => destroyTinyDomain(domain.uuid));
    domains.set(mode, domain);
  }

  const redis = await startPrivateRedis(cleanups, options.durableRedis);
  const prefix = `{snapbot-bench-${process.pid}}`;
  const clientEnv = { ...baseEnv(), REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix, SNAPBOT_DATA_DIR: DATA_DIR, LOG_LEVEL: 'warn' };
  // The control process makes its key on start, but the worker starts first and needs the
  // public half: make it now in a fresh checkout.
  benchAuthority();
  progress('snapctl: starting the worker (dist/worker/main.js) on qemu:///system');
  const worker = startNodeProcess(WORKER_MAIN, {
    ...baseEnv(),
    REDIS_URL: redis.url,
    SNAPBOT_PREFIX: prefix,
    SNAPBOT_DATA_DIR: DATA_DIR,
    HOST_ID,
    LIBVIRT_URI: LIBVIRT_E2E_URI,
    LOG_LEVEL: 'info',
  });
  cleanups.defer('worker process', () => worker.stop());
  await worker.waitFor('worker ready', 120_000);
  progress('snapctl: starting the control process (dist/bot/main.js, snapctl only)');
  const control = startNodeProcess(CONTROL_MAIN, { ...baseEnv(), REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix, SNAPBOT_DATA_DIR: DATA_DIR, LOG_LEVEL: 'info' });
  cleanups.defer('control process', () => control.stop());
  await control.waitFor('control process ready', 120_000);

  const virshEnv = { ...baseEnv(), LC_ALL: 'C' };
  const anyDomain = domains.get('disk-only')!;
  const startup = { node: [] as number[], help: [] as number[], hosts: [] as number[], virshQuery: [] as number[] };
  progress('snapctl: start-up baselines');
  const timeNode = async () => startup.node.push((await timeCommand(process.execPath, ['-e', ''], baseEnv())).wallMs);
  const timeHelp = async () => {
    const help = await timeCommand(process.execPath, [SNAPCTL_MAIN, '--help'], clientEnv);
    if (help.code !== 0) throw describeFailure('snapctl --help', help);
    startup.help.push(help.wallMs);
  };
  // Untimed warm-up of both (the file cache), then pairs in alternating order.
  await timeCommand(process.execPath, ['-e', ''], baseEnv());
  await timeCommand(process.execPath, [SNAPCTL_MAIN, '--help'], clientEnv);
  for (let index = 0; index < options.runs; index += 1) {
    if (index % 2 === 0) {
      await timeNode();
      await timeHelp();
    } else {
      await timeHelp();
      await timeNode();
    }
    const hosts = await timeCommand(process.execPath, [SNAPCTL_MAIN, 'hosts', '--json'], clientEnv);
    if (hosts.code !== 0) throw describeFailure('snapctl hosts', hosts);
    startup.hosts.push(hosts.wallMs);
    const query = await timeCommand('virsh', ['-c', LIBVIRT_E2E_URI, 'domname', `--domain=${anyDomain.uuid}`], virshEnv);
    if (query.code !== 0) throw describeFailure('virsh domname', query);
    startup.virshQuery.push(query.wallMs);
  }

  const figures: ModeFigures[] = [];
  for (const mode of MODES) {
    const domain = domains.get(mode)!;
    const runSnapctl = async (name: string) => {
      const run = await timeCommand(process.execPath, [SNAPCTL_MAIN, 'create', '--vm', domain.name, '--name', name, '--mode', mode, '--json'], clientEnv);
      const line = run.stdout.trim().split('\n').pop() ?? '';
      let body: { ok?: unknown; durationMs?: unknown } = {};
      try {
        body = JSON.parse(line) as typeof body;
      } catch {
        throw describeFailure(`snapctl create ${name}`, run);
      }
      if (run.code !== 0 || body.ok !== true) throw describeFailure(`snapctl create ${name}`, run);
      return { wallMs: run.wallMs, jobMs: typeof body.durationMs === 'number' ? body.durationMs : Number.NaN };
    };
    const runVirsh = async (name: string) => {
      const args = ['-c', LIBVIRT_E2E_URI, 'snapshot-create-as', `--domain=${domain.uuid}`, `--name=${name}`];
      if (mode === 'disk-only') args.push('--disk-only', '--atomic');
      const run = await timeCommand('virsh', args, virshEnv);
      if (run.code !== 0) throw describeFailure(`virsh snapshot-create-as ${name}`, run);
      return run.wallMs;
    };

    // The start-up parts of a create, measured in the same moments as the creates (a busy
    // spell during the baselines would skew the breakdown): --help, and create with a
    // REDIS_URL whose port is out of range, which stops at the configuration check right
    // after loading create's modules, before any connection.
    const timeStartupParts = async (into: ModeFigures) => {
      const help = await timeCommand(process.execPath, [SNAPCTL_MAIN, '--help'], clientEnv);
      if (help.code !== 0) throw describeFailure('snapctl --help', help);
      into.help.push(help.wallMs);
      const load = await timeCommand(process.execPath, [SNAPCTL_MAIN, 'create', '--vm', domain.name, '--json'], { ...clientEnv, REDIS_URL: 'redis://127.0.0.1:99999' });
      if (load.code !== 2) throw describeFailure('snapctl create with REDIS_URL port 99999 (expected to stop with exit 2)', load);
      into.load.push(load.wallMs);
    };

    progress(`snapctl: ${mode}: warm-up, then ${options.runs} snapctl + ${options.runs} virsh creates`);
    await runSnapctl('bench-snapctl-warm-up');
    await runVirsh('bench-virsh-warm-up');
    const modeFigures: ModeFigures = { mode, snapctl: [], virsh: [], job: [], help: [], load: [] };
    for (let index = 1; index <= options.runs; index += 1) {
      // Alternate the order, so a growing snapshot chain or a busy moment hits both alike.
      if (index % 2 === 1) {
        const snapctl = await runSnapctl(`bench-snapctl-${index}`);
        modeFigures.snapctl.push(snapctl.wallMs);
        modeFigures.job.push(snapctl.jobMs);
        modeFigures.virsh.push(await runVirsh(`bench-virsh-${index}`));
      } else {
        modeFigures.virsh.push(await runVirsh(`bench-virsh-${index}`));
        const snapctl = await runSnapctl(`bench-snapctl-${index}`);
        modeFigures.snapctl.push(snapctl.wallMs);
        modeFigures.job.push(snapctl.jobMs);
      }
      await timeStartupParts(modeFigures);
    }
    figures.push(modeFigures);
  }

  printLine(`\nlibvirt ${LIBVIRT_E2E_URI}; tiny running domains (64 MiB, 1 vCPU, qcow2 vda; TCG without /dev/kvm); worker and control processes, Redis ${redis.durable ? 'AOF always' : 'no persistence'} on port ${redis.port}.`);
  printLine(`Load average before: ${loadBefore}, after: ${loadAverage()}.`);
  printTable('Start-up baselines', MEDIAN_HEADERS, [
    medianRow('node -e "" (bare node start-up)', startup.node),
    medianRow('snapctl --help (node + snapctl\'s entry: commander, no command code)', startup.help),
    medianRow('snapctl hosts --json (+ its modules, connect, read heartbeats and queue depths, close)', startup.hosts),
    medianRow('virsh domname (one virsh query on this libvirt)', startup.virshQuery),
  ]);
  const checks: SectionResult['checks'] = [];
  const helpRatio = pairedRatio(startup.help, startup.node);
  checks.push({
    what: 'snapctl --help / node -e "" (wall, median of pair ratios)',
    target: '≤ 3×',
    measured: `${helpRatio.toFixed(2)}× (${ms(summarize(startup.help).p50)} / ${ms(summarize(startup.node).p50)} ms)`,
    met: helpRatio <= 3,
  });
  for (const { mode, snapctl, virsh, job, help, load } of figures) {
    const snapctlMedian = summarize(snapctl).p50;
    const virshMedian = summarize(virsh).p50;
    const jobMedian = summarize(job).p50;
    const helpMedian = summarize(help).p50;
    const createLoadMedian = summarize(load).p50;
    printTable(`create --mode ${mode}`, MEDIAN_HEADERS, [
      medianRow('snapctl create … --json (end to end)', snapctl),
      medianRow('virsh snapshot-create-as alone', virsh),
      medianRow("  worker's job time (result durationMs)", job),
      medianRow('snapctl --help (node + snapctl\'s entry), after each pair', help),
      medianRow('snapctl create stopped at its config check (+ create\'s modules), after each pair', load),
    ]);
    printTable(`create --mode ${mode}: where the snapctl time goes (medians)`, ['part', 'ms'], [
      ['node start-up + snapctl\'s entry (snapctl --help)', ms(helpMedian)],
      ["loading create's modules (BullMQ, ioredis, zod…), reading the configuration", ms(createLoadMedian - helpMedian)],
      ['connect, signed request to the control process, its signed job to the worker, queues both ways, result, exit (the rest)', ms(snapctlMedian - createLoadMedian - jobMedian)],
      ["worker's job: resolve VM, checks, virsh calls", ms(jobMedian)],
      ['  of which virsh snapshot-create-as (alone, median)', ms(virshMedian)],
      ['  of which the other virsh calls and worker code', ms(jobMedian - virshMedian)],
      ['snapctl create total (median)', ms(snapctlMedian)],
    ]);
    // The target is for disk-only; a full snapshot (memory) is shown for comparison.
    const createRatio = pairedRatio(snapctl, virsh);
    checks.push({
      what: `snapctl create --mode ${mode} / virsh snapshot-create-as${mode === 'disk-only' ? ' --disk-only --atomic' : ''} (median of pair ratios)`,
      target: mode === 'disk-only' ? '≤ 3×' : 'no target',
      measured: `${createRatio.toFixed(2)}× (${ms(snapctlMedian)} / ${ms(virshMedian)} ms)`,
      met: mode === 'disk-only' ? createRatio <= 3 : null,
    });
    // The worker's own part (its result's durationMs: resolve the VM, checks, the create and
    // its read-back) against virsh alone, each pair back to back.
    const jobRatio = pairedRatio(job, virsh);
    checks.push({
      what: `worker job time, create --mode ${mode} / virsh snapshot-create-as alone (median of pair ratios)`,
      target: mode === 'disk-only' ? '≤ 1.3×' : 'no target',
      measured: `${jobRatio.toFixed(2)}× (${ms(jobMedian)} / ${ms(virshMedian)} ms)`,
      met: mode === 'disk-only' ? jobRatio <= 1.3 : null,
    });
    checks.push({
      what: `snapctl create ${mode}: median / p90`,
      target: 'no target',
      measured: `${ms(snapctlMedian)} / ${ms(summarize(snapctl).p90)} ms`,
      met: null,
    });
    checks.push({
      what: `virsh snapshot-create-as ${mode} alone: median / p90`,
      target: 'no target',
      measured: `${ms(virshMedian)} / ${ms(summarize(virsh).p90)} ms`,
      met: null,
    });
  }
  const steps = await timeClientSteps(redis.url, prefix, options.runs);
  printTable("snapctl's client steps, timed in this process against the same Redis (fresh connections each time)", MEDIAN_HEADERS, [
    medianRow('SnapbotCore.connect (TCP connect + PING)', steps.connect),
    medianRow('listHosts (read + parse heartbeats)', steps.listHosts),
    medianRow('eventsFor: QueueEvents ready (second connection)', steps.events),
    medianRow('close (QueueEvents, Queue, quit)', steps.close),
  ]);
  return { section: '2. snapctl on real virsh', checks };
}

/** The Redis steps every snapctl process takes besides its job, one fresh client at a time. */
async function timeClientSteps(redisUrl: string, prefix: string, runs: number) {
  const steps = { connect: [] as number[], listHosts: [] as number[], events: [] as number[], close: [] as number[] };
  for (let index = 0; index < runs; index += 1) {
    const started = performance.now();
    const core = await SnapbotCore.connect({ signer: benchAuthority(), redisUrl, prefix, logger: createLogger('bench-client', 'warn') });
    const connected = performance.now();
    await listHosts(core);
    const listed = performance.now();
    await core.eventsFor(HOST_ID);
    const listening = performance.now();
    await core.close();
    const closed = performance.now();
    steps.connect.push(connected - started);
    steps.listHosts.push(listed - connected);
    steps.events.push(listening - listed);
    steps.close.push(closed - listening);
  }
  return steps;
}
