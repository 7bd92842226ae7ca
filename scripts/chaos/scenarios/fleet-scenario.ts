import { randomBytes } from 'node:crypto';
import type { SnapbotCore } from '../../../bot/core/core.js';
import { fleetSummary, getFleetRun, type FleetSummary, type FleetTargetView } from '../../../bot/core/fleet/index.js';
import { fleetJobId } from '../../../shared/fleet.js';
import type { FakeVirshFault } from '../../../test/fixtures/fake-virsh-host.js';
import { SupervisedWorker, type ChaosContext, type WorkerTimings } from '../cluster.js';
import { followRun, fleetChaosPolicy, startSnapshotRun, waitForHosts } from '../fleet-run.js';
import { Forger, type ForgeryReport } from '../forgery.js';
import { ChaosHost } from '../hosts.js';
import type { Random } from '../random.js';
import { checkSnapshotRun, type ExactlyOnceReport, type Expectation } from '../verify.js';

/**
 * The frame of every fleet scenario: fresh fake hosts (one worker process each, under
 * its own key prefix), one fleet snapshot of every VM, forged jobs sent meanwhile, the
 * scenario's chaos while the run goes on, and the end state checked target by target.
 */

export interface FleetScenarioSpec {
  label: string;
  hosts: number;
  jobs: number;
  /** The snapshot name of the run. */
  name: string;
  timings: WorkerTimings;
  /** A killed worker stays dead this long (uniform, ms) before it is started again. */
  restartDelayMs: readonly [number, number];
  /** Sleep added to every snapshot-create-as, so runs are in the middle of creates when chaos strikes. */
  createLatencyMs: number;
  forged: { everyMs: number; max: number };
  /** Gives up (and reports what is stuck) after this long. */
  timeoutMs: number;
  /** Fault rules of a host, before the latency rule (the fake applies the first rule that matches). */
  faults?: (host: ChaosHost, random: Random) => FakeVirshFault[];
  /** Before the run, after the faults. */
  prepare?: (hosts: readonly ChaosHost[], random: Random) => void;
  /** The chaos, started once the run is under way; `finished()` turns true when the run has ended. */
  chaos?: (scene: Scene) => Promise<void>;
  expect?: (target: FleetTargetView) => Expectation;
  /** Checks of the hosts after the run, before they are removed; returns problems. */
  inspect?: (hosts: readonly ChaosHost[], workers: readonly SupervisedWorker[]) => string[];
}

export interface Scene {
  core: SnapbotCore;
  runId: string;
  hosts: readonly ChaosHost[];
  workers: readonly SupervisedWorker[];
  random: Random;
  finished(): boolean;
}

export interface FleetScenarioOutcome {
  summary: FleetSummary | null;
  check: ExactlyOnceReport | null;
  forgery: ForgeryReport | null;
  workers: readonly SupervisedWorker[];
  hosts: readonly ChaosHost[];
  durationMs: number;
  problems: string[];
}

