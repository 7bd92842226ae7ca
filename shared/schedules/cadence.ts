import { CronExpressionParser } from 'cron-parser';
import { SnapbotError } from '../errors.js';
import { normalizeTimeZone } from './time-zone.js';

/**
 * When a schedule fires: a cron expression in a time zone, or a fixed interval. The
 * normalized cadence is exactly what BullMQ's `upsertJobScheduler` takes as repeat
 * options, and `nextFirings` computes firings with the cron-parser call BullMQ's default
 * repeat strategy makes (node_modules/bullmq/dist/esm/classes/job-scheduler.js
 * `defaultRepeatStrategy`), so what users are shown is what BullMQ will do.
 */

/** A cron cadence: BullMQ repeat options `{ pattern, tz }`. The zone is always explicit. */
export interface CronCadence {
  pattern: string;
  tz: string;
}

/**
 * An interval cadence: BullMQ repeat options `{ every }`, in milliseconds. BullMQ ignores
 * `tz` here; the schedule's zone still says where its retention's days and weeks begin.
 */
export interface IntervalCadence {
  every: number;
  tz: string;
}

export type ScheduleCadence = CronCadence | IntervalCadence;

/** What a person typed: `--cron "<expr>" [--tz <zone>]` or `--every <duration>`. */
export interface CadenceInput {
  cron?: string | undefined;
  every?: string | undefined;
  tz?: string | undefined;
}

export interface CadenceOptions {
  /**
   * The zone of a cadence given without one. Stored in the cadence, so every control
   * process computes the same firings and periods whatever its own zone. Default `UTC`.
   */
  defaultTimeZone?: string;
}

/** No schedule fires more often than this: a snapshot, its retention and a summary each time. */
export const MIN_INTERVAL_MS = 5_000;
/** A year and a day: longer intervals are typos more often than plans. */
export const MAX_INTERVAL_MS = 366 * 86_400_000;

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MAX_CRON_LENGTH = 200;

export function isCronCadence(cadence: ScheduleCadence): cadence is CronCadence {
  return 'pattern' in cadence;
}

/**
 * Validates and normalizes a schedule's cadence: exactly one of `cron` (five fields, or
 * six with seconds first) and `every` (`30s`, `15m`, `1h`, `1d`; at least 5 s), and
 * the zone `tz` (IANA). The zone places a cron expression's times and, for both kinds,
 * the retention's hours, days, weeks and months; an interval counts real time whatever
 * the zone. Throws SnapbotError VALIDATION naming the problem.
 */
export function parseCadence(input: CadenceInput, options: CadenceOptions = {}): ScheduleCadence {
  const { cron, every } = input;
  if (cron !== undefined && every !== undefined) {
    throw new SnapbotError('VALIDATION', 'A schedule takes either a cron expression or an interval (every), not both.');
  }
  if (cron === undefined && every === undefined) {
    throw new SnapbotError('VALIDATION', 'A schedule needs a cron expression (cron) or an interval (every).');
  }
  const tz = normalizeTimeZone(input.tz ?? options.defaultTimeZone ?? 'UTC');
  return every !== undefined ? { every: parseInterval(every), tz } : parseCron(cron!, tz);
}

/** `30s`, `15m`, `1h`, `1d` → milliseconds. */
function parseInterval(text: string): number {
  const shown = JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
  const match = /^([1-9][0-9]{0,9})([smhd])$/.exec(text);
  if (!match) {
    throw new SnapbotError('VALIDATION', `Interval ${shown} is not a duration such as 30s, 15m, 1h or 1d (a whole number and one unit).`);
  }
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  if (ms < MIN_INTERVAL_MS) throw new SnapbotError('VALIDATION', `Interval ${shown} is too short: a schedule fires at most every 5s.`);
  if (ms > MAX_INTERVAL_MS) throw new SnapbotError('VALIDATION', `Interval ${shown} is too long: at most 366d.`);
  return ms;
}

