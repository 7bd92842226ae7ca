import { Option, type Command } from 'commander';
import { z } from 'zod';
import type { ClientConfig } from '../../shared/config.js';
import type { ControlOperation } from '../../shared/control.js';
import { SnapbotError } from '../../shared/errors.js';
import { scheduleFiringSchema } from '../../shared/schedules/definition.js';
import { approvalRequestSchema } from '../core/approvals.js';
import type { SnapbotCore } from '../core/core.js';
import { listSchedules, requireSchedule, type ScheduleRecord } from '../core/schedules/store.js';
import { upcomingFirings } from '../core/schedules/manage.js';
import { renderFiring, renderSchedule, renderScheduleList } from './render-schedule.js';

/**
 * `snapctl schedule create|list|show|pause|resume|run|delete`. Changes go to the control
 * process (signed, under its policy); list and show read Redis directly.
 */

export interface ScheduleCommandDeps {
  global: () => { json?: boolean; timeout: number };
  withCore: <T>(work: (core: SnapbotCore, config: ClientConfig) => Promise<T>) => Promise<T>;
  requestChange: (core: SnapbotCore, config: ClientConfig, operation: ControlOperation, global: { json?: boolean; timeout: number }) => Promise<unknown>;
}

interface CreateOptions {
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

export function addScheduleCommands(program: Command, deps: ScheduleCommandDeps): void {
  const { global, withCore, requestChange } = deps;
  const schedule = program.command('schedule').description('snapshots on a schedule, with retention (keep the newest N per period, prune the rest)');
  const change = (operation: ControlOperation) => withCore((core, config) => requestChange(core, config, operation, global()));

  schedule
    .command('create <name>')
    .description('create a schedule (it waits for approval when its VMs\' deletes need it)')
    .requiredOption('--target <selector>', "VMs: globs (web-*), host:<id or glob>, all; !x excludes (quote it: 'web-* !web-canary')")
    .option('--cron <expr>', 'cron expression: 5 fields, or 6 with seconds first ("30 2 * * *", "*/5 * * * * *")')
    .option('--every <duration>', 'interval instead of cron: 30s, 15m, 1h, 1d')
    .option('--tz <zone>', 'IANA time zone for --cron and for retention\'s days and weeks (default UTC)')
    .requiredOption('--keep <spec>', 'retention: last=N and/or hourly=N,daily=N,weekly=N,monthly=N')
    .addOption(new Option('--mode <mode>', 'disk-only or full').choices(['disk-only', 'full']).default('disk-only'))
    .option('--prefix <prefix>', 'snapshot names are <prefix>-YYYYMMDD-HHMMSS (default: the schedule name)')
    .option('--description <text>', 'free text stored with each snapshot')
    .action(async (name: string, options: CreateOptions) => {
      const json = Boolean(global().json);
      const answer = createdAnswerSchema.parse(await change({ op: 'schedule-create', name, ...options }));
      const status = answer.approval ? `waiting for approval ${answer.approval.id} (${answer.approval.reason}; expires ${answer.approval.expiresAt})` : 'active';
      print(
        json,
        { name, status: answer.approval ? 'pending' : 'active', vms: answer.vms, next: answer.next, ...(answer.approval ? { requestId: answer.approval.id, expiresAt: answer.approval.expiresAt } : {}) },
        `Schedule ${name} created: ${status}; its target matches ${answer.vms} VM(s) now.${answer.next.length ? `\nNext firings: ${answer.next.join(', ')}` : ''}`,
      );
    });
  schedule
    .command('list')
    .description('every schedule: status, cadence, retention, last firing')
    .action(async () => {
      const records = await withCore((core) => listSchedules(core));
      print(Boolean(global().json), { schedules: records.map(view) }, renderScheduleList(records));
    });
  schedule
    .command('show <name>')
    .description('one schedule, its next firings and what its last firing did')
    .action(async (name: string) => {
      const record = await withCore((core) => requireSchedule(core, name));
      print(Boolean(global().json), { schedule: view(record) }, renderSchedule(record, upcomingFirings(record)));
    });
  for (const [verb, description] of [
    ['pause', 'stop firing (kept; resume starts it again)'],
    ['resume', 'fire again after a pause'],
  ] as const) {
    schedule
      .command(`${verb} <name>`)
      .description(description)
      .action(async (name: string) => {
        await change({ op: verb === 'pause' ? 'schedule-pause' : 'schedule-resume', name });
        print(Boolean(global().json), { name, status: verb === 'pause' ? 'paused' : 'active' }, `Schedule ${name} ${verb === 'pause' ? 'paused' : 'resumed'}.`);
      });
  }
  schedule
    .command('run <name>')
    .description('fire it once now and wait for the result (--no-wait: return at once)')
    .option('--no-wait', 'do not wait for the firing to end')
    .action(async (name: string, options: { wait: boolean }) => {
      const json = Boolean(global().json);
      const answer = z.object({ jobId: z.string(), firing: scheduleFiringSchema.nullable() }).parse(await change({ op: 'schedule-run', name, wait: options.wait }));
      if (!options.wait) return print(json, { name, jobId: answer.jobId }, `Schedule ${name} fired (${answer.jobId}).`);
      const firing = answer.firing;
      if (!firing) throw new SnapbotError('VALIDATION', `Schedule ${name} did not fire (deleted, or not active any more).`);
      const ok = firing.failures.length === 0;
      if (json) process.stdout.write(`${JSON.stringify({ ok, ...(ok ? {} : { code: 'PARTIAL', message: `${firing.failures.length} failure(s) in the firing of ${name}.` }), name, firing })}\n`);
      else process.stdout.write(`${renderFiring(name, firing)}\n`);
      if (!ok) process.exitCode = 1;
    });
  schedule
    .command('delete <name>')
    .description('delete the schedule (its snapshots stay)')
    .action(async (name: string) => {
      await change({ op: 'schedule-delete', name });
      print(Boolean(global().json), { name, deleted: true }, `Schedule ${name} deleted; its snapshots were left as they are.`);
    });
}
