import { z } from 'zod';
import type { ControlOperation } from '../../shared/control.js';
import { SnapbotError } from '../../shared/errors.js';
import { botOnline } from '../core/approvals.js';
import type { SnapbotCore } from '../core/core.js';
import { fleetList, fleetOutcome, fleetPlanSchema, fleetSummary, watchFleetRun, type FleetSummary } from '../core/fleet/index.js';
import { renderFleetList, renderFleetPreview, renderFleetProgress, renderFleetSummary } from './render-fleet.js';
import { EXIT_FAILURE, requestChange, say, withCore, type GlobalOptions } from './session.js';

/** `snapctl fleet snapshot|delete|list|status|cancel|retry`: one operation over many VMs on many hosts. */

export interface FleetRunOptions {
  target: string;
  name?: string;
  mode?: string;
  description?: string;
  yes?: boolean;
  /** commander's negatable --no-wait. */
  wait: boolean;
}

/** Prints a run's final summary; a run where anything failed or did not run is a failure (PARTIAL, from core's outcome). */
function printFleetOutcome(summary: FleetSummary, json: boolean): void {
  const { complete, incomplete } = fleetOutcome(summary);
  if (json) {
    const { plan, targets, ...rest } = summary;
    const payload = {
      ok: complete,
      ...(complete ? {} : { code: 'PARTIAL', message: `${incomplete} of ${summary.total} target(s) of fleet run ${summary.runId} did not complete.` }),
      ...rest,
      action: plan.action,
      selector: plan.selector,
      targets: targets.map((target) => ({ host: target.host, vm: target.vm, snapshot: target.snapshot, lost: target.lost, ...target.state })),
    };
    process.stdout.write(`${JSON.stringify(payload)}\n`);
  } else {
    process.stdout.write(`${renderFleetSummary(summary)}\n`);
  }
  if (!complete) process.exitCode = EXIT_FAILURE;
}

/** Follows a run to its end, with a progress line on stderr at most every second. */
async function followFleetRun(core: SnapbotCore, runId: string, json: boolean): Promise<FleetSummary> {
  let lastPrinted = 0;
  say(json, `Following fleet run ${runId}; Ctrl-C stops following, not the run (snapctl fleet cancel ${runId} stops it).`);
  return watchFleetRun(core, runId, {
    onUpdate: (summary) => {
      if (Date.now() - lastPrinted < 1000 && summary.status !== 'finished') return;
      lastPrinted = Date.now();
      say(json, renderFleetProgress(summary));
    },
  });
}

const confirmAnswerSchema = z.object({ kind: z.enum(['started', 'pending']), status: z.string(), expiresAt: z.string().nullable() });

/**
 * A fleet snapshot or delete: the preview first (planned by the control process); with
 * --yes it is confirmed (and waits for approval when the policy wants it, a bot posting
 * the request), then followed to the end.
 */
export async function runFleet(plan: ControlOperation, options: Pick<FleetRunOptions, 'yes' | 'wait'>, global: GlobalOptions): Promise<void> {
  const json = Boolean(global.json);
  await withCore(async (core, config) => {
    const preview = fleetPlanSchema.parse(await requestChange(core, config, plan, global));
    if (!options.yes) {
      if (json) process.stdout.write(`${JSON.stringify({ ok: true, started: false, preview })}\n`);
      else process.stdout.write(`${renderFleetPreview(preview)}\nNothing was started: run again with --yes to go ahead.\n`);
      return;
    }
    say(json, renderFleetPreview(preview));
    if (preview.approval && options.wait && !(await botOnline(core))) say(json, 'No Discord bot is online right now: the request is posted when one starts.');
    const confirmed = confirmAnswerSchema.parse(await requestChange(core, config, { op: 'fleet-confirm', runId: preview.id, wait: options.wait }, global));
    if (confirmed.kind === 'pending') {
      if (json) process.stdout.write(`${JSON.stringify({ ok: true, started: false, status: 'pending', runId: preview.id, expiresAt: confirmed.expiresAt })}\n`);
      else process.stdout.write(`Approval requested for fleet run ${preview.id} (expires ${confirmed.expiresAt}).\n`);
      return;
    }
    printFleetOutcome(await followFleetRun(core, preview.id, json), json);
  });
}

export function newRun(action: 'snapshot' | 'delete', options: FleetRunOptions): ControlOperation {
  return { op: 'fleet-plan', action, target: options.target, name: options.name, mode: options.mode, description: options.description };
}

export async function runFleetList(options: { target: string; name?: string }, global: GlobalOptions): Promise<void> {
  const rows = await withCore((core) => fleetList(core, options));
  if (global.json) process.stdout.write(`${JSON.stringify({ ok: true, vms: rows })}\n`);
  else process.stdout.write(`${renderFleetList(rows)}\n`);
}

export async function runFleetStatus(runId: string, options: { follow?: boolean }, global: GlobalOptions): Promise<void> {
  const json = Boolean(global.json);
  await withCore(async (core) => {
    const summary = options.follow ? await followFleetRun(core, runId, json) : await fleetSummary(core, runId);
    if (!summary) throw new SnapbotError('VALIDATION', `No fleet run ${runId} (runs are kept 7 days).`);
    printFleetOutcome(summary, json);
  });
}

export async function runFleetCancel(runId: string, global: GlobalOptions): Promise<void> {
  const json = Boolean(global.json);
  await withCore(async (core, config) => {
    const run = z.object({ status: z.string() }).parse(await requestChange(core, config, { op: 'fleet-cancel', runId }, global));
    if (run.status === 'discarded') {
      // A preview or an approval request: nothing had been queued.
      if (json) process.stdout.write(`${JSON.stringify({ ok: true, runId, status: run.status })}\n`);
      else process.stdout.write(`Fleet run ${runId} withdrawn before it started; nothing was queued.\n`);
      return;
    }
    say(json, `Fleet run ${runId} is ${run.status}.`);
    printFleetOutcome(await followFleetRun(core, runId, json), json);
  });
}
