import { z } from 'zod';
import { SnapbotError } from '../errors.js';

/**
 * Keep specs, sanoid-style: `last=N` and any of `hourly=N,daily=N,weekly=N,monthly=N`,
 * combinable (`last=3,daily=7`): a snapshot kept by any rule is kept. retention.ts
 * says what each rule keeps.
 *
 * The parser is strict: a typo must not quietly keep fewer snapshots than meant.
 */

/** The rules in canonical order (the order `formatKeepSpec` writes them). */
export const KEEP_RULES = ['last', 'hourly', 'daily', 'weekly', 'monthly'] as const;
export type KeepRule = (typeof KEEP_RULES)[number];

/** Rules that keep one snapshot per calendar period. */
export const PERIOD_RULES = ['hourly', 'daily', 'weekly', 'monthly'] as const satisfies readonly KeepRule[];
export type PeriodRule = (typeof PERIOD_RULES)[number];

export const MIN_KEEP = 1;
export const MAX_KEEP = 1000;
/** Longer than any sensible spec (the longest valid one is about 60 characters). */
const MAX_SPEC_LENGTH = 200;

/** A parsed keep spec: at least one rule, each with a count in 1..1000. */
export type KeepSpec = Readonly<Partial<Record<KeepRule, number>>>;

const keepCountSchema = z.number().int().min(MIN_KEEP).max(MAX_KEEP);

/** The stored form of a keep spec (schedule definitions, job data). */
export const keepSpecSchema = z
  .strictObject({
    last: keepCountSchema.optional(),
    hourly: keepCountSchema.optional(),
    daily: keepCountSchema.optional(),
    weekly: keepCountSchema.optional(),
    monthly: keepCountSchema.optional(),
  })
  .refine((spec) => KEEP_RULES.some((rule) => spec[rule] !== undefined), 'A keep spec needs at least one rule.');

function isKeepRule(value: string): value is KeepRule {
  return (KEEP_RULES as readonly string[]).includes(value);
}

function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

function invalid(problem: string): SnapbotError {
  return new SnapbotError('VALIDATION', `Keep spec: ${problem}`);
}

/**
 * Parses `last=7` or `hourly=24,daily=7,weekly=4,monthly=6` (any combination, each rule
 * once, counts 1..1000, no spaces). Throws SnapbotError VALIDATION with a sentence that
 * names the problem.
 */
export function parseKeepSpec(text: string): KeepSpec {
  const example = 'write it like last=7 or hourly=24,daily=7,weekly=4,monthly=6.';
  if (text.length === 0) throw invalid(`it is empty; ${example}`);
  if (text.length > MAX_SPEC_LENGTH) throw invalid(`it is longer than ${MAX_SPEC_LENGTH} characters.`);
  if (/\s/.test(text)) {
    throw invalid(`${quote(text)} contains spaces; ${example.replace('write it', 'write it without spaces,')}`);
  }
  const spec: Partial<Record<KeepRule, number>> = {};
  for (const item of text.split(',')) {
    if (item.length === 0) throw invalid(`${quote(text)} has an empty rule (a stray comma).`);
    const equals = item.indexOf('=');
    if (equals < 0) throw invalid(`${quote(item)} has no count; ${example}`);
    const key = item.slice(0, equals);
    const count = item.slice(equals + 1);
    if (key.length === 0) throw invalid(`${quote(item)} has no rule name before "="; the rules are ${KEEP_RULES.join(', ')}.`);
    if (!isKeepRule(key)) throw invalid(`${quote(key)} is not a rule; the rules are ${KEEP_RULES.join(', ')}.`);
    if (spec[key] !== undefined) throw invalid(`${key} is given more than once.`);
    spec[key] = parseCount(key, count);
  }
  return spec;
}

function parseCount(rule: KeepRule, count: string): number {
  if (count.length === 0) throw invalid(`${rule} has no count after "=".`);
  // Digits only, without leading zeros: "07", "+7", "7.0" and "1e2" are refused rather than guessed at.
  if (!/^(0|[1-9][0-9]*)$/.test(count)) {
    throw invalid(`${rule}=${quote(count)}: the count must be a whole number from ${MIN_KEEP} to ${MAX_KEEP}.`);
  }
  const value = Number(count);
  if (value < MIN_KEEP || value > MAX_KEEP) {
    throw invalid(`${rule}=${count} is out of range: the count must be from ${MIN_KEEP} to ${MAX_KEEP}.`);
  }
  return value;
}

/** The canonical text of a keep spec (rules in KEEP_RULES order): parseKeepSpec reads it back. */
export function formatKeepSpec(spec: KeepSpec): string {
  const valid = keepSpecSchema.safeParse(spec);
  if (!valid.success) throw invalid(valid.error.issues[0]?.message ?? 'it is not a valid keep spec.');
  return KEEP_RULES.filter((rule) => spec[rule] !== undefined)
    .map((rule) => `${rule}=${spec[rule]}`)
    .join(',');
}
