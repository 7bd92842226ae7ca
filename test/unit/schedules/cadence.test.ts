import { defaultRepeatStrategy } from 'bullmq';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SnapbotError } from '../../../shared/errors.js';
import { describeCadence, isCronCadence, nextFirings, parseCadence, type CadenceInput } from '../../../shared/schedules/cadence.js';

function refusal(input: CadenceInput): SnapbotError {
  try {
    parseCadence(input);
  } catch (error) {
    expect(error).toBeInstanceOf(SnapbotError);
    expect((error as SnapbotError).code).toBe('VALIDATION');
    return error as SnapbotError;
  }
  throw new Error(`parseCadence accepted ${JSON.stringify(input)}`);
}

/** The stored pattern of a cron cadence. */
function patternOf(cron: string): string {
  const cadence = parseCadence({ cron });
  if (!isCronCadence(cadence)) throw new Error('not a cron cadence');
  return cadence.pattern;
}

/** The wall-clock date and time of an instant in a zone, as `2026-03-29 03:30`. */
function wallClock(instant: Date, zone: string): string {
  return new Intl.DateTimeFormat('sv-SE', { timeZone: zone, dateStyle: 'short', timeStyle: 'short' }).format(instant);
}

describe('parseCadence: cron', () => {
  it('takes five fields, with the zone given or UTC', () => {
    expect(parseCadence({ cron: '30 2 * * *', tz: 'Europe/Berlin' })).toEqual({ pattern: '30 2 * * *', tz: 'Europe/Berlin' });
    expect(parseCadence({ cron: '0 */6 * * 1-5' })).toEqual({ pattern: '0 */6 * * 1-5', tz: 'UTC' });
  });

  it('takes six fields with seconds first', () => {
    expect(parseCadence({ cron: '*/5 * * * * *' })).toEqual({ pattern: '*/5 * * * * *', tz: 'UTC' });
    expect(parseCadence({ cron: '0 30 2 * * *', tz: 'Europe/Berlin' })).toEqual({ pattern: '0 30 2 * * *', tz: 'Europe/Berlin' });
  });

  it('uses the caller’s default zone when none is given, and stores it', () => {
    expect(parseCadence({ cron: '0 3 * * *' }, { defaultTimeZone: 'America/New_York' })).toEqual({ pattern: '0 3 * * *', tz: 'America/New_York' });
    expect(parseCadence({ cron: '0 3 * * *', tz: 'Asia/Tokyo' }, { defaultTimeZone: 'America/New_York' }).tz).toBe('Asia/Tokyo');
  });

  it('stores the canonical spelling of the zone and single spaces between fields', () => {
    expect(parseCadence({ cron: '  30   2 * *\t* ', tz: 'europe/berlin' })).toEqual({ pattern: '30 2 * * *', tz: 'Europe/Berlin' });
    expect(parseCadence({ cron: '0 0 * * *', tz: 'GMT' }).tz).toBe('UTC');
  });

  it('accepts names, steps, ranges, lists, L and #', () => {
    for (const cron of ['0 2 * * MON-FRI', '0 2 1,15 * *', '0 2 L * *', '0 2 * * 1#2', '0 2 ? * SUN', '15 1 * JAN,JUL THU']) {
      expect(patternOf(cron)).toBe(cron);
    }
  });

  it('refuses anything but five or six fields, naming the count', () => {
    expect(refusal({ cron: '* * * *' }).message).toMatch(/has 4 fields: give 5 .*or 6 with seconds first/);
    expect(refusal({ cron: '0 0 0 * * * 2026' }).message).toMatch(/has 7 fields/);
    expect(refusal({ cron: '@daily' }).message).toMatch(/has 1 field:/);
    expect(refusal({ cron: '' }).message).toMatch(/has 0 fields/);
  });

  it('refuses values cron-parser refuses, with its reason', () => {
    expect(refusal({ cron: '60 * * * *' }).message).toMatch(/is not valid: Constraint error, got value 60 expected range 0-59/);
    expect(refusal({ cron: '0 0 30 2 *' }).message).toMatch(/is not valid/);
    expect(refusal({ cron: 'a b c d e' }).message).toMatch(/is not valid/);
  });

  it('refuses hashed values, whose time would move between firings', () => {
    expect(refusal({ cron: 'H 2 * * *' }).message).toMatch(/"H"/);
    expect(refusal({ cron: '0 H(0-5) * * *' }).message).toMatch(/"H"/);
  });

  it('refuses expressions that fire more often than every 5 seconds', () => {
    expect(refusal({ cron: '* * * * * *' }).message).toMatch(/more often than every 5 seconds/);
    expect(refusal({ cron: '*/4 * * * * *' }).message).toMatch(/more often/);
    expect(refusal({ cron: '0,58 * * * * *' }).message).toMatch(/more often/);
    expect(patternOf('0,30 * * * * *')).toBe('0,30 * * * * *');
  });

  it('refuses unknown zones and offsets', () => {
    expect(refusal({ cron: '0 2 * * *', tz: 'Mars/Olympus_Mons' }).message).toMatch(/"Mars\/Olympus_Mons" is not known/);
    expect(refusal({ cron: '0 2 * * *', tz: '+01:00' }).message).toMatch(/not an IANA zone name/);
    expect(refusal({ cron: '0 2 * * *', tz: '' }).message).toMatch(/not an IANA zone name/);
    expect(refusal({ cron: '0 2 * * *', tz: 'Europe/Berlin ' }).message).toMatch(/not an IANA zone name/);
  });
});

