/**
 * Whatever a person types into a slash option, a snapctl flag or a selector: a clean
 * result or VALIDATION, never a crash or a hang; and what is accepted keeps the rules.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseInput } from '../../../bot/core/parse-input.js';
import { checkNameTemplate, fleetMatcher, parseFleetSelector, renderNameTemplate } from '../../../shared/fleet.js';
import { compileGlob, matchesGlob } from '../../../shared/glob.js';
import { snapshotModeSchema } from '../../../shared/jobs.js';
import { descriptionSchema, findHiddenCharacter, hostIdSchema, revealHiddenCharacters, snapshotNameSchema, uuidSchema, vmNameSchema } from '../../../shared/names.js';
import { anyJson, cleanOrValidation, hostileText, RUNS } from './arbitraries.js';

const NAME_SCHEMAS = [
  ['VM name', vmNameSchema, 200],
  ['snapshot name', snapshotNameSchema, 128],
] as const;

describe('names', () => {
  it.each(NAME_SCHEMAS)('a %s is accepted only when it keeps every rule', (_, schema, maxLength) => {
    fc.assert(
      fc.property(hostileText(), (value) => {
        const parsed = schema.safeParse(value);
        if (!parsed.success) {
          expect(parsed.error.issues.length).toBeGreaterThan(0);
          return;
        }
        // zod counts code points, as the messages say "characters".
        expect(value.length).toBeGreaterThanOrEqual(1);
        expect(Array.from(value).length).toBeLessThanOrEqual(maxLength);
        expect(value).not.toContain('/');
        expect(value).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
        expect(findHiddenCharacter(value)).toBeUndefined();
        expect(revealHiddenCharacters(value)).toBe(value);
        expect(value.trim()).toBe(value);
      }),
      { numRuns: RUNS },
    );
  });

  it('a description, host id or UUID is accepted or refused, whatever the value', () => {
    fc.assert(
      fc.property(fc.oneof(hostileText(), anyJson), (value) => {
        for (const schema of [descriptionSchema, hostIdSchema, uuidSchema, vmNameSchema, snapshotNameSchema]) {
          const parsed = schema.safeParse(value);
          if (parsed.success && schema === descriptionSchema) expect(findHiddenCharacter(parsed.data as string)).toBeUndefined();
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('the message refusing a hidden character names it as U+XXXX, never the character itself', () => {
    fc.assert(
      fc.property(hostileText(), (value) => {
        const parsed = vmNameSchema.safeParse(value);
        for (const issue of parsed.success ? [] : parsed.error.issues) expect(findHiddenCharacter(issue.message)).toBeUndefined();
      }),
      { numRuns: RUNS },
    );
  });
});

describe('slash options through parseInput', () => {
  it('give the value or VALIDATION, whatever was sent', () => {
    fc.assert(
      fc.property(fc.oneof(hostileText(), anyJson), (value) => {
        for (const schema of [vmNameSchema, snapshotNameSchema, descriptionSchema, hostIdSchema, snapshotModeSchema]) {
          const result = cleanOrValidation(() => parseInput(schema, value));
          if (!(result instanceof Error)) expect(schema.safeParse(value).success).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fleet selectors', () => {
  const selectorText = fc.oneof(
    hostileText(),
    fc.array(fc.oneof(fc.constantFrom('all', '!', 'host:', '!host:', '*', '**', '?', ',', ' '), hostileText(8)), { maxLength: 12 }).map((words) => words.join(' ')),
  );

  it('parse to a selector whose globs keep the rules, or VALIDATION', () => {
    fc.assert(
      fc.property(selectorText, (text) => {
        const selector = cleanOrValidation(() => parseFleetSelector(text));
        if (selector instanceof Error) return;
        for (const glob of [...selector.vms, ...selector.hosts, ...selector.excludeVms, ...selector.excludeHosts]) {
          expect(glob.length).toBeGreaterThan(0);
          expect(glob.length).toBeLessThanOrEqual(200);
          expect(glob).not.toMatch(/[\u0000-\u001f\u007f]/);
        }
        expect(parseFleetSelector(selector.text)).toEqual(selector);
      }),
      { numRuns: RUNS },
    );
  });

  it('match any host and VM name, however long, without a hang', () => {
    fc.assert(
      fc.property(selectorText, hostileText(), fc.string({ unit: fc.constantFrom('a', '-', '*', '?', 'é'), maxLength: 2000 }), (text, host, vm) => {
        let matches: ((hostId: string, vm: string) => boolean) | undefined;
        try {
          matches = fleetMatcher(parseFleetSelector(text));
        } catch {
          return;
        }
        expect(typeof matches(host, vm)).toBe('boolean');
      }),
      { numRuns: RUNS },
    );
  });
});

describe('globs', () => {
  /** The same language as a RegExp, for short inputs only (the RegExp backtracks on long ones). */
  function reference(value: string, glob: string): boolean {
    const body = Array.from(glob, (character) => (character === '*' ? '[\\s\\S]*' : character === '?' ? '[\\s\\S]' : character.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'))).join('');
    return new RegExp(`^${body}$`, 'u').test(value);
  }
  const short = fc.string({ unit: fc.constantFrom('a', 'b', '*', '?', '.', '😀', '\n'), maxLength: 8 });

  it('agree with the RegExp they replace', () => {
    fc.assert(
      fc.property(short, short, (value, glob) => {
        expect(matchesGlob(value, glob)).toBe(reference(value, glob));
        expect(compileGlob(glob)(value)).toBe(reference(value, glob));
      }),
      { numRuns: 500 },
    );
  });

  it('every name matches itself with its wildcards escaped out, and * matches everything', () => {
    fc.assert(
      fc.property(hostileText(), (value) => {
        expect(matchesGlob(value, '*')).toBe(true);
        expect(matchesGlob(value, value.replace(/[*?]/g, '?'))).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fleet name templates', () => {
  it('are refused with VALIDATION for unknown fields, and fill in any VM and host name', () => {
    fc.assert(
      fc.property(hostileText(), hostileText(), hostileText(), fc.date({ noInvalidDate: true }), (template, vm, host, at) => {
        const checked = cleanOrValidation(() => checkNameTemplate(template));
        if (checked instanceof Error) return;
        const name = renderNameTemplate(template, { vm, host, at });
        if (!/\{(vm|host|date|time)\}/.test(template)) expect(name).toBe(template);
        if (!/[{}]/.test(vm + host)) expect(name).not.toMatch(/\{(vm|host|date|time)\}/);
        snapshotNameSchema.safeParse(name);
      }),
      { numRuns: RUNS },
    );
  });
});
