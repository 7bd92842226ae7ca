import type { ChaosContext, WorkerTimings } from '../cluster.js';
import { doneCount } from '../fleet-run.js';
import { sleep, until } from '../processes.js';
import type { Random } from '../random.js';
import { emptyFigures, type ScenarioResult } from '../report.js';
import { runFleetScenario, workerKills, workerRestarts, wrongRecordNotes } from './fleet-scenario.js';

/**
 * Scenario 2: redis-server (AOF, appendfsync always) SIGKILLed in the middle of a fleet
 * run and started again on the same port and data directory after a short outage. No
 * process is restarted: the workers and the control plane reconnect on their own, and the
 * run completes with every target exactly once.
 */

export interface RedisRestartOptions {
  hosts: number;
  jobs: number;
  /** Each outage starts once a share of the targets in this range is done (uniform). */
  killAtDoneFraction: readonly [number, number];
  /**
   * One entry per outage: how long redis-server stays down (uniform, ms). An outage longer
   * than the job lock (JOB_LOCK_MS) makes the running jobs look stalled once Redis is back.
   */
  outagesMs: ReadonlyArray<readonly [number, number]>;
  createLatencyMs: number;
  forged: { everyMs: number; max: number };
  timings: WorkerTimings;
  timeoutMs: number;
}

export async function redisRestartScenario(context: ChaosContext, options: RedisRestartOptions, random: Random): Promise<ScenarioResult> {
  const outages: Array<{ atDone: number; downMs: number }> = [];
  const problems: string[] = [];
  let workerPids: number[][] = [];
  const outcome = await runFleetScenario(
    context,
    {
      label: 's2',
      hosts: options.hosts,
      jobs: options.jobs,
      name: 'chaos-redis',
      timings: options.timings,
      // A worker that died here would be a finding: none is killed, and none may die.
      restartDelayMs: [1_000, 1_000],
      createLatencyMs: options.createLatencyMs,
      forged: options.forged,
      timeoutMs: options.timeoutMs,
      async chaos(scene) {
        workerPids = scene.workers.map((worker) => worker.pids);
        // Outage points, spread over the range, in order.
        const [low, high] = options.killAtDoneFraction;
        const count = options.outagesMs.length;
        const points = options.outagesMs.map((_, index) => {
          const from = low + ((high - low) * index) / count;
          const to = low + ((high - low) * (index + 1)) / count;
          return Math.round(options.jobs * (from + scene.random.next() * (to - from)));
        });
        for (const [index, point] of points.entries()) {
          await until(async () => scene.finished() || (await doneCount(scene.core, scene.runId)) >= point, `${point} targets done`, options.timeoutMs, 50);
          if (scene.finished()) return;
          const [shortest, longest] = options.outagesMs[index]!;
          const downMs = scene.random.int(shortest, longest);
          const atDone = await doneCount(scene.core, scene.runId);
          context.log(`s2: SIGKILL redis-server (pid ${context.redis.pid}) with ${atDone}/${options.jobs} done; down for ${downMs} ms`);
          await context.redis.kill();
          const killedAt = Date.now();
          await sleep(downMs);
          await context.redis.restart();
          outages.push({ atDone, downMs: Date.now() - killedAt });
          context.log(`s2: redis-server back on port ${context.redis.port} (pid ${context.redis.pid}) after ${Date.now() - killedAt} ms`);
        }
      },
    },
    random,
  );
  const { check, forgery, workers } = outcome;
  // Nobody restarted a worker: each one rode out the outage as the same process, and said so.
  for (const [index, worker] of workers.entries()) {
    if (worker.pids.length !== (workerPids[index]?.length ?? 1)) problems.push(`worker of ${worker.host.hostId} had to be started again (pids ${worker.pids.join(', ')})`);
    const reconnected = worker.count('redis reconnected');
    if (outages.length > 0 && reconnected < outages.length) problems.push(`worker of ${worker.host.hostId} logged ${reconnected} reconnects for ${outages.length} outage(s)`);
  }
  const figures = {
    ...emptyFigures(),
    jobs: options.jobs,
    done: check?.done ?? 0,
    workerKills: workerKills(workers),
    workerRestarts: workerRestarts(workers),
    redisKills: outages.length,
    lost: check ? check.lost : options.jobs,
    duplicates: check?.duplicates ?? 0,
    wrongRecords: check?.wrongRecords.length ?? 0,
    forgedSent: forgery?.sent ?? 0,
    forgedExecuted: forgery?.executed ?? 0,
  };
  const allProblems = [...outcome.problems, ...problems];
  if (outages.length < options.outagesMs.length) allProblems.push(`only ${outages.length} of ${options.outagesMs.length} outage(s) happened before the run ended`);
  return {
    key: '2',
    title: 'redis-server SIGKILL + restart',
    ok: allProblems.length === 0 && figures.lost === 0 && figures.duplicates === 0 && figures.forgedExecuted === 0 && figures.done === options.jobs,
    seed: random.seed,
    durationMs: outcome.durationMs,
    figures,
    notes: [
      ...wrongRecordNotes(check),
      `outages: ${outages.map((outage) => `${outage.downMs} ms at ${outage.atDone}/${options.jobs} done`).join('; ') || 'none'}`,
      check ? `${check.recovered} re-runs found their own snapshot; ${check.stalled} jobs were taken again after their lock lapsed; ${check.retried} took more than one attempt` : 'no end state to check',
      forgery ? `forged jobs: ${forgery.refused} refused FORBIDDEN, ${forgery.executed} executed; ${forgery.addFailures} forged adds failed while Redis was away` : 'no forged jobs',
    ],
    problems: allProblems,
  };
}