describe('parseCadence: every', () => {
  it('takes seconds, minutes, hours and days', () => {
    expect(parseCadence({ every: '30s' })).toEqual({ every: 30_000, tz: 'UTC' });
    expect(parseCadence({ every: '15m' })).toEqual({ every: 900_000, tz: 'UTC' });
    expect(parseCadence({ every: '1h' })).toEqual({ every: 3_600_000, tz: 'UTC' });
    expect(parseCadence({ every: '1d' })).toEqual({ every: 86_400_000, tz: 'UTC' });
    expect(parseCadence({ every: '5s' })).toEqual({ every: 5_000, tz: 'UTC' });
  });

  it('refuses less than 5 seconds and more than 366 days', () => {
    expect(refusal({ every: '4s' }).message).toMatch(/too short.*5s/);
    expect(refusal({ every: '367d' }).message).toMatch(/too long/);
    expect(parseCadence({ every: '366d' })).toEqual({ every: 366 * 86_400_000, tz: 'UTC' });
  });

  it('refuses anything but a whole number and one unit', () => {
    for (const every of ['', '0s', '1.5h', '90', '1w', '1h30m', ' 1h', '1H', '-5m', '05m', '1e3s', '99999999999d']) {
      expect(refusal({ every }).message).toMatch(/is not a duration such as 30s, 15m, 1h or 1d/);
    }
  });

  it('keeps the zone of an interval schedule for its retention periods', () => {
    expect(parseCadence({ every: '1h', tz: 'europe/berlin' })).toEqual({ every: 3_600_000, tz: 'Europe/Berlin' });
    expect(parseCadence({ every: '1h' }, { defaultTimeZone: 'Asia/Tokyo' })).toEqual({ every: 3_600_000, tz: 'Asia/Tokyo' });
    expect(refusal({ every: '1h', tz: 'Nowhere/Atlantis' }).message).toMatch(/not known/);
  });

  it('refuses both or neither of cron and every', () => {
    expect(refusal({ every: '1h', cron: '0 * * * *' }).message).toMatch(/not both/);
    expect(refusal({}).message).toMatch(/needs a cron expression/);
  });
});

