/**
 * Command registration rules of the fake, through HTTP (PUT guild and global commands):
 * what Discord accepts passes, what it refuses gets 400 / 50035 with the error path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCommand, errorsAt, startFakeHttp, stringOption, type FakeHttp } from './fake-http.js';

let http: FakeHttp;
beforeAll(async () => {
  http = await startFakeHttp();
});
afterAll(async () => {
  await http.stop();
});

const put = (commands: unknown) => http.call('PUT', http.guildCommands, commands);
const sub = (name: string, options: unknown[]) => ({ type: 1, name, description: `${name} it`, options });

/** [rule, body, dotted error path, code]. */
const refusals: Array<[string, unknown[], string, string]> = [
  [
    'a required option after an optional one (the case Discord refused)',
    [chatCommand({ options: [sub('list', []), sub('info', []), sub('create', [stringOption('vm', { required: true }), stringOption('name'), stringOption('mode', { required: true })])] })],
    '0.options.2.options.2',
    'APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID',
  ],
  ['an upper-case command name', [chatCommand({ name: 'Snapshot' })], '0.name', 'APPLICATION_COMMAND_INVALID_NAME'],
  ['a name with a space', [chatCommand({ name: 'snap shot' })], '0.name', 'APPLICATION_COMMAND_INVALID_NAME'],
  ['an upper-case Cyrillic name', [chatCommand({ name: 'Снимок' })], '0.name', 'APPLICATION_COMMAND_INVALID_NAME'],
  ['a name over 32', [chatCommand({ name: 'x'.repeat(33) })], '0.name', 'BASE_TYPE_MAX_LENGTH'],
  ['an upper-case option name', [chatCommand({ options: [stringOption('VM')] })], '0.options.0.name', 'APPLICATION_COMMAND_INVALID_NAME'],
  ['no description on a chat command', [{ name: 'hosts', type: 1 }], '0.description', 'BASE_TYPE_REQUIRED'],
  ['a description over 100', [chatCommand({ description: 'd'.repeat(101) })], '0.description', 'BASE_TYPE_MAX_LENGTH'],
  ['an empty option description', [chatCommand({ options: [stringOption('vm', { description: '' })] })], '0.options.0.description', 'BASE_TYPE_REQUIRED'],
  ['26 options', [chatCommand({ options: Array.from({ length: 26 }, (_, i) => stringOption(`o${i}`)) })], '0.options', 'BASE_TYPE_MAX_LENGTH'],
  ['two options with one name', [chatCommand({ options: [stringOption('vm'), stringOption('vm')] })], '0.options.1.name', 'APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS'],
  ['26 choices', [chatCommand({ options: [stringOption('mode', { choices: Array.from({ length: 26 }, (_, i) => ({ name: `c${i}`, value: `c${i}` })) })] })], '0.options.0.choices', 'BASE_TYPE_MAX_LENGTH'],
  ['a choice name over 100', [chatCommand({ options: [stringOption('mode', { choices: [{ name: 'n'.repeat(101), value: 'a' }] })] })], '0.options.0.choices.0.name', 'BASE_TYPE_MAX_LENGTH'],
  ['an empty choice name', [chatCommand({ options: [stringOption('mode', { choices: [{ name: '', value: 'a' }] })] })], '0.options.0.choices.0.name', 'BASE_TYPE_REQUIRED'],
  ['a string choice value over 100', [chatCommand({ options: [stringOption('mode', { choices: [{ name: 'long', value: 'v'.repeat(101) }] })] })], '0.options.0.choices.0.value', 'BASE_TYPE_MAX_LENGTH'],
  ['a number as a string option choice', [chatCommand({ options: [stringOption('mode', { choices: [{ name: 'one', value: 1 }] })] })], '0.options.0.choices.0.value', 'BASE_TYPE_STRING'],
  ['a fraction as an integer choice', [chatCommand({ options: [{ type: 4, name: 'n', description: 'n', choices: [{ name: 'half', value: 0.5 }] }] })], '0.options.0.choices.0.value', 'NUMBER_TYPE_COERCE'],
  ['autocomplete together with choices', [chatCommand({ options: [stringOption('mode', { autocomplete: true, choices: [{ name: 'a', value: 'a' }] })] })], '0.options.0.autocomplete', 'APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_CHOICES_EXCLUSIVE'],
  ['autocomplete on a boolean option', [chatCommand({ options: [{ type: 5, name: 'force', description: 'force', autocomplete: true }] })], '0.options.0.autocomplete', 'UNKNOWN_FIELD'],
  ['min_length over 6000', [chatCommand({ options: [stringOption('vm', { min_length: 6001 })] })], '0.options.0.min_length', 'NUMBER_TYPE_MAX'],
  ['max_length 0', [chatCommand({ options: [stringOption('vm', { max_length: 0 })] })], '0.options.0.max_length', 'NUMBER_TYPE_MIN'],
  ['min_value above max_value', [chatCommand({ options: [{ type: 4, name: 'n', description: 'n', min_value: 5, max_value: 1 }] })], '0.options.0.min_value', 'NUMBER_TYPE_MAX'],
  ['an integer min_value beyond 2^53', [chatCommand({ options: [{ type: 4, name: 'n', description: 'n', min_value: 2 ** 60 }] })], '0.options.0.min_value', 'NUMBER_TYPE_MAX'],
  ['a plain option inside a group', [chatCommand({ options: [{ type: 2, name: 'vm', description: 'vm', options: [stringOption('x')] }] })], '0.options.0.options.0.type', 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID'],
  ['a group inside a group', [chatCommand({ options: [{ type: 2, name: 'vm', description: 'vm', options: [{ type: 2, name: 'in', description: 'in', options: [] }] }] })], '0.options.0.options.0.type', 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID'],
  ['a subcommand inside a subcommand', [chatCommand({ options: [sub('create', [sub('deeper', [])])] })], '0.options.0.options.0.type', 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID'],
  ['subcommands mixed with options', [chatCommand({ options: [sub('create', []), stringOption('vm')] })], '0.options.1.type', 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID'],
  ['options on a USER command', [{ name: 'Inspect', type: 2, options: [stringOption('vm')] }], '0.options', 'APPLICATION_COMMAND_OPTIONS_INVALID'],
  ['an unknown command type', [chatCommand({ type: 7 })], '0.type', 'BASE_TYPE_CHOICES'],
  ['an unknown option type', [chatCommand({ options: [{ type: 12, name: 'x', description: 'x' }] })], '0.options.0.type', 'BASE_TYPE_CHOICES'],
  ['two commands with one name', [chatCommand(), chatCommand()], '1.name', 'APPLICATION_COMMANDS_DUPLICATE_NAME'],
  ['an unknown field', [chatCommand({ descripton: 'typo' })], '0.descripton', 'UNKNOWN_FIELD'],
  ['a name of the wrong type', [chatCommand({ name: 42 })], '0.name', 'BASE_TYPE_STRING'],
  ['a missing name', [{ description: 'x' }], '0.name', 'BASE_TYPE_REQUIRED'],
];

describe('fake Discord: command registration', () => {
  it('accepts a command with subcommands, choices, autocomplete, bounds and localizations', async () => {
    const command = chatCommand({
      default_member_permissions: '8',
      contexts: [0],
      nsfw: false,
      name_localizations: { de: 'schnappschuss' },
      options: [
        sub('create', [
          stringOption('vm', { required: true, autocomplete: true, max_length: 100 }),
          stringOption('mode', { choices: [{ name: 'disk-only', value: 'disk-only' }, { name: 'full', value: 'full' }] }),
          { type: 4, name: 'keep', description: 'keep n', min_value: 1, max_value: 30, choices: [{ name: 'week', value: 7 }] },
          { type: 10, name: 'ratio', description: 'ratio', min_value: 0.5 },
        ]),
        { type: 2, name: 'policy', description: 'policy', options: [sub('show', [])] },
      ],
    });
    const reply = await put([command, { name: 'Inspect VM', type: 2 }, { name: 'снимок', description: 'кириллица', type: 1 }, { name: 'स्नैपशॉट', description: 'देवनागरी' }]);
    expect(reply.status).toBe(200);
  });

  it.each(refusals)('refuses %s with 400 / 50035 at the bad value', async (_rule, body, path, code) => {
    const reply = await put(body);
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({ code: 50035, message: 'Invalid Form Body' });
    expect(errorsAt(reply.body, path)).toContain(code);
  });

  it('answers the required-after-optional case with exactly the tree Discord sends', async () => {
    const reply = await put(refusals[0]?.[1]);
    expect(reply.body).toEqual({
      code: 50035,
      message: 'Invalid Form Body',
      errors: { '0': { options: { '2': { options: { '2': { _errors: [{ code: 'APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID', message: 'Required options must be placed before non-required options' }] } } } } } },
    });
  });

  it('refuses a command over 8,000 characters as a whole, and counts only the longest localization', async () => {
    const options = Array.from({ length: 25 }, (_, i) => stringOption(`o${i}`, { description: 'd'.repeat(100), choices: Array.from({ length: 25 }, (_, c) => ({ name: `n${c}`.padEnd(100, 'n'), value: `v${c}` })) }));
    const reply = await put([chatCommand({ options })]);
    expect(reply.status).toBe(400);
    expect(errorsAt(reply.body, '0')).toEqual(['APPLICATION_COMMAND_TOO_LARGE']);
    const small = chatCommand({ description: 'short', description_localizations: { de: 'l'.repeat(100), fr: 'l'.repeat(90) } });
    expect((await put([small])).status).toBe(200);
  });

  it('refuses more than 100 chat commands with 30032, and applies the same rules to global commands', async () => {
    const many = Array.from({ length: 101 }, (_, i) => chatCommand({ name: `c${i}` }));
    expect(await put(many)).toMatchObject({ status: 400, body: { code: 30032 } });
    expect((await put(many.slice(0, 100))).status).toBe(200);
    const global = await http.call('PUT', `/applications/${http.options.applicationId}/commands`, [chatCommand({ name: 'Bad' })]);
    expect(global.status).toBe(400);
    expect(errorsAt(global.body, '0.name')).toEqual(['APPLICATION_COMMAND_INVALID_NAME']);
  });

  it('keeps the last accepted commands when a PUT is refused, and records the refusal', async () => {
    await put([chatCommand({ name: 'kept' })]);
    await put([chatCommand({ name: 'Refused' })]);
    expect(http.fake.registeredCommands('guild')).toEqual([chatCommand({ name: 'kept' })]);
    const last = http.fake.refusals().at(-1);
    expect(last).toMatchObject({ method: 'PUT', path: http.guildCommands, status: 400, code: 50035 });
    expect(last?.errors).toEqual(['0.name: APPLICATION_COMMAND_INVALID_NAME: Command name is invalid']);
  });
});
