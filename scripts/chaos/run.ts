#!/usr/bin/env node
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { startChaosContext } from './cluster.js';
import { chaosConfig, type ChaosSize } from './config.js';
import { figuresTable } from './report.js';
import { describeResult, runScenarios, SCENARIOS, type ScenarioKey } from './suite.js';

/**
 * `npm run chaos`: the five chaos scenarios against real processes (redis-server with
 * AOF appendfsync always, worker processes, the control process) and the fake virsh,
 * then a table of figures. Exit status 1 when any scenario found a lost or duplicated
 * job, a forged job executed, or anything else wrong. See docs/RELIABILITY.md.
 */

const USAGE = `usage: npm run chaos -- [options]

  --size <big|small>   big (default): 300 jobs over 3 hosts with worker kills, …; small: the npm test sizes
  --seed <n>           the random schedule (default: random; printed, to replay a run)
  --only <keys>        scenarios to run, comma-separated (default 1,2,3,4,5):
                         1 worker SIGKILLs, 2 redis-server SIGKILL + restart, 3 control plane SIGKILL
                         with approvals pending, 4 virsh hangs, 5 libvirtd down then up
  --keep               keep the run's directory (Redis data, fake hosts) for a post-mortem
  --quiet              no progress lines on stderr
  --help
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      size: { type: 'string', default: 'big' },
      seed: { type: 'string' },
      only: { type: 'string', default: '1,2,3,4,5' },
      keep: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.size !== 'big' && values.size !== 'small') throw new Error(`--size expects big or small, got ${JSON.stringify(values.size)}`);
  const only = values.only.split(',').map((key) => key.trim()).filter((key) => key !== '');
  for (const key of only) if (!(key in SCENARIOS)) throw new Error(`--only: no scenario ${JSON.stringify(key)} (1–5)`);
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed expects a non-negative integer, got ${JSON.stringify(values.seed)}`);

  const started = Date.now();
  const log = values.quiet ? () => undefined : (line: string) => process.stderr.write(`chaos +${((Date.now() - started) / 1000).toFixed(1)}s: ${line}\n`);
  const config = chaosConfig(values.size as ChaosSize);
  const context = await startChaosContext({ log, keepFiles: values.keep });
  const stop = () => {
    process.stderr.write('chaos: interrupted; cleaning up\n');
    void context.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`;
  log(`size ${config.size}, seed ${seed}, scenarios ${only.join(',')}; ${machine}; load ${loadavg().map((value) => value.toFixed(2)).join(' ')}`);
  let results;
  try {
    results = await runScenarios(context, config, seed, only as ScenarioKey[], (result) => {
      for (const line of describeResult(result)) log(line);
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await context.close();
  }
  const out = (text: string) => process.stdout.write(`${text}\n`);
  out(`\nsnapbot chaos — size ${config.size}, seed ${seed}, ${new Date(started).toISOString()}, ${machine}`);
  out(`load average at the end: ${loadavg().map((value) => value.toFixed(2)).join(' ')}; ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
  out('');
  out(figuresTable(results));
  out('');
  for (const result of results) for (const line of describeResult(result)) out(line);
  out(`\nreplay: npm run chaos -- --size ${config.size} --seed ${seed} --only ${only.join(',')}`);
  return results.every((result) => result.ok) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chaos: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(2);
  },
);
