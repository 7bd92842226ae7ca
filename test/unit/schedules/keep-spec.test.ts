import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SnapbotError } from '../../../shared/errors.js';
import { formatKeepSpec, KEEP_RULES, keepSpecSchema, parseKeepSpec, type KeepSpec } from '../../../shared/schedules/keep-spec.js';

function refusal(text: string): SnapbotError {
  try {
    parseKeepSpec(text);
  } catch (error) {
    expect(error).toBeInstanceOf(SnapbotError);
    expect((error as SnapbotError).code).toBe('VALIDATION');
    return error as SnapbotError;
  }
  throw new Error(`parseKeepSpec accepted ${JSON.stringify(text)}`);
}

describe('parseKeepSpec', () => {
  it('reads last=N alone', () => {
    expect(parseKeepSpec('last=2')).toEqual({ last: 2 });
  });

  it('reads every period rule, in any order, and last with them', () => {
    expect(parseKeepSpec('hourly=24,daily=7,weekly=4,monthly=6')).toEqual({ hourly: 24, daily: 7, weekly: 4, monthly: 6 });
    expect(parseKeepSpec('monthly=12,last=3')).toEqual({ last: 3, monthly: 12 });
    expect(parseKeepSpec('weekly=1')).toEqual({ weekly: 1 });
  });

  it('accepts counts from 1 to 1000', () => {
    expect(parseKeepSpec('last=1')).toEqual({ last: 1 });
    expect(parseKeepSpec('daily=1000')).toEqual({ daily: 1000 });
  });

  it('refuses an empty spec', () => {
    expect(refusal('').message).toMatch(/empty/);
  });

  it('refuses counts outside 1..1000, naming the rule', () => {
    expect(refusal('last=0').message).toMatch(/last=0 is out of range.*1 to 1000/);
    expect(refusal('daily=1001').message).toMatch(/daily=1001 is out of range/);
    expect(refusal('daily=99999999999999999999').message).toMatch(/out of range/);
  });

  it('refuses counts that are not plain whole numbers', () => {
    for (const text of ['last=-1', 'last=+1', 'last=1.5', 'last=1e2', 'last=07', 'last=0x10', 'last=two', 'last=１']) {
      expect(refusal(text).message).toMatch(/whole number from 1 to 1000/);
    }
  });

  it('refuses unknown rules and says which rules exist', () => {
    expect(refusal('yearly=1').message).toMatch(/"yearly" is not a rule; the rules are last, hourly, daily, weekly, monthly/);
    expect(refusal('Daily=7').message).toMatch(/"Daily" is not a rule/);
    expect(refusal('frequently=4,daily=7').message).toMatch(/"frequently" is not a rule/);
  });

  it('refuses a rule given twice', () => {
    expect(refusal('daily=7,daily=3').message).toMatch(/daily is given more than once/);
    expect(refusal('last=1,hourly=2,last=1').message).toMatch(/last is given more than once/);
  });

  it('refuses spaces anywhere', () => {
    for (const text of [' last=2', 'last=2 ', 'last =2', 'last= 2', 'last=2, daily=7', 'last=2,\tdaily=7', 'last=2\n']) {
      expect(refusal(text).message).toMatch(/contains spaces/);
    }
  });

  it('refuses stray commas, missing counts and missing names', () => {
    expect(refusal('last=2,').message).toMatch(/empty rule/);
    expect(refusal(',last=2').message).toMatch(/empty rule/);
    expect(refusal('last=2,,daily=1').message).toMatch(/empty rule/);
    expect(refusal('last').message).toMatch(/"last" has no count/);
    expect(refusal('last=').message).toMatch(/last has no count after "="/);
    expect(refusal('=2').message).toMatch(/no rule name/);
    expect(refusal('last==2').message).toMatch(/whole number/);
    expect(refusal('last=2=3').message).toMatch(/whole number/);
  });

  it('refuses a very long spec without quoting all of it', () => {
    const error = refusal(`last=1,${'x'.repeat(5000)}`);
    expect(error.message.length).toBeLessThan(200);
  });

  it('never throws anything but a VALIDATION error, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        try {
          const spec = parseKeepSpec(text);
          expect(keepSpecSchema.safeParse(spec).success).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(SnapbotError);
          expect((error as SnapbotError).code).toBe('VALIDATION');
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('formatKeepSpec', () => {
  it('writes the rules in canonical order', () => {
    expect(formatKeepSpec({ monthly: 6, last: 3, daily: 7 })).toBe('last=3,daily=7,monthly=6');
    expect(formatKeepSpec(parseKeepSpec('weekly=4,hourly=24'))).toBe('hourly=24,weekly=4');
  });

  it('refuses specs that parseKeepSpec would refuse', () => {
    expect(() => formatKeepSpec({})).toThrow(SnapbotError);
    expect(() => formatKeepSpec({ last: 0 })).toThrow(SnapbotError);
    expect(() => formatKeepSpec({ daily: 2.5 })).toThrow(SnapbotError);
    expect(() => formatKeepSpec({ yearly: 1 } as KeepSpec)).toThrow(SnapbotError);
  });

  it('round-trips every valid spec: parse(format(spec)) is spec, format(parse(text)) is canonical', () => {
    const count = fc.integer({ min: 1, max: 1000 });
    const spec = fc
      .record(Object.fromEntries(KEEP_RULES.map((rule) => [rule, count])) as Record<(typeof KEEP_RULES)[number], fc.Arbitrary<number>>, {
        requiredKeys: [],
      })
      .filter((value) => Object.keys(value).length > 0);
    fc.assert(
      fc.property(spec, fc.infiniteStream(fc.integer()), (value, randoms) => {
        const text = formatKeepSpec(value);
        expect(parseKeepSpec(text)).toEqual(value);
        // The same rules in any order read the same and format back to the canonical text.
        const shuffled = text
          .split(',')
          .map((item) => ({ item, key: randoms.next().value as number }))
          .sort((a, b) => a.key - b.key)
          .map(({ item }) => item)
          .join(',');
        expect(formatKeepSpec(parseKeepSpec(shuffled))).toBe(text);
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseKeepSpec: what it says', () => {
  const example = 'write it like last=7 or hourly=24,daily=7,weekly=4,monthly=6.';

  it('says an empty spec is empty, with an example', () => {
    expect(refusal('').message).toBe(`Keep spec: it is empty; ${example}`);
  });

  it('says a spec with spaces is to be written without them', () => {
    expect(refusal('last=2 ').message).toBe('Keep spec: "last=2 " contains spaces; write it without spaces, like last=7 or hourly=24,daily=7,weekly=4,monthly=6.');
  });

  it('lists the rules when a name is missing', () => {
    expect(refusal('=2').message).toBe('Keep spec: "=2" has no rule name before "="; the rules are last, hourly, daily, weekly, monthly.');
  });

  it('refuses over 200 characters for the length alone, and reads 200 to say what is wrong', () => {
    expect(refusal(`last=1,${'x'.repeat(194)}`).message).toBe('Keep spec: it is longer than 200 characters.');
    expect(refusal(`last=1,${'x'.repeat(193)}`).message).toMatch(/has no count/);
  });

  it('quotes at most 40 characters of a rule it does not know', () => {
    expect(refusal(`${'y'.repeat(45)}=1`).message).toBe(`Keep spec: "${'y'.repeat(40)}…" is not a rule; the rules are last, hourly, daily, weekly, monthly.`);
    expect(refusal(`${'y'.repeat(40)}=1`).message).toBe(`Keep spec: "${'y'.repeat(40)}" is not a rule; the rules are last, hourly, daily, weekly, monthly.`);
  });
});

describe('formatKeepSpec: what it says', () => {
  it('says a spec needs at least one rule', () => {
    expect(() => formatKeepSpec({})).toThrow('Keep spec: A keep spec needs at least one rule.');
    expect(keepSpecSchema.safeParse({}).error?.issues[0]?.message).toBe('A keep spec needs at least one rule.');
  });
});
