import { z } from 'zod';
import type { ControlOperation } from '../../shared/control.js';
import { SnapbotError } from '../../shared/errors.js';
import { scheduleFiringSchema } from '../../shared/schedules/definition.js';
import { approvalRequestSchema } from '../core/approvals.js';
import { listSchedules, requireSchedule, type ScheduleRecord } from '../core/schedules/store.js';
import { upcomingFirings } from '../core/schedules/manage.js';
import { renderFiring, renderSchedule, renderScheduleList } from './render-schedule.js';
import { EXIT_FAILURE, requestChange, withCore, type GlobalOptions } from './session.js';

/**
 * What `snapctl schedule …` does (schedule-commands.ts declares the commands). Changes go
 * to the control process (signed, under its policy); list and show read Redis directly.
 */

export interface CreateOptions {
  target: string;
  cron?: string;
  every?: string;
  tz?: string;
  keep: string;
  mode?: string;
  prefix?: string;
  description?: string;
}

const createdAnswerSchema = z.object({
  approval: approvalRequestSchema.nullable(),
  vms: z.number(),
  next: z.array(z.string()),
  schedule: z.object({ status: z.string() }).passthrough(),
});

function print(json: boolean, payload: Record<string, unknown>, text: string): void {
  process.stdout.write(json ? `${JSON.stringify({ ok: true, ...payload })}\n` : `${text}\n`);
}

function view(record: ScheduleRecord) {
  return { ...record, next: upcomingFirings(record) };
}

function change(operation: ControlOperation, global: GlobalOptions): Promise<unknown> {
  return withCore((core, config) => requestChange(core, config, operation, global));
}

export async function createSchedule(name: string, options: CreateOptions, global: GlobalOptions): Promise<void> {
  const json = Boolean(global.json);
  const answer = createdAnswerSchema.parse(await change({ op: 'schedule-create', name, ...options }, global));
  const status = answer.approval ? `waiting for approval ${answer.approval.id} (${answer.approval.reason}; expires ${answer.approval.expiresAt})` : 'active';
  print(
    json,
    { name, status: answer.approval ? 'pending' : 'active', vms: answer.vms, next: answer.next, ...(answer.approval ? { requestId: answer.approval.id, expiresAt: answer.approval.expiresAt } : {}) },
    `Schedule ${name} created: ${status}; its target matches ${answer.vms} VM(s) now.${answer.next.length ? `\nNext firings: ${answer.next.join(', ')}` : ''}`,
  );
}

export async function listScheduleRecords(global: GlobalOptions): Promise<void> {
  const records = await withCore((core) => listSchedules(core));
  print(Boolean(global.json), { schedules: records.map(view) }, renderScheduleList(records));
}

export async function showSchedule(name: string, global: GlobalOptions): Promise<void> {
  const record = await withCore((core) => requireSchedule(core, name));
  print(Boolean(global.json), { schedule: view(record) }, renderSchedule(record, upcomingFirings(record)));
}

export async function pauseOrResume(verb: 'pause' | 'resume', name: string, global: GlobalOptions): Promise<void> {
  await change({ op: verb === 'pause' ? 'schedule-pause' : 'schedule-resume', name }, global);
  print(Boolean(global.json), { name, status: verb === 'pause' ? 'paused' : 'active' }, `Schedule ${name} ${verb === 'pause' ? 'paused' : 'resumed'}.`);
}

export async function runScheduleOnce(name: string, options: { wait: boolean }, global: GlobalOptions): Promise<void> {
  const json = Boolean(global.json);
  const answer = z.object({ jobId: z.string(), firing: scheduleFiringSchema.nullable() }).parse(await change({ op: 'schedule-run', name, wait: options.wait }, global));
  if (!options.wait) return print(json, { name, jobId: answer.jobId }, `Schedule ${name} fired (${answer.jobId}).`);
  const firing = answer.firing;
  if (!firing) throw new SnapbotError('VALIDATION', `Schedule ${name} did not fire (deleted, or not active any more).`);
  const ok = firing.failures.length === 0;
  if (json) process.stdout.write(`${JSON.stringify({ ok, ...(ok ? {} : { code: 'PARTIAL', message: `${firing.failures.length} failure(s) in the firing of ${name}.` }), name, firing })}\n`);
  else process.stdout.write(`${renderFiring(name, firing)}\n`);
  if (!ok) process.exitCode = EXIT_FAILURE;
}

export async function deleteSchedule(name: string, global: GlobalOptions): Promise<void> {
  await change({ op: 'schedule-delete', name }, global);
  print(Boolean(global.json), { name, deleted: true }, `Schedule ${name} deleted; its snapshots were left as they are.`);
}
