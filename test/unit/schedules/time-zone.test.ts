import { describe, expect, it } from 'vitest';
import { SnapbotError } from '../../../shared/errors.js';
import { isoWeek, localTimeReader, normalizeTimeZone } from '../../../shared/schedules/time-zone.js';

function refusal(zone: string): SnapbotError {
  try {
    normalizeTimeZone(zone);
  } catch (error) {
    expect(error).toBeInstanceOf(SnapbotError);
    expect((error as SnapbotError).code).toBe('VALIDATION');
    return error as SnapbotError;
  }
  throw new Error(`normalizeTimeZone accepted ${JSON.stringify(zone)}`);
}

describe('normalizeTimeZone', () => {
  it('gives the canonical spelling, the same the second time', () => {
    expect(normalizeTimeZone('europe/berlin')).toBe('Europe/Berlin');
    expect(normalizeTimeZone('europe/berlin')).toBe('Europe/Berlin');
    expect(normalizeTimeZone('GMT')).toBe('UTC');
  });

  it('refuses what is not shaped like a zone name, before asking the zone database', () => {
    for (const zone of ['1Europe/Berlin', '/Europe/Berlin', '+01:00', 'Europe/Berlin ']) {
      expect(refusal(zone).message).toBe(`Time zone ${JSON.stringify(zone)} is not an IANA zone name such as Europe/Berlin or UTC.`);
    }
  });

  it('asks the zone database about a name of up to 64 characters, and refuses a longer one, quoting 64', () => {
    const sixtyFour = `Europe/${'x'.repeat(57)}`;
    expect(refusal(sixtyFour).message).toBe(`Time zone "${sixtyFour}" is not known to this system's time zone database.`);
    const longer = `Europe/${'x'.repeat(70)}`;
    expect(refusal(longer).message).toBe(`Time zone "${longer.slice(0, 64)}…" is not an IANA zone name such as Europe/Berlin or UTC.`);
  });
});

describe('localTimeReader', () => {
  it('reads the wall-clock fields and the UTC offset of an instant in a zone', () => {
    const instant = Date.parse('2026-07-01T12:34:00Z');
    expect(localTimeReader('Asia/Kolkata')(instant)).toEqual({ year: 2026, month: 7, day: 1, hour: 18, offset: '+05:30' });
    expect(localTimeReader('America/New_York')(instant)).toEqual({ year: 2026, month: 7, day: 1, hour: 8, offset: '-04:00' });
    expect(localTimeReader('UTC')(instant)).toEqual({ year: 2026, month: 7, day: 1, hour: 12, offset: '+00:00' });
  });
});

describe('isoWeek', () => {
  it('numbers weeks as ISO 8601 does, Monday first, the Thursday deciding the year', () => {
    expect(isoWeek(2026, 1, 1)).toEqual({ year: 2026, week: 1 }); // a Thursday
    expect(isoWeek(2026, 11, 30)).toEqual({ year: 2026, week: 49 }); // a Monday
    expect(isoWeek(2026, 12, 6)).toEqual({ year: 2026, week: 49 }); // the Sunday after it
    expect(isoWeek(2027, 1, 1)).toEqual({ year: 2026, week: 53 }); // a Friday: the last week of 2026
    expect(isoWeek(2024, 12, 30)).toEqual({ year: 2025, week: 1 }); // a Monday: the first week of 2025
  });
});