function parseCron(text: string, tz: string): CronCadence {
  const shown = JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);
  if (text.length > MAX_CRON_LENGTH) throw new SnapbotError('VALIDATION', `Cron expression ${shown} is longer than ${MAX_CRON_LENGTH} characters.`);
  const fields = text.trim().split(/\s+/).filter((field) => field.length > 0);
  if (fields.length !== 5 && fields.length !== 6) {
    throw new SnapbotError(
      'VALIDATION',
      `Cron expression ${shown} has ${fields.length} field${fields.length === 1 ? '' : 's'}: give 5 (minute hour day-of-month month day-of-week), or 6 with seconds first.`,
    );
  }
  // cron-parser's "H" picks a value from a hash seed; BullMQ parses the pattern again at
  // every firing, so the time would move around. Day names such as THU are fine.
  if (fields.some((field) => /(^|[^A-Za-z])H($|[^A-Za-z])/.test(field))) {
    throw new SnapbotError('VALIDATION', `Cron expression ${shown} uses "H" (a hashed value); give the minute or hour itself.`);
  }
  const pattern = fields.join(' ');
  let expression;
  try {
    expression = CronExpressionParser.parse(pattern, { tz, currentDate: new Date(0) });
    expression.next();
  } catch (error) {
    const why = (error instanceof Error ? error.message : String(error)).replace(/\.$/, '');
    throw new SnapbotError('VALIDATION', `Cron expression ${shown} is not valid: ${why}.`, { cause: error });
  }
  const seconds = expression.fields.second.values.map(Number).sort((a, b) => a - b);
  if (shortestGapSeconds(seconds) * 1000 < MIN_INTERVAL_MS) {
    throw new SnapbotError('VALIDATION', `Cron expression ${shown} fires more often than every 5 seconds.`);
  }
  return { pattern, tz };
}

/**
 * The shortest gap between firings within a minute, counting the wrap into the next
 * minute (seconds 0 and 58 fire 2 s apart when consecutive minutes both fire).
 */
function shortestGapSeconds(sortedSeconds: number[]): number {
  let shortest = 60;
  sortedSeconds.forEach((second, index) => {
    const next = sortedSeconds[index + 1] ?? sortedSeconds[0]! + 60;
    shortest = Math.min(shortest, next - second);
  });
  return shortest;
}

/**
 * The next `count` firings strictly after `from`, as BullMQ computes them: for a cron
 * cadence, cron-parser's next occurrence in the cadence's zone, each counted from the
 * one before (BullMQ asks again after every firing); for an interval, `from` is taken as
 * a firing and the next ones follow every `every` ms (BullMQ's job scheduler counts from
 * the previous firing, and fires a new interval schedule at once when it is created).
 */
export function nextFirings(cadence: ScheduleCadence, from: Date, count: number): Date[] {
  const firings: Date[] = [];
  let millis = from.getTime();
  for (let i = 0; i < count; i++) {
    millis = isCronCadence(cadence) ? nextCronMillis(cadence, millis) : millis + cadence.every;
    firings.push(new Date(millis));
  }
  return firings;
}

/** BullMQ's defaultRepeatStrategy: `CronExpressionParser.parse(pattern, { ...opts, currentDate }).next()`. */
function nextCronMillis(cadence: CronCadence, millis: number): number {
  return CronExpressionParser.parse(cadence.pattern, { tz: cadence.tz, currentDate: new Date(millis) }).next().getTime();
}

/** The cadence in the words `schedule show` uses: `cron "30 2 * * *" (Europe/Berlin)`, `every 15m`. */
export function describeCadence(cadence: ScheduleCadence): string {
  if (isCronCadence(cadence)) return `cron "${cadence.pattern}" (${cadence.tz})`;
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (cadence.every % UNIT_MS[unit] === 0) return `every ${cadence.every / UNIT_MS[unit]}${unit}`;
  }
  return `every ${cadence.every}ms`;
}
