import type { ChaosContext } from '../cluster.js';
import { doneCount } from '../fleet-run.js';
import { sleep, until } from '../processes.js';
import type { Random } from '../random.js';
import { emptyFigures, type ScenarioResult } from '../report.js';
import { runFleetScenario, workerKills, workerRestarts, wrongRecordNotes } from './fleet-scenario.js';

/**
 * Scenario 5: "libvirtd stopped and started" in the middle of a fleet run. For a while
 * every virsh call fails as virsh does without a daemon ("failed to connect to the
 * hypervisor": HYPERVISOR_UNAVAILABLE, transient), then libvirtd is back. The jobs that
 * hit the outage are retried with backoff (1, 2, 4, 8 s) and complete, exactly once.
 */

export interface LibvirtdOptions {
  hosts: number;
  jobs: number;
  /** How long libvirtd is down; within a job's five attempts (15 s of backoff) it must be back. */
  downMs: number;
  /** libvirtd goes down once this many targets are done. */
  downAfterDone: number;
  createLatencyMs: number;
  timeoutMs: number;
}

export async function libvirtdScenario(context: ChaosContext, options: LibvirtdOptions, random: Random): Promise<ScenarioResult> {
  let downFor = 0;
  let downAt = 0;
  let upAt = 0;
  let refusedCalls = 0;
  const outcome = await runFleetScenario(
    context,
    {
      label: 's5',
      hosts: options.hosts,
      jobs: options.jobs,
      name: 'chaos-libvirtd',
      timings: { lockMs: 15_000, stalledCheckMs: 5_000, virshTimeoutMs: 60_000, concurrency: 4 },
      restartDelayMs: [500, 500],
      createLatencyMs: options.createLatencyMs,
      forged: { everyMs: 0, max: 0 },
      timeoutMs: options.timeoutMs,
      inspect(hosts) {
        // Calls that started while libvirtd was down (a call's own latency may carry it past the end).
        for (const host of hosts) refusedCalls += host.fake.processes().filter((call) => call.at >= downAt && call.at < upAt).length;
        return [];
      },
      async chaos(scene) {
        // Once the first targets are done, so that most of the run's creates still have to
        // start (a fixed delay missed the run once jobs got faster: it had ended by then).
        await until(async () => scene.finished() || (await doneCount(scene.core, scene.runId)) >= options.downAfterDone, `${options.downAfterDone} targets done`, options.timeoutMs, 20);
        if (scene.finished()) return;
        context.log(`s5: libvirtd down on ${scene.hosts.map((host) => host.hostId).join(', ')} for ${options.downMs} ms`);
        downAt = Date.now();
        for (const host of scene.hosts) host.fake.setDaemonDown(true);
        await sleep(options.downMs);
        for (const host of scene.hosts) host.fake.setDaemonDown(false);
        upAt = Date.now();
        downFor = upAt - downAt;
        context.log('s5: libvirtd back');
      },
    },
    random,
  );
  const { check, workers } = outcome;
  const problems = [...outcome.problems];
  if (workers.some((worker) => worker.kills + worker.crashes > 0)) problems.push('a worker died while libvirtd was down');
  if (check && check.retried === 0) problems.push('no job was retried: the outage did not hit the run');
  const figures = {
    ...emptyFigures(),
    jobs: options.jobs,
    done: check?.done ?? 0,
    workerKills: workerKills(workers),
    workerRestarts: workerRestarts(workers),
    lost: check ? check.lost : options.jobs,
    duplicates: check?.duplicates ?? 0,
    wrongRecords: check?.wrongRecords.length ?? 0,
  };
  return {
    key: '5',
    title: 'libvirtd down, then up',
    ok: problems.length === 0 && figures.lost === 0 && figures.duplicates === 0 && figures.done === options.jobs,
    seed: random.seed,
    durationMs: outcome.durationMs,
    figures,
    notes: [
      ...wrongRecordNotes(check),
      `libvirtd down for ${downFor} ms: ${refusedCalls} virsh processes started meanwhile (answered "failed to connect to the hypervisor"); ${check?.retried ?? 0} jobs took more than one attempt and completed`,
    ],
    problems,
  };
}
