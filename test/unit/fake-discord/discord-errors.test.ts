/**
 * The 50035 error tree and the mapping of schema issues to Discord's codes and paths.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { formErrorTree, invalidFormBody, zodFormErrors } from '../../fixtures/fake-discord/discord-errors.js';
import { flattenFormErrors } from '../../fixtures/fake-discord/refusal-log.js';

describe('Discord form errors', () => {
  it('nests errors down to the bad value and shares one _errors list per path', () => {
    const tree = formErrorTree([
      { path: [0, 'options', 2], code: 'A', message: 'a' },
      { path: [0, 'options', 2], code: 'B', message: 'b' },
      { path: ['content'], code: 'C', message: 'c' },
    ]);
    expect(tree).toEqual({ '0': { options: { '2': { _errors: [{ code: 'A', message: 'a' }, { code: 'B', message: 'b' }] } } }, content: { _errors: [{ code: 'C', message: 'c' }] } });
    expect(invalidFormBody([])).toBeNull();
    expect(invalidFormBody([{ path: [], code: 'APPLICATION_COMMAND_TOO_LARGE', message: 'Command exceeds maximum size (8000)' }])).toEqual({
      status: 400,
      body: { code: 50035, message: 'Invalid Form Body', errors: { _errors: [{ code: 'APPLICATION_COMMAND_TOO_LARGE', message: 'Command exceeds maximum size (8000)' }] } },
    });
  });

  it('flattens a tree the way discord.js prints it', () => {
    const tree = formErrorTree([{ path: [0, 'options', 2, 'options', 2], code: 'APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID', message: 'Required options must be placed before non-required options' }]);
    expect(flattenFormErrors(tree)).toEqual(['0.options[2].options[2]: APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID: Required options must be placed before non-required options']);
  });

  it('maps schema issues to Discord codes: required, type, length, bounds, choices, unknown keys', () => {
    const schema = z.strictObject({ name: z.string().min(1).max(3), count: z.int().max(5), kind: z.literal([1, 2]), list: z.array(z.string()).max(1) });
    const body = { count: 'x', kind: 3, list: ['a', 'b'], extra: true };
    const result = schema.safeParse(body);
    if (result.success) throw new Error('should fail');
    const errors = zodFormErrors(result.error.issues, body);
    expect(errors.map((e) => [e.path.join('.'), e.code])).toEqual(
      expect.arrayContaining([
        ['name', 'BASE_TYPE_REQUIRED'],
        ['count', 'NUMBER_TYPE_COERCE'],
        ['kind', 'BASE_TYPE_CHOICES'],
        ['list', 'BASE_TYPE_MAX_LENGTH'],
        ['extra', 'UNKNOWN_FIELD'],
      ]),
    );
    const long = schema.safeParse({ name: 'abcd', count: 9, kind: 1, list: [] });
    if (long.success) throw new Error('should fail');
    expect(zodFormErrors(long.error.issues, {}).map((e) => [e.path.join('.'), e.code, e.message])).toEqual([
      ['name', 'BASE_TYPE_MAX_LENGTH', 'Must be 3 or fewer in length.'],
      ['count', 'NUMBER_TYPE_MAX', 'int value should be less than or equal to 5.'],
    ]);
  });
});