describe('describeCadence', () => {
  it('says a cadence in the words users typed', () => {
    expect(describeCadence({ pattern: '30 2 * * *', tz: 'Europe/Berlin' })).toBe('cron "30 2 * * *" (Europe/Berlin)');
    expect(describeCadence({ every: 86_400_000, tz: 'UTC' })).toBe('every 1d');
    expect(describeCadence({ every: 90_000, tz: 'UTC' })).toBe('every 90s');
    expect(describeCadence({ every: 7_200_000, tz: 'Europe/Berlin' })).toBe('every 2h');
  });
});

describe('nextFirings', () => {
  it('fires a daily 02:30 Europe/Berlin schedule exactly once on the spring-forward day of 2026 (at 03:30, as 02:30 does not exist)', () => {
    const cadence = parseCadence({ cron: '30 2 * * *', tz: 'Europe/Berlin' });
    // The fake clock: BullMQ asks cron-parser from the previous firing; start the day before.
    const firings = nextFirings(cadence, new Date('2026-03-27T12:00:00Z'), 4);
    const onTheDay = firings.filter((firing) => wallClock(firing, 'Europe/Berlin').startsWith('2026-03-29'));
    expect(onTheDay.map((firing) => firing.toISOString())).toEqual(['2026-03-29T01:30:00.000Z']);
    expect(firings.map((firing) => wallClock(firing, 'Europe/Berlin'))).toEqual([
      '2026-03-28 02:30',
      '2026-03-29 03:30',
      '2026-03-30 02:30',
      '2026-03-31 02:30',
    ]);
  });

  it('fires it exactly once on the fall-back day of 2026 (at the first 02:30, summer time)', () => {
    const cadence = parseCadence({ cron: '30 2 * * *', tz: 'Europe/Berlin' });
    const firings = nextFirings(cadence, new Date('2026-10-23T12:00:00Z'), 4);
    const onTheDay = firings.filter((firing) => wallClock(firing, 'Europe/Berlin').startsWith('2026-10-25'));
    // 02:30 happens twice that night (00:30Z in summer time, 01:30Z in winter time): only the first fires.
    expect(onTheDay.map((firing) => firing.toISOString())).toEqual(['2026-10-25T00:30:00.000Z']);
    expect(firings.map((firing) => firing.toISOString())).toEqual([
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
      '2026-10-27T01:30:00.000Z',
    ]);
  });

  it('fires exactly once per day through both changes, the six-field form too, from any hour of the day before', () => {
    for (const cron of ['30 2 * * *', '0 30 2 * * *']) {
      const cadence = parseCadence({ cron, tz: 'Europe/Berlin' });
      for (const day of ['2026-03-29', '2026-10-25']) {
        for (let hour = 0; hour < 24; hour++) {
          const from = new Date(Date.parse(`${day}T00:00:00Z`) - 86_400_000 + hour * 3_600_000);
          const onTheDay = nextFirings(cadence, from, 3).filter((firing) => wallClock(firing, 'Europe/Berlin').startsWith(day));
          expect(onTheDay, `${cron} from ${from.toISOString()}`).toHaveLength(1);
        }
      }
    }
  });

  it('counts firings strictly after the clock', () => {
    const cadence = parseCadence({ cron: '0 3 * * *' });
    expect(nextFirings(cadence, new Date('2026-06-01T03:00:00Z'), 1)).toEqual([new Date('2026-06-02T03:00:00Z')]);
    expect(nextFirings(cadence, new Date('2026-06-01T02:59:59.999Z'), 1)).toEqual([new Date('2026-06-01T03:00:00Z')]);
  });

  it('follows an interval from the previous firing', () => {
    const from = new Date('2026-06-01T10:00:07.250Z');
    expect(nextFirings({ every: 15 * 60_000, tz: 'UTC' }, from, 3).map((firing) => firing.toISOString())).toEqual([
      '2026-06-01T10:15:07.250Z',
      '2026-06-01T10:30:07.250Z',
      '2026-06-01T10:45:07.250Z',
    ]);
    expect(nextFirings({ every: 5_000, tz: 'UTC' }, from, 0)).toEqual([]);
  });

  it('agrees with BullMQ’s own repeat strategy for cron cadences', () => {
    const cadences = [
      ['30 2 * * *', 'Europe/Berlin'],
      ['0 30 2 * * *', 'Europe/Berlin'],
      ['*/15 * * * *', 'America/New_York'],
      ['0 0 * * 0', 'Australia/Lord_Howe'],
      ['*/5 * * * * *', 'UTC'],
      ['0 9 1 * *', 'Asia/Kolkata'],
      ['45 23 * * 1-5', 'America/Sao_Paulo'],
      ['0 2 L * *', 'Pacific/Chatham'],
    ].map(([cron, tz]) => parseCadence({ cron, tz }));
    const instant = fc.integer({ min: Date.parse('2024-01-01T00:00:00Z'), max: Date.parse('2030-12-31T00:00:00Z') });
    fc.assert(
      fc.property(fc.constantFrom(...cadences), instant, (cadence, from) => {
        const ours = nextFirings(cadence, new Date(from), 3).map((firing) => firing.getTime());
        const bullmq: number[] = [];
        let millis = from;
        for (let i = 0; i < 3; i++) {
          millis = defaultRepeatStrategy(millis, { ...cadence })!;
          bullmq.push(millis);
        }
        expect(ours).toEqual(bullmq);
      }),
      { numRuns: 150 },
    );
  });
});

