/**
 * Interaction rules of the fake, through HTTP: one initial response within the
 * deadline, callback types that fit the interaction, autocomplete results, flags per
 * route, the interaction webhook until the token expires.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InteractionHandle } from '../../fixtures/fake-discord/fake-discord.js';
import { chatCommand, errorsAt, startFakeHttp, stringOption, type FakeHttp } from './fake-http.js';

let http: FakeHttp;
beforeAll(async () => {
  http = await startFakeHttp();
  await http.connectGateway();
  const create = { type: 1, name: 'create', description: 'create', options: [stringOption('vm', { required: true, autocomplete: true }), { type: 4, name: 'keep', description: 'keep', autocomplete: true }] };
  expect((await http.call('PUT', http.guildCommands, [chatCommand({ options: [create] })])).status).toBe(200);
});
afterAll(async () => {
  await http.stop();
});

const callback = (handle: { id: string; token: string }, body: unknown) => http.call('POST', `/interactions/${handle.id}/${handle.token}/callback`, body, { auth: false });
const command = () => http.fake.slashCommand(http.userId, 'snapshot', [{ name: 'create', type: 1, options: [{ name: 'vm', type: 3, value: 'web-01' }] }]);
const webhook = (handle: InteractionHandle, rest = '') => `/webhooks/${http.options.applicationId}/${handle.token}${rest}`;

/** An autocomplete interaction on `vm` (string) or `keep` (integer), answered by hand. */
function autocompleteHandle(focused: 'vm' | 'keep'): Promise<InteractionHandle> {
  const option = focused === 'vm' ? { name: 'vm', type: 3, value: 'we', focused: true } : { name: 'keep', type: 4, value: 3, focused: true };
  return http.fake.sendAutocomplete(http.userId, 'snapshot', [{ name: 'create', type: 1, options: [option] }]);
}

describe('fake Discord: interaction rules', () => {
  it('takes one initial response and refuses a second with 40060', async () => {
    const handle = await command();
    expect((await callback(handle, { type: 5, data: { flags: 64 } })).status).toBe(204);
    expect(await callback(handle, { type: 4, data: { content: 'again' } })).toMatchObject({ status: 400, body: { code: 40060 } });
    http.fake.expectRefusal((r) => r.code === 40060);
  });

  it('refuses callbacks that do not fit a command: PONG, deferred update, update, autocomplete result', async () => {
    for (const type of [1, 6, 7]) {
      const reply = await callback(await command(), type === 1 ? { type } : { type, data: { content: 'x' } });
      expect(reply.status).toBe(400);
      expect(errorsAt(reply.body, 'type')).toEqual(['BASE_TYPE_CHOICES']);
    }
    const reply = await callback(await command(), { type: 8, data: { choices: [] } });
    expect(errorsAt(reply.body, 'type')).toEqual(['BASE_TYPE_CHOICES']);
  });

  it('takes only an autocomplete result for an autocomplete interaction, and checks its choices', async () => {
    const reply = await callback(await autocompleteHandle('vm'), { type: 4, data: { content: 'x' } });
    expect(errorsAt(reply.body, 'type')).toEqual(['BASE_TYPE_CHOICES']);
    const cases: Array<[unknown[], string, string]> = [
      [Array.from({ length: 26 }, (_, i) => ({ name: `c${i}`, value: `c${i}` })), 'data.choices', 'BASE_TYPE_MAX_LENGTH'],
      [[{ name: 'n'.repeat(101), value: 'v' }], 'data.choices.0.name', 'BASE_TYPE_MAX_LENGTH'],
      [[{ name: '', value: 'v' }], 'data.choices.0.name', 'BASE_TYPE_REQUIRED'],
      [[{ name: 'long', value: 'v'.repeat(101) }], 'data.choices.0.value', 'BASE_TYPE_MAX_LENGTH'],
      [[{ name: 'number', value: 3 }], 'data.choices.0.value', 'BASE_TYPE_STRING'],
    ];
    for (const [choices, path, code] of cases) {
      const answer = await callback(await autocompleteHandle('vm'), { type: 8, data: { choices } });
      expect(answer.status).toBe(400);
      expect(errorsAt(answer.body, path)).toEqual([code]);
    }
    const good = Array.from({ length: 25 }, (_, i) => ({ name: `web-${i} · kvm-a`.padEnd(100, '.'), value: `web-${i}`.padEnd(100, 'x') }));
    expect((await callback(await autocompleteHandle('vm'), { type: 8, data: { choices: good } })).status).toBe(204);
  });

  it('wants numbers for an integer option’s choices', async () => {
    const text = await callback(await autocompleteHandle('keep'), { type: 8, data: { choices: [{ name: 'three', value: '3' }] } });
    expect(errorsAt(text.body, 'data.choices.0.value')).toEqual(['NUMBER_TYPE_COERCE']);
    expect((await callback(await autocompleteHandle('keep'), { type: 8, data: { choices: [{ name: 'three', value: 3 }] } })).status).toBe(204);
  });

  it('takes update (7) and deferred update (6) for a button click', async () => {
    const handle = await command();
    await callback(handle, { type: 4, data: { content: 'Approve?', components: [{ type: 1, components: [{ type: 2, style: 3, label: 'Approve', custom_id: 'approve' }] }] } });
    const message = handle.original();
    if (!message) throw new Error('no reply');
    const click = await http.fake.clickButton(http.userId, message, 'approve');
    expect((await callback(click, { type: 7, data: { content: 'Approved', components: [] } })).status).toBe(204);
    expect(message.content).toBe('Approved');
  });

  it('limits flags per route: ephemeral on replies and follow-ups, only ephemeral on a defer', async () => {
    const reply = await command();
    expect((await callback(reply, { type: 4, data: { content: 'private', flags: 64 | 4 } })).status).toBe(204);
    expect((await http.call('POST', `${webhook(reply)}?wait=true`, { content: 'also private', flags: 64 }, { auth: false })).status).toBe(200);
    const deferred = await callback(await command(), { type: 5, data: { flags: 4 } });
    expect(errorsAt(deferred.body, 'data.flags')).toEqual(['MESSAGE_FLAGS_INVALID']);
    const v2 = await callback(await command(), { type: 4, data: { components: [], flags: 1 << 15 } });
    expect(errorsAt(v2.body, 'data.flags')).toEqual(['MESSAGE_FLAGS_INVALID']);
  });

  it('checks reply bodies under data: the path starts at data', async () => {
    const reply = await callback(await command(), { type: 4, data: { embeds: [{ title: 't'.repeat(257) }] } });
    expect(errorsAt(reply.body, 'data.embeds.0.title')).toEqual(['BASE_TYPE_MAX_LENGTH']);
    const empty = await callback(await command(), { type: 4, data: { content: ' ' } });
    expect(empty).toMatchObject({ status: 400, body: { code: 50006 } });
  });

  it('refuses an edit of a deferred reply that leaves it empty, and takes one with content', async () => {
    const handle = await command();
    await callback(handle, { type: 5 });
    expect(await http.call('PATCH', webhook(handle, '/messages/@original'), { content: '' }, { auth: false })).toMatchObject({ status: 400, body: { code: 50006 } });
    expect((await http.call('PATCH', webhook(handle, '/messages/@original'), { content: 'queued', tts: false, enforce_nonce: false }, { auth: false })).status).toBe(200);
    const bad = await http.call('PATCH', webhook(handle, '/messages/@original'), { content: 'x', embeds: [{ fields: [{ name: 'vm', value: '' }] }] }, { auth: false });
    expect(errorsAt(bad.body, 'embeds.0.fields.0.value')).toEqual(['BASE_TYPE_REQUIRED']);
  });

  it('turns a follow-up right after a defer into the edit of the "thinking…" reply, keeping its visibility', async () => {
    const handle = await command();
    await callback(handle, { type: 5 });
    expect((await http.call('POST', `${webhook(handle)}?wait=true`, { content: 'only for you?', flags: 64 }, { auth: false })).status).toBe(200);
    expect(handle.original()).toMatchObject({ content: 'only for you?', flags: 0 });
    expect(handle.followUps()).toEqual([]);
    await http.call('POST', `${webhook(handle)}?wait=true`, { content: 'a real follow-up', flags: 64 }, { auth: false });
    expect(handle.followUps().map((m) => [m.content, m.flags])).toEqual([['a real follow-up', 64]]);
  });

  it('has no interaction webhook before the callback (10015)', async () => {
    const handle = await command();
    expect(await http.call('POST', webhook(handle), { content: 'too early' }, { auth: false })).toMatchObject({ status: 404, body: { code: 10015 } });
    await callback(handle, { type: 5 });
  });
});

