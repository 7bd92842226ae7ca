import { Option, type Command } from 'commander';
import type { CreateOptions } from './schedule-actions.js';
import type { GlobalOptions } from './session.js';

/**
 * `snapctl schedule create|list|show|pause|resume|run|delete`. Only the commands are
 * declared here; what they do (schedule-actions.ts) is imported when one runs, so that
 * `snapctl --help` loads none of it.
 */

export interface ScheduleCommandDeps {
  global: () => GlobalOptions;
}

const actions = () => import('./schedule-actions.js');

export function addScheduleCommands(program: Command, deps: ScheduleCommandDeps): void {
  const { global } = deps;
  const schedule = program.command('schedule').description('snapshots on a schedule, with retention (keep the newest N per period, prune the rest)');

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
    .action(async (name: string, options: CreateOptions) => (await actions()).createSchedule(name, options, global()));
  schedule
    .command('list')
    .description('every schedule: status, cadence, retention, last firing')
    .action(async () => (await actions()).listScheduleRecords(global()));
  schedule
    .command('show <name>')
    .description('one schedule, its next firings and what its last firing did')
    .action(async (name: string) => (await actions()).showSchedule(name, global()));
  for (const [verb, description] of [
    ['pause', 'stop firing (kept; resume starts it again)'],
    ['resume', 'fire again after a pause'],
  ] as const) {
    schedule
      .command(`${verb} <name>`)
      .description(description)
      .action(async (name: string) => (await actions()).pauseOrResume(verb, name, global()));
  }
  schedule
    .command('run <name>')
    .description('fire it once now and wait for the result (--no-wait: return at once)')
    .option('--no-wait', 'do not wait for the firing to end')
    .action(async (name: string, options: { wait: boolean }) => (await actions()).runScheduleOnce(name, options, global()));
  schedule
    .command('delete <name>')
    .description('delete the schedule (its snapshots stay)')
    .action(async (name: string) => (await actions()).deleteSchedule(name, global()));
}
