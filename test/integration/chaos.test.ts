import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChaosContext, type ChaosContext } from '../../scripts/chaos/cluster.js';
import { chaosConfig } from '../../scripts/chaos/config.js';
import { Random } from '../../scripts/chaos/random.js';
import { figuresTable, type ScenarioResult } from '../../scripts/chaos/report.js';
import { describeResult, SCENARIOS, type ScenarioKey } from '../../scripts/chaos/suite.js';

/**
 * The chaos run of `npm run chaos` (scripts/chaos, docs/RELIABILITY.md) at its small size:
 * real redis-server (AOF, appendfsync always), real worker processes and control process,
 * the fake virsh. Each scenario asserts the end state — every job ended exactly once,
 * nothing lost, nothing duplicated, no forged job executed — never timing, except the
 * approvals' expiry bound of scenario 3 (by Redis's clock). CHAOS_SEED replays a
 * schedule; CHAOS_LOG=1 prints progress.
 */

const SEED = Number(process.env.CHAOS_SEED ?? 20261129);
const config = chaosConfig('small');
let context: ChaosContext;
const lines: string[] = [];
const results: ScenarioResult[] = [];

beforeAll(async () => {
  context = await startChaosContext({
    log: (line) => {
      lines.push(line);
      if (process.env.CHAOS_LOG) process.stderr.write(`chaos: ${line}\n`);
    },
  });
});

afterAll(async () => {
  await context?.close();
  if (results.length > 0) console.info(`chaos (small, seed ${SEED}):\n${figuresTable(results)}\n${results.flatMap(describeResult).join('\n')}`);
});

async function run(key: ScenarioKey): Promise<ScenarioResult> {
  const result = { ...(await SCENARIOS[key](context, config, new Random(SEED))), seed: SEED };
  results.push(result);
  return result;
}

/** The problems, with the run's log, as the failure message. */
function explain(result: ScenarioResult): string {
  return [...describeResult(result), '--- log ---', ...lines.slice(-40)].join('\n');
}

describe('chaos (small): every job ends exactly once', () => {
  it('1: worker processes SIGKILLed and restarted during a fleet run', async () => {
    const result = await run('1');
    expect(result.problems, explain(result)).toEqual([]);
    expect(result.figures).toMatchObject({ jobs: config.workerKills.jobs, done: config.workerKills.jobs, lost: 0, duplicates: 0, forgedExecuted: 0 });
    expect(result.figures.workerKills).toBeGreaterThan(0);
    expect(result.figures.forgedSent).toBeGreaterThan(0);
  }, 900_000);

  it('2: redis-server SIGKILLed and restarted on the same port and data mid-run', async () => {
    const result = await run('2');
    expect(result.problems, explain(result)).toEqual([]);
    expect(result.figures).toMatchObject({ jobs: config.redisRestart.jobs, done: config.redisRestart.jobs, redisKills: config.redisRestart.outagesMs.length, lost: 0, duplicates: 0, forgedExecuted: 0, workerKills: 0 });
  }, 900_000);

  it('3: the control process SIGKILLed with approvals pending: they expire on time, nothing runs', async () => {
    const result = await run('3');
    expect(result.problems, explain(result)).toEqual([]);
    expect(result.figures.controlKills).toBe(2);
  }, 600_000);

  it('4: virsh hanging for some jobs: those fail TIMEOUT, the rest complete', async () => {
    const result = await run('4');
    expect(result.problems, explain(result)).toEqual([]);
    expect(result.figures).toMatchObject({ jobs: config.virshHang.jobs, done: config.virshHang.jobs - config.virshHang.hanging, failedAsExpected: config.virshHang.hanging, lost: 0, duplicates: 0 });
  }, 600_000);

  it('5: libvirtd down for a while, then up: jobs are retried and complete exactly once', async () => {
    const result = await run('5');
    expect(result.problems, explain(result)).toEqual([]);
    expect(result.figures).toMatchObject({ jobs: config.libvirtd.jobs, done: config.libvirtd.jobs, lost: 0, duplicates: 0 });
  }, 600_000);
});
