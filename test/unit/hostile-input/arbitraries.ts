import fc from 'fast-check';
import { expect } from 'vitest';
import { SnapbotError } from '../../../shared/errors.js';

/**
 * What hostile input is made of: markup and shell characters, control and hidden
 * characters, lone surrogates, astral characters, option-looking words, long runs.
 * Runs stay modest (see RUNS) so the unit suite stays fast.
 */
export const RUNS = 300;

const special = fc.constantFrom(
  '*', '?', '!', ':', ',', ' ', '\t', '\n', '\r', '/', '\\', '.', '..', '-', '--', '{', '}', '[', ']', '`', '"', "'", '$', '|', '@', '#', '<', '>', '~', '_',
  '\u0000', '\u0007', '\u001b', '\u007f', '\u0085', '\u00a0', '\u00ad', '\u200b', '\u200d', '\u202e', '\u2066', '\u2028', '\ufeff', '\u{e0041}',
  '\ud800', '\udfff', '😀', '👩‍💻', '❤️', 'é', '快', 'host:', 'all', '{vm}', '{date}', '{nope}',
); // prettier-ignore

/** One piece of hostile text. */
export const hostileUnit = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 3 }) },
  { weight: 3, arbitrary: special },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 2 }) },
);

/** Hostile text of up to `maxLength` pieces; sometimes one character repeated many times. */
export function hostileText(maxLength = 40): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.array(hostileUnit, { maxLength }).map((parts) => parts.join('')) },
    { weight: 1, arbitrary: fc.tuple(special, fc.integer({ min: 100, max: 3000 })).map(([part, count]) => part.repeat(count)) },
  );
}

/** Any JSON-like value, as found in Redis or a config file. */
export const anyJson = fc.oneof(fc.jsonValue(), fc.anything({ withNullPrototype: true, withBigInt: false }));

/** `work()` succeeds, or fails with a VALIDATION SnapbotError: never anything else. */
export function cleanOrValidation<T>(work: () => T): T | SnapbotError {
  try {
    return work();
  } catch (error) {
    expect(error, String(error)).toBeInstanceOf(SnapbotError);
    expect((error as SnapbotError).code).toBe('VALIDATION');
    return error as SnapbotError;
  }
}