describe('fake Discord: interaction clocks', () => {
  it('answers 10062 after the ack deadline and 50027 after the token lifetime, as provoked expiries', async () => {
    const slow = await startFakeHttp({ interactionAckDeadlineMs: 300, interactionTokenTtlMs: 800 });
    try {
      await slow.connectGateway();
      await slow.call('PUT', slow.guildCommands, [chatCommand()]);
      const late = await slow.fake.slashCommand(slow.userId, 'snapshot');
      await new Promise((resolve) => setTimeout(resolve, 350));
      expect(await slow.call('POST', `/interactions/${late.id}/${late.token}/callback`, { type: 5 }, { auth: false })).toMatchObject({ status: 404, body: { code: 10062, message: 'Unknown interaction' } });
      const handle = await slow.fake.slashCommand(slow.userId, 'snapshot');
      await slow.call('POST', `/interactions/${handle.id}/${handle.token}/callback`, { type: 5 }, { auth: false });
      await new Promise((resolve) => setTimeout(resolve, 850));
      const expired = await slow.call('PATCH', `/webhooks/${slow.options.applicationId}/${handle.token}/messages/@original`, { content: 'late' }, { auth: false });
      expect(expired).toMatchObject({ status: 401, body: { code: 50027 } });
      expect(slow.fake.refusals().map((r) => r.code)).toEqual([10062, 50027]);
      expect(slow.fake.unexpectedRefusals()).toEqual([]);
    } finally {
      await slow.stop();
    }
  });

  it('counts a missed 3 s deadline as unexpected when the test did not shorten the clock', async () => {
    const fake = await startFakeHttp();
    try {
      await fake.call('POST', '/interactions/1234567890123456789/nope/callback', { type: 5 }, { auth: false });
      expect(fake.fake.unexpectedRefusals().map((r) => r.code)).toEqual([10062]);
      expect(() => fake.fake.assertNoUnexpectedRefusals()).toThrow(/POST \/interactions\/1234567890123456789\/nope\/callback → 404 10062 Unknown interaction/);
      fake.fake.expectRefusal((r) => r.code === 10062);
      expect(() => fake.fake.assertNoUnexpectedRefusals()).not.toThrow();
    } finally {
      await fake.stop();
    }
  });
});
