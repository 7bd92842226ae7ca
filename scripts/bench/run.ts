#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { CleanupStack } from './cleanup-stack.js';
import { runDiscordBench } from './discord-latency.js';
import { runQueueOverhead, type OverheadOperation } from './queue-overhead.js';
import { loadAverage } from './processes.js';
import { printLine, printSummary, type SectionResult } from './report.js';
import { runSnapctlWallTime } from './snapctl-wall-time.js';
import { runWorkerRss } from './worker-rss.js';

/**
 * `npm run bench`: prints numbers, asserts nothing. Every section starts its own
 * redis-server on a free port and removes whatever it started when it ends (or on Ctrl-C).
 */

const SECTIONS = ['overhead', 'snapctl', 'rss', 'discord'] as const;

const USAGE = `usage: npm run bench -- [options]

  --only <sections>     overhead, snapctl, rss, discord (comma-separated; default: all)
  --ops <n>             overhead: operations to time (default 500)
  --op <info|create>    overhead: the operation (default info)
  --warmup <n>          overhead: untimed warm-up pairs (default 10)
  --runs <n>            snapctl: creates per mode and tool (default 20)
  --jobs <n>            rss: jobs per round (default 1000)
  --concurrency <n>     rss: jobs in flight (default 8)
  --rounds <n>          rss: rounds of jobs, each followed by the idle wait (default 1)
  --idle-after <s>      rss: idle wait after each round, seconds (default 10)
  --interactions <n>    discord: slash commands timed to their acknowledgement (default 200)
  --vms <n>             discord: VMs in the inventory for autocomplete (default 10000)
  --progress-seconds <s>  discord: how long the progress-reporting job runs (default 60)
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
  const operation = values.op ?? 'info';
  if (operation !== 'info' && operation !== 'create') throw new Error(`--op expects info or create, got ${JSON.stringify(operation)}`);
  return {
    help: values.help,
    sections: SECTIONS.filter((section) => only.includes(section)),
    durableRedis: !values['no-aof'],
    ops: positive('ops', values.ops, 500),
    operation: operation as OverheadOperation,
    warmup: positive('warmup', values.warmup, 10),
    runs: positive('runs', values.runs, 20),
    jobs: positive('jobs', values.jobs, 1000),
    concurrency: positive('concurrency', values.concurrency, 8),
    rounds: positive('rounds', values.rounds, 1),
    idleAfterMs: positive('idle-after', values['idle-after'], 10) * 1000,
    interactions: positive('interactions', values.interactions, 200),
    vms: positive('vms', values.vms, 10_000),
    progressSeconds: positive('progress-seconds', values['progress-seconds'], 60),
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
      if (section === 'overhead') {
        results.push(await runQueueOverhead({ ops: options.ops, operation: options.operation, warmup: options.warmup, durableRedis: options.durableRedis }, cleanups));
      } else if (section === 'snapctl') {
        results.push(await runSnapctlWallTime({ runs: options.runs, durableRedis: options.durableRedis }, cleanups));
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
