import type { ChaosContext, WorkerTimings } from '../cluster.js';
import { sleep } from '../processes.js';
import type { Random } from '../random.js';
import { emptyFigures, type ScenarioResult } from '../report.js';
import { runFleetScenario, workerKills, workerRestarts, wrongRecordNotes } from './fleet-scenario.js';

/**
 * Scenario 1: a fleet run over several hosts while worker processes are SIGKILLed at
 * random moments and started again after a random short delay; some of them die right
 * after their snapshot-create-as succeeded (before they could report). Every target must
 * end exactly once: done, with one snapshot of the run's name on its VM made by its own
 * job, and at most one successful snapshot-create-as per VM.
 */

export interface WorkerKillsOptions {
  hosts: number;
  jobs: number;
  /** Time between two kills (uniform, ms). */
  killEveryMs: readonly [number, number];
  restartDelayMs: readonly [number, number];
  /** A worker is killed only once it has been up (ready) this long (uniform, ms): it gets work done between deaths. */
  minUptimeMs: readonly [number, number];
  maxKills: number;
  /**
   * At most this many deaths of one host's worker (chaos kills and fault kills together);
   * null: no limit. A job that is running when its worker dies twice is failed by BullMQ's
   * stall limit (see docs/RELIABILITY.md, "found"); 1 keeps the small run clear of that.
   */
  killsPerHost: number | null;
  /** VMs whose worker is SIGKILLed right after their snapshot-create-as succeeded. */
  killAfterCreate: number;
  createLatencyMs: number;
  forged: { everyMs: number; max: number };
  timings: WorkerTimings;
  timeoutMs: number;
}

export async function workerKillsScenario(context: ChaosContext, options: WorkerKillsOptions, random: Random): Promise<ScenarioResult> {
  let killedVms: string[] = [];
  const armed = new Map<string, number>();
  const outcome = await runFleetScenario(
    context,
    {
      label: 's1',
      hosts: options.hosts,
      jobs: options.jobs,
      name: 'chaos-kills',
      timings: options.timings,
      restartDelayMs: options.restartDelayMs,
      createLatencyMs: options.createLatencyMs,
      forged: options.forged,
      timeoutMs: options.timeoutMs,
      prepare(hosts, prepareRandom) {
        const limit = options.killsPerHost ?? Number.POSITIVE_INFINITY;
        const candidates = hosts.flatMap((host) => host.vms.map((vm) => ({ host, vm })));
        const chosen: typeof candidates = [];
        for (const candidate of prepareRandom.sample(candidates, candidates.length)) {
          if (chosen.length >= options.killAfterCreate) break;
          if ((armed.get(candidate.host.hostId) ?? 0) >= limit) continue;
          armed.set(candidate.host.hostId, (armed.get(candidate.host.hostId) ?? 0) + 1);
          chosen.push(candidate);
        }
        for (const { host, vm } of chosen) host.killWorkerAfterCreate(vm);
        killedVms = chosen.map(({ host, vm }) => `${vm.name}@${host.hostId}`);
      },
      async chaos(scene) {
        let kills = 0;
        while (!scene.finished() && kills < options.maxKills) {
          await sleep(scene.random.int(options.killEveryMs[0], options.killEveryMs[1]));
          if (scene.finished()) break;
          const limit = options.killsPerHost ?? Number.POSITIVE_INFINITY;
          // Deaths to come from armed faults count against a host's limit too.
          const allowed = scene.workers.filter((worker) => worker.kills + (armed.get(worker.host.hostId) ?? 0) < limit);
          if (allowed.length === 0) break;
          const uptime = scene.random.int(options.minUptimeMs[0], options.minUptimeMs[1]);
          const ready = allowed.filter((worker) => worker.upMs >= uptime);
          if (ready.length === 0) continue;
          const victim = scene.random.pick(ready);
          context.log(`s1: SIGKILL worker of ${victim.host.hostId} (pid ${victim.pid})`);
          await victim.kill();
          kills += 1;
        }
      },
    },
    random,
  );
  const { check, forgery, workers } = outcome;
  const figures = {
    ...emptyFigures(),
    jobs: options.jobs,
    done: check?.done ?? 0,
    workerKills: workerKills(workers),
    workerRestarts: workerRestarts(workers),
    lost: check ? check.lost : options.jobs,
    duplicates: check?.duplicates ?? 0,
    wrongRecords: check?.wrongRecords.length ?? 0,
    forgedSent: forgery?.sent ?? 0,
    forgedExecuted: forgery?.executed ?? 0,
  };
  const chaosKills = workers.reduce((sum, worker) => sum + worker.kills, 0);
  const faultKills = workers.reduce((sum, worker) => sum + worker.crashes, 0);
  const notes = [
    ...wrongRecordNotes(check),
    `${chaosKills} random SIGKILLs and ${faultKills} right after a successful snapshot-create-as (${killedVms.length} armed: ${killedVms.slice(0, 6).join(', ')}${killedVms.length > 6 ? ', …' : ''})`,
    check
      ? `${check.recovered} re-runs found their own snapshot and did not create it again; ${check.createdAgain} targets had snapshot-create-as started more than once (the earlier ones did not succeed); ${check.stalled} jobs were taken again after their worker died`
      : 'no end state to check',
    forgery ? `forged jobs: ${forgery.byKind.unsigned} unsigned, ${forgery.byKind.tampered} tampered, ${forgery.byKind.replayed} replayed; ${forgery.refused} refused FORBIDDEN, ${forgery.executed} executed` : 'no forged jobs',
  ];
  return {
    key: '1',
    title: 'worker SIGKILLs',
    ok: outcome.problems.length === 0 && figures.lost === 0 && figures.duplicates === 0 && figures.forgedExecuted === 0 && figures.done === options.jobs,
    seed: random.seed,
    durationMs: outcome.durationMs,
    figures,
    notes,
    problems: outcome.problems,
  };
}
