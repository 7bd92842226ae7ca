/**
 * Component rules of the fake (legacy action rows), through HTTP on POST channel messages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorsAt, startFakeHttp, type FakeHttp } from './fake-http.js';

let http: FakeHttp;
beforeAll(async () => {
  http = await startFakeHttp();
});
afterAll(async () => {
  await http.stop();
});

const button = (customId: string, extra: Record<string, unknown> = {}) => ({ type: 2, style: 1, label: customId, custom_id: customId, ...extra });
const row = (...components: unknown[]) => ({ type: 1, components });
const select = (customId: string) => ({ type: 3, custom_id: customId, options: [{ label: 'a', value: 'a' }] });
const post = (components: unknown[]) => http.call('POST', http.channelMessages, { content: 'pick one', components });

/** [rule, components, dotted error path, code]. */
const refusals: Array<[string, unknown[], string, string]> = [
  ['6 action rows', Array.from({ length: 6 }, (_, i) => row(button(`b${i}`))), 'components', 'BASE_TYPE_MAX_LENGTH'],
  ['6 buttons in a row', [row(...Array.from({ length: 6 }, (_, i) => button(`b${i}`)))], 'components.0.components', 'BASE_TYPE_MAX_LENGTH'],
  ['an empty row', [row()], 'components.0.components', 'BASE_TYPE_MIN_LENGTH'],
  ['a select menu next to a button', [row(select('s'), button('b'))], 'components.0.components.1', 'COMPONENT_LAYOUT_WIDTH_EXCEEDED'],
  ['one custom_id twice in a message (disabled or not)', [row(button('page:0')), row(button('page:0', { disabled: true }))], 'components.1.components.0.custom_id', 'COMPONENT_CUSTOM_ID_DUPLICATED'],
  ['a custom_id over 100', [row(button('c'.repeat(101)))], 'components.0.components.0.custom_id', 'BASE_TYPE_MAX_LENGTH'],
  ['an empty custom_id', [row(button(''))], 'components.0.components.0.custom_id', 'BASE_TYPE_REQUIRED'],
  ['a label over 80', [row(button('b', { label: 'l'.repeat(81) }))], 'components.0.components.0.label', 'BASE_TYPE_MAX_LENGTH'],
  ['a button with neither label nor emoji', [row({ type: 2, style: 1, custom_id: 'b' })], 'components.0.components.0.label', 'BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED'],
  ['a link button without url', [row({ type: 2, style: 5, label: 'docs' })], 'components.0.components.0.url', 'BASE_TYPE_REQUIRED'],
  ['a link button with a custom_id', [row({ type: 2, style: 5, label: 'docs', url: 'https://example.org', custom_id: 'docs' })], 'components.0.components.0.custom_id', 'BUTTON_COMPONENT_FIELD_NOT_ALLOWED'],
  ['a non-link button with a url', [row(button('b', { url: 'https://example.org' }))], 'components.0.components.0.url', 'BUTTON_COMPONENT_FIELD_NOT_ALLOWED'],
  ['a non-link button without custom_id', [row({ type: 2, style: 4, label: 'Delete' })], 'components.0.components.0.custom_id', 'BASE_TYPE_REQUIRED'],
  ['an unknown button style', [row(button('b', { style: 7 }))], 'components.0.components.0.style', 'BASE_TYPE_CHOICES'],
  ['a button at the top level', [button('b')], 'components.0.type', 'BASE_TYPE_CHOICES'],
  ['a Components V2 container at the top level', [{ type: 17, components: [] }], 'components.0.type', 'BASE_TYPE_CHOICES'],
  ['an unknown field on a button', [row(button('b', { customId: 'b' }))], 'components.0.components.0.customId', 'UNKNOWN_FIELD'],
];

describe('fake Discord: component rules', () => {
  it('accepts five rows of five buttons, emoji-only and link buttons, and a row with one select', async () => {
    const rows = [
      ...Array.from({ length: 4 }, (_, r) => row(...Array.from({ length: 5 }, (_, b) => button(`r${r}b${b}`)))),
      row(select('pick')),
    ];
    expect((await post(rows)).status).toBe(200);
    const mixed = [row({ type: 2, style: 2, custom_id: 'up', emoji: { name: '⬆️' } }, { type: 2, style: 5, label: 'docs', url: 'https://example.org/docs' })];
    expect((await post(mixed)).status).toBe(200);
  });

  it.each(refusals)('refuses %s with 400 / 50035 at the bad value', async (_rule, components, path, code) => {
    const reply = await post(components);
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({ code: 50035, message: 'Invalid Form Body' });
    expect(errorsAt(reply.body, path)).toContain(code);
  });

  it('counts a message with only components as not empty', async () => {
    const reply = await http.call('POST', http.channelMessages, { components: [row(button('b'))] });
    expect(reply.status).toBe(200);
  });
});
