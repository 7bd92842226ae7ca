#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { CleanupStack } from './cleanup-stack.js';
import { runDiscordBench } from './discord-latency.js';
import { runFleetBench, type FleetWorkerMode } from './fleet.js';
import type { LatencyScope } from './fleet-fake-hosts.js';
import { runQueueOverhead, type OverheadOperation } from './queue-overhead.js';
import { loadAverage } from './processes.js';
import { printLine, printSummary, type SectionResult } from './report.js';
import { runSnapctlWallTime } from './snapctl-wall-time.js';
import { runVirshProcesses } from './virsh-processes.js';
import { runWorkerRss } from './worker-rss.js';

/**
 * `npm run bench`: prints numbers, asserts nothing. Every section starts its own
 * redis-server on a free port and removes whatever it started when it ends (or on Ctrl-C).
 */

const SECTIONS = ['processes', 'overhead', 'snapctl', 'rss', 'discord', 'fleet'] as const;

const USAGE = `usage: npm run bench -- [options]

  --only <sections>     processes, overhead, snapctl, rss, discord, fleet (comma-separated; default: all)
  --inventory-vms <list>  processes: host sizes for the inventory read (default 10,100,1000)
  --ops <n>             overhead: operations to time (default 500)
  --op <info|create>    overhead: the operation (default info)
  --warmup <n>          overhead: untimed warm-up pairs (default 10)
  --runs <n>            snapctl: creates per mode and tool (default 20)
  --jobs <n>            rss: jobs per round (default 5000, issue 13's figure)
  --concurrency <n>     rss: jobs in flight (default 8)
  --rounds <n>          rss: rounds of jobs, each followed by the idle wait (default 1)
  --idle-after <s>      rss: idle wait after each round, seconds (default 30)
  --interactions <n>    discord: slash commands timed to their acknowledgement (default 200)
  --vms <n>             discord: VMs in the inventory for autocomplete (default 10000)
  --progress-seconds <s>  discord: how long the progress-reporting job runs (default 60)
  --fleet-hosts <n>     fleet: simulated hosts, one worker each (default 20)
  --fleet-vms-per-host <n>  fleet: VMs per host (default 50)
  --fleet-concurrency <n>   fleet: WORKER_CONCURRENCY of every worker (default 4)
  --fleet-per-host <n>  fleet: the policy's fleet.perHost, 0 = the worker's limit only (default: the concurrency)
  --fleet-latency-ms <n>    fleet: fake virsh latency (default 100)
  --fleet-latency-on <all|create|both>  fleet: every virsh call sleeps it, only snapshot-create-as, or both variants (default both)
  --fleet-runs <n>      fleet: runs per variant (default 3)
  --fleet-workers <in-process|processes>  fleet: workers in this process or as child processes (default in-process)
  --fleet-max-concurrent <n>  fleet: the policy's fleet.maxConcurrent, 0 = no limit (default hosts × concurrency)
  --no-fleet-control    fleet: skip the control run of one host alone with the same VMs per host
  --no-aof              run Redis without persistence (default: AOF, appendfsync always, as npm start does)
  --help
`;

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new Error(`--${name} expects a positive integer, got ${JSON.stringify(value)}`);
  return parsed;
}

function parseOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      ops: { type: 'string' },
      'inventory-vms': { type: 'string' },
      op: { type: 'string' },
      warmup: { type: 'string' },
      runs: { type: 'string' },
      jobs: { type: 'string' },
      concurrency: { type: 'string' },
      rounds: { type: 'string' },
      'idle-after': { type: 'string' },
      interactions: { type: 'string' },
      vms: { type: 'string' },
      'progress-seconds': { type: 'string' },
      'fleet-hosts': { type: 'string' },
      'fleet-vms-per-host': { type: 'string' },
      'fleet-concurrency': { type: 'string' },
      'fleet-latency-ms': { type: 'string' },
      'fleet-latency-on': { type: 'string' },
      'fleet-runs': { type: 'string' },
      'fleet-workers': { type: 'string' },
      'fleet-max-concurrent': { type: 'string' },
      'fleet-per-host': { type: 'string' },
      'no-fleet-control': { type: 'boolean', default: false },
      'no-aof': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const only = (values.only ?? SECTIONS.join(',')).split(',').map((name) => name.trim());
  for (const name of only) {
    if (!(SECTIONS as readonly string[]).includes(name)) throw new Error(`--only expects ${SECTIONS.join(', ')}; got ${JSON.stringify(name)}`);
  }
  const latencyOn = values['fleet-latency-on'] ?? 'both';
  const scopes: Record<string, LatencyScope[]> = { all: ['all'], create: ['snapshot-create-as'], both: ['all', 'snapshot-create-as'] };
  if (!(latencyOn in scopes)) throw new Error(`--fleet-latency-on expects all, create or both, got ${JSON.stringify(latencyOn)}`);
  const fleetWorkers = values['fleet-workers'] ?? 'in-process';
  if (fleetWorkers !== 'in-process' && fleetWorkers !== 'processes') throw new Error(`--fleet-workers expects in-process or processes, got ${JSON.stringify(fleetWorkers)}`);
  const orNull = (name: 'fleet-max-concurrent' | 'fleet-per-host') => {
    const value = values[name];
    if (value === undefined) return null;
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < 0) throw new Error(`--${name} expects 0 or a positive integer, got ${JSON.stringify(value)}`);
    return parsed;
  };
  const operation = values.op ?? 'info';
  if (operation !== 'info' && operation !== 'create') throw new Error(`--op expects info or create, got ${JSON.stringify(operation)}`);
  return {
    help: values.help,
    sections: SECTIONS.filter((section) => only.includes(section)),
    durableRedis: !values['no-aof'],
    inventorySizes: (values['inventory-vms'] ?? '10,100,1000').split(',').map((size) => positive('inventory-vms', size.trim(), 1)),
    ops: positive('ops', values.ops, 500),
    operation: operation as OverheadOperation,
    warmup: positive('warmup', values.warmup, 10),
    runs: positive('runs', values.runs, 20),
    jobs: positive('jobs', values.jobs, 5000),
    concurrency: positive('concurrency', values.concurrency, 8),
    rounds: positive('rounds', values.rounds, 1),
    idleAfterMs: positive('idle-after', values['idle-after'], 30) * 1000,
    interactions: positive('interactions', values.interactions, 200),
    vms: positive('vms', values.vms, 10_000),
    progressSeconds: positive('progress-seconds', values['progress-seconds'], 60),
    fleet: {
      hosts: positive('fleet-hosts', values['fleet-hosts'], 20),
      vmsPerHost: positive('fleet-vms-per-host', values['fleet-vms-per-host'], 50),
      concurrency: positive('fleet-concurrency', values['fleet-concurrency'], 4),
      latencyMs: positive('fleet-latency-ms', values['fleet-latency-ms'], 100),
      scopes: scopes[latencyOn]!,
      runs: positive('fleet-runs', values['fleet-runs'], 3),
      workers: fleetWorkers as FleetWorkerMode,
      perHost: orNull('fleet-per-host'),
      maxConcurrent: orNull('fleet-max-concurrent'),
      control: !values['no-fleet-control'],
      durableRedis: !values['no-aof'],
    },
  };
}

function machine(): string {
  let distribution = '';
  try {
    distribution = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    /* not Linux */
  }
  const cpu = cpus();
  return `${distribution || 'unknown OS'}, kernel ${release()}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}`;
}

let active: CleanupStack | undefined;

async function main(): Promise<number> {
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const stop = (signal: NodeJS.Signals) => {
    process.stderr.write(`bench: ${signal}: cleaning up\n`);
    void (active?.unwind() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  printLine(`snapbot benchmarks, ${new Date().toISOString()}`);
  printLine(`Machine: ${machine()}; load average ${loadAverage()}`);
  const results: SectionResult[] = [];
  // A crashed section leaves the figures incomplete: say so in the exit status too.
  let failed = false;
  for (const section of options.sections) {
    const cleanups = new CleanupStack();
    active = cleanups;
    try {
      if (section === 'processes') {
        results.push(await runVirshProcesses({ sizes: options.inventorySizes }, cleanups));
      } else if (section === 'overhead') {
        results.push(await runQueueOverhead({ ops: options.ops, operation: options.operation, warmup: options.warmup, durableRedis: options.durableRedis }, cleanups));
      } else if (section === 'snapctl') {
        results.push(await runSnapctlWallTime({ runs: options.runs, durableRedis: options.durableRedis }, cleanups));
      } else if (section === 'fleet') {
        results.push(await runFleetBench(options.fleet, cleanups));
      } else if (section === 'discord') {
        results.push(
          await runDiscordBench(
            { interactions: options.interactions, autocompleteVms: options.vms, autocompletes: 500, progressSeconds: options.progressSeconds, durableRedis: options.durableRedis },
            cleanups,
          ),
        );
      } else {
        results.push(
          await runWorkerRss(
            { jobs: options.jobs, concurrency: options.concurrency, rounds: options.rounds, idleBeforeMs: 5_000, idleAfterMs: options.idleAfterMs, durableRedis: options.durableRedis },
            cleanups,
          ),
        );
      }
    } catch (error) {
      process.stderr.write(`bench: section ${section} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      failed = true;
      results.push({ section, checks: [{ what: 'section', target: '-', measured: 'failed (see stderr)', met: false }] });
    } finally {
      await cleanups.unwind();
      active = undefined;
    }
  }
  printSummary(results);
  printLine(`Load average at the end: ${loadAverage()}`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
