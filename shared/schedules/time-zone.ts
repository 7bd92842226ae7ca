import { SnapbotError } from '../errors.js';

/**
 * Time zones for schedules: validated once with Intl (the same zone database luxon,
 * and so cron-parser and BullMQ, read), stored by their canonical name so every
 * control process computes the same firings and the same retention periods.
 */

// IANA names (`Europe/Berlin`, `America/Argentina/Buenos_Aires`, `Etc/GMT+1`, `UTC`).
// Offsets such as `+01:00` are refused: newer Intl versions accept them, luxon does not,
// and a fixed offset would silently ignore the summer-time change operators expect.
const ZONE_SHAPE = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/;
const MAX_ZONE_LENGTH = 64;
// Building an Intl formatter costs far more than using one; schedules share a few zones.
const canonicalZones = new Map<string, string>();
const formatters = new Map<string, Intl.DateTimeFormat>();

/**
 * The canonical spelling of an IANA time zone (`europe/berlin` → `Europe/Berlin`,
 * `GMT` → `UTC`); VALIDATION naming the zone when Intl does not know it.
 */
export function normalizeTimeZone(zone: string): string {
  const shown = JSON.stringify(zone.length > MAX_ZONE_LENGTH ? `${zone.slice(0, MAX_ZONE_LENGTH)}…` : zone);
  if (zone.length === 0 || zone.length > MAX_ZONE_LENGTH || !ZONE_SHAPE.test(zone)) {
    throw new SnapbotError('VALIDATION', `Time zone ${shown} is not an IANA zone name such as Europe/Berlin or UTC.`);
  }
  const known = canonicalZones.get(zone);
  if (known !== undefined) return known;
  try {
    const canonical = new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
    canonicalZones.set(zone, canonical);
    return canonical;
  } catch {
    throw new SnapbotError('VALIDATION', `Time zone ${shown} is not known to this system's time zone database.`);
  }
}

/** An instant's wall-clock calendar fields in a zone, and the zone's UTC offset then. */
export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  /** `+02:00`, `-05:00`, `+00:00`: tells apart the two 02:00 hours of a fall-back night. */
  offset: string;
}

/** Reads wall-clock fields of instants in one zone (one Intl formatter per zone, reused). */
export function localTimeReader(zone: string): (instantMs: number) => LocalTime {
  const format = formatters.get(zone) ?? new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'longOffset',
  });
  formatters.set(zone, format);
  return (instantMs) => {
    const parts: Record<string, string> = {};
    for (const part of format.formatToParts(instantMs)) parts[part.type] = part.value;
    // longOffset prints "GMT" alone for a zero offset, "GMT+05:30" otherwise.
    const offset = (parts.timeZoneName ?? 'GMT').replace(/^GMT/, '') || '+00:00';
    return { year: Number(parts.year), month: Number(parts.month), day: Number(parts.day), hour: Number(parts.hour), offset };
  };
}

/** ISO 8601 week-numbering year and week (weeks start on Monday) of a calendar date. */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const date = new Date(Date.UTC(year, month - 1, day));
  const weekday = date.getUTCDay() || 7;
  // The Thursday of this week decides which year the week belongs to.
  date.setUTCDate(date.getUTCDate() + 4 - weekday);
  const weekYear = date.getUTCFullYear();
  const firstDay = Date.UTC(weekYear, 0, 1);
  const week = Math.floor((date.getTime() - firstDay) / 86_400_000 / 7) + 1;
  return { year: weekYear, week };
}