describe('parseCadence: what it says', () => {
  it('quotes at most 40 characters of an interval it cannot read', () => {
    expect(refusal({ every: 'x'.repeat(45) }).message).toBe(`Interval "${'x'.repeat(40)}…" is not a duration such as 30s, 15m, 1h or 1d (a whole number and one unit).`);
    expect(refusal({ every: 'x'.repeat(40) }).message).toBe(`Interval "${'x'.repeat(40)}" is not a duration such as 30s, 15m, 1h or 1d (a whole number and one unit).`);
  });

  it('refuses a cron expression over 200 characters for its length, quoting 60 of them', () => {
    const long = `0 2 * * ${'1,'.repeat(96)}2`;
    expect(long).toHaveLength(201);
    const error = refusal({ cron: long });
    expect(error.message).toBe(`Cron expression "${long.slice(0, 60)}…" is longer than 200 characters.`);
    // 200 characters are read, and told what is wrong with them.
    expect(refusal({ cron: long.slice(0, 200) }).message).toMatch(/is not valid/);
    expect(refusal({ cron: `${'1 '.repeat(30)}` }).message).toBe(`Cron expression "${'1 '.repeat(30)}" has 30 fields: give 5 (minute hour day-of-month month day-of-week), or 6 with seconds first.`);
    expect(refusal({ cron: `${'1 '.repeat(31)}` }).message).toMatch(new RegExp(`^Cron expression "${'1 '.repeat(30)}…" has 31 fields`));
  });

  it('refuses "H" inside a list too', () => {
    expect(refusal({ cron: '0,H * * * *' }).message).toBe('Cron expression "0,H * * * *" uses "H" (a hashed value); give the minute or hour itself.');
  });

  it('gives cron-parser’s reason whole, and keeps its error as the cause', () => {
    const error = refusal({ cron: '1.5 * * * *' });
    expect(error.message).toBe('Cron expression "1.5 * * * *" is not valid: Invalid characters, got value: 1.5.');
    expect(error.cause).toBeInstanceOf(Error);
    expect((error.cause as Error).message).toBe('Invalid characters, got value: 1.5');
    // A reason that ends with its own full stop gets one, not two.
    expect(refusal({ cron: '*/0 * * * *' }).message).toBe('Cron expression "*/0 * * * *" is not valid: Constraint error, cannot repeat at every 0 time.');
  });
});

describe('describeCadence: an interval that is not whole seconds', () => {
  it('says it in milliseconds', () => {
    expect(describeCadence({ every: 1_500, tz: 'UTC' })).toBe('every 1500ms');
  });
});