export async function runFleetScenario(context: ChaosContext, spec: FleetScenarioSpec, random: Random): Promise<FleetScenarioOutcome> {
  const started = Date.now();
  const prefix = `{chaos-${spec.label}-${randomBytes(3).toString('hex')}}`;
  const hosts: ChaosHost[] = [];
  const workers: SupervisedWorker[] = [];
  const problems: string[] = [];
  let summary: FleetSummary | null = null;
  let check: ExactlyOnceReport | null = null;
  let forgery: ForgeryReport | null = null;
  let ended = false;
  let chaos: Promise<void> | null = null;
  let forger: Forger | null = null;
  try {
    for (let index = 0; index < spec.hosts; index += 1) {
      const vms = Math.floor(spec.jobs / spec.hosts) + (index < spec.jobs % spec.hosts ? 1 : 0);
      const host = await ChaosHost.create(`kvm-${String.fromCharCode(97 + index)}`, vms);
      hosts.push(host);
    }
    const faultRandom = random.fork('faults');
    for (const host of hosts) {
      const latency: FakeVirshFault[] = spec.createLatencyMs > 0 ? [{ match: { subcommand: 'snapshot-create-as' }, latencyMs: spec.createLatencyMs }] : [];
      host.setFaults([...(spec.faults?.(host, faultRandom) ?? []), ...latency]);
    }
    spec.prepare?.(hosts, random.fork('prepare'));
    const core = await context.connectCore(prefix, fleetChaosPolicy());
    for (const host of hosts) workers.push(new SupervisedWorker(context, host, prefix, spec.timings, random.fork(`restart-${host.hostId}`), spec.restartDelayMs));
    await Promise.all(workers.map((worker) => worker.start()));
    await waitForHosts(core, new Map(hosts.map((host) => [host.hostId, host.vms.length])));
    context.log(`${spec.label}: ${hosts.length} hosts, ${spec.jobs} VMs, workers ready after ${Math.round((Date.now() - started) / 1000)} s; starting the run`);

    const runId = await startSnapshotRun(core, spec.name, spec.jobs);
    forger = new Forger(core, hosts, random.fork('forgery'), async () => {
      const run = await getFleetRun(core, runId);
      const done = run ? [...run.targets].filter(([, state]) => state.state === 'done').map(([index]) => index) : [];
      if (!run || done.length === 0) return null;
      const index = random.pick(done);
      return { host: run.plan.targets[index]!.host, jobId: fleetJobId(runId, index) };
    });
    if (spec.forged.max > 0) forger.start(spec.forged.everyMs, spec.forged.max);
    const scene: Scene = { core, runId, hosts, workers, random: random.fork('chaos'), finished: () => ended };
    chaos = spec.chaos ? spec.chaos(scene).catch((error: unknown) => void problems.push(`the chaos itself failed: ${(error as Error).message}`)) : null;

    try {
      summary = await followRun(core, runId, spec.timeoutMs, context.log);
    } catch (error) {
      problems.push((error as Error).message);
      // Checked as it stands: what is done is checked, what is not counts as lost.
      summary = await fleetSummary(core, runId).catch(() => null);
    }
    ended = true;
    await chaos;
    await forger.stop();
    // Every worker up again, so that every forged job gets its answer.
    await Promise.all(workers.map((worker) => worker.whenReady()));
    forgery = await forger.verify(120_000);
    problems.push(...forgery.problems);
    if (summary) {
      check = await checkSnapshotRun(core, summary, new Map(hosts.map((host) => [host.hostId, host])), spec.expect);
      problems.push(...check.problems);
    }
    if (spec.inspect) problems.push(...spec.inspect(hosts, workers));
  } catch (error) {
    problems.push(`scenario error: ${(error as Error).stack ?? String(error)}`);
  } finally {
    ended = true;
    await forger?.stop().catch(() => undefined);
    await chaos?.catch(() => undefined);
    await Promise.allSettled(workers.map((worker) => worker.stop()));
    await Promise.allSettled(hosts.map((host) => host.dispose()));
  }
  return { summary, check, forgery, workers, hosts, durationMs: Date.now() - started, problems };
}

export function workerKills(workers: readonly SupervisedWorker[]): number {
  return workers.reduce((sum, worker) => sum + worker.kills + worker.crashes, 0);
}

export function workerRestarts(workers: readonly SupervisedWorker[]): number {
  return workers.reduce((sum, worker) => sum + worker.restarts, 0);
}

/** A line for the targets whose job record is wrong (done, job failed), if any. */
export function wrongRecordNotes(check: ExactlyOnceReport | null): string[] {
  if (!check || check.wrongRecords.length === 0) return [];
  return [
    `${check.wrongRecords.length} target(s) done exactly once whose BullMQ job ended failed (a wrong record, not a lost or duplicated job):`,
    ...check.wrongRecords.slice(0, 5).map((line) => `    ${line}`),
    ...(check.wrongRecords.length > 5 ? [`    … and ${check.wrongRecords.length - 5} more`] : []),
  ];
}
