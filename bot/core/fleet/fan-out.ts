import { SnapbotError } from '../../../shared/errors.js';
import { fleetJobId, fleetKeys } from '../../../shared/fleet.js';
import { FLEET_JOB_SIGNATURE_TTL_MS, signJob } from '../../../shared/job-signing.js';
import { snapshotJobSchema, type SnapshotJob } from '../../../shared/jobs.js';
import { fleetIndexKeys } from '../../../shared/keys.js';
import { genuineApproval, markActedOn } from '../approvals.js';
import { recordAudit } from '../audit.js';
import type { SnapbotCore } from '../core.js';
import { JOB_ATTEMPTS, JOB_BACKOFF, JOB_RETENTION } from '../../../shared/queues.js';
import { assertGenuineRun, fleetAudit, getFleetRun, startSeal, transitionRun, type FleetPlan, type FleetRun, type FleetTarget } from './run-store.js';

/**
 * Fans the run out: every target queued (state and job), with fixed job ids, so calling
 * this again after a crash adds nothing twice. `from` is the status the run must be in
 * ('running' for a repeat after a crash during the fan-out).
 */
export async function startFleetRun(core: SnapbotCore, runId: string, from: 'preview' | 'approved' | 'running'): Promise<FleetRun> {
  const keys = fleetKeys(core.prefix, runId);
  // Only what the control process planned, and (when it needs one) approved, is queued.
  await assertGenuineRun(core, runId, { started: from === 'running' });
  if (from === 'approved') await genuineApproval(core, runId);
  if (from === 'preview' && (await getFleetRun(core, runId))?.plan.approval) {
    throw new SnapbotError('FORBIDDEN', `Fleet run ${runId} needs approval before it starts. Nothing was queued.`);
  }
  if (from !== 'running') await core.redis.hset(keys.run, 'startSeal', startSeal(core, runId));
  if (from !== 'running' && !(await transitionRun(core, runId, from, 'running'))) {
    const run = await getFleetRun(core, runId);
    if (!run) throw new SnapbotError('VALIDATION', `No fleet run ${runId}.`);
    return run; // Another click or process started it.
  }
  const run = await getFleetRun(core, runId);
  if (!run) throw new SnapbotError('INTERNAL', `Fleet run ${runId} vanished while starting.`);
  const { plan } = run;
  const setup = core.redis.multi().hsetnx(keys.run, 'startedAt', String(Date.now())).persist(keys.run).sadd(fleetIndexKeys(core.prefix).active, runId);
  // HSETNX: a second call after a crash keeps the states the workers already wrote.
  for (const target of plan.targets) setup.hsetnx(keys.targets, String(target.index), JSON.stringify({ state: 'queued' }));
  await setup.exec();

  const byHost = new Map<string, FleetTarget[]>();
  const expiresAt = Date.now() + FLEET_JOB_SIGNATURE_TTL_MS;
  for (const target of plan.targets) byHost.set(target.host, [...(byHost.get(target.host) ?? []), target]);
  await Promise.all(
    [...byHost].map(([host, targets]) =>
      core.queueFor(host).addBulk(
        targets.map((target) => {
          const jobId = fleetJobId(plan.id, target.index);
          const data = signJob(core.signer, jobId, fleetJob(plan, target), { expiresAt });
          return { name: data.kind, data, opts: { jobId, attempts: JOB_ATTEMPTS, backoff: JOB_BACKOFF, ...JOB_RETENTION } };
        }),
      ),
    ),
  );
  // Every job is on its queue: an approved run no longer needs the sweep to start it.
  if (plan.approval) await markActedOn(core, runId);
  if (from !== 'running') {
    await recordAudit(core, {
      ...fleetAudit(plan),
      event: plan.approval ? 'executed' : 'direct',
      detail: `${plan.targets.length} job(s) queued on ${byHost.size} host(s); ${plan.perHost || 'worker'} per host, ${plan.maxConcurrent || 'no'} global limit`,
    });
  }
  return (await getFleetRun(core, runId))!;
}

function fleetJob(plan: FleetPlan, target: FleetTarget): SnapshotJob {
  const fleet = { runId: plan.id, index: target.index, perHost: plan.perHost, global: plan.maxConcurrent };
  const base = { host: target.host, vm: target.vm, uuid: target.uuid, requestedBy: plan.requester.id, name: target.snapshot, fleet };
  return snapshotJobSchema.parse(
    plan.action === 'snapshot'
      ? {
          ...base,
          kind: 'create',
          mode: plan.mode ?? 'disk-only',
          ...(plan.description ? { description: plan.description } : {}),
          ...(plan.schedule ? { schedule: plan.schedule.name, spaceGuard: { minFreePercent: plan.schedule.minFreePercent } } : {}),
        }
      : { ...base, kind: 'delete', ...(target.createdAt ? { expected: { createdAt: target.createdAt } } : {}) },
  );
}
