/**
 * The fake's refusal injection (`refuseNext`): the next matching request is refused with
 * Discord's status and body for the code, after the rate limits; other requests and later
 * ones go through; the refusal is recorded as provoked, so it does not fail the test.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeHttp, type FakeHttp } from './fake-http.js';

let http: FakeHttp | undefined;
afterEach(async () => {
  await http?.stop();
  http = undefined;
});

describe('fake Discord: refuseNext', () => {
  it('refuses the next matching edit with 400 / 50035 and its errors tree, then lets the next one through', async () => {
    http = await startFakeHttp();
    const posted = await http.call('POST', http.channelMessages, { content: 'first' });
    expect(posted.status).toBe(200);
    const id = (posted.body as { id: string }).id;
    http.fake.refuseNext(/^PATCH \/channels\/\d+\/messages\/\d+$/);

    // A post does not match the pattern and is not refused.
    expect((await http.call('POST', http.channelMessages, { content: 'second' })).status).toBe(200);
    const refused = await http.call('PATCH', `${http.channelMessages}/${id}`, { content: 'edited' });
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({
      message: 'Invalid Form Body',
      code: 50035,
      errors: { embeds: { '0': { description: { _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 4096 or fewer in length.' }] } } } },
    });
    // Nothing was changed by the refused edit; the next edit goes through.
    expect(http.fake.channelMessages().find((m) => m.id === id)?.content).toBe('first');
    expect((await http.call('PATCH', `${http.channelMessages}/${id}`, { content: 'edited' })).status).toBe(200);
    expect(http.fake.channelMessages().find((m) => m.id === id)?.content).toBe('edited');

    // Recorded as a refusal the test provoked: listed, but not unexpected.
    const [refusal, ...others] = http.fake.refusals();
    expect(others).toEqual([]);
    expect(refusal).toMatchObject({ method: 'PATCH', status: 400, code: 50035, provoked: true, errors: ['embeds[0].description: BASE_TYPE_MAX_LENGTH: Must be 4096 or fewer in length.'] });
    expect(http.fake.unexpectedRefusals()).toEqual([]);
    expect(() => http!.fake.assertNoUnexpectedRefusals()).not.toThrow();
  });

  it('answers other codes with Discord’s status and body, `count` times', async () => {
    http = await startFakeHttp();
    http.fake.refuseNext(/^\/channels\/\d+\/messages$/, 50013, 2);
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await http.call('POST', http.channelMessages, { content: `m${i}` }));
    expect(replies.map((r) => r.status)).toEqual([403, 403, 200]);
    expect(replies[0]!.body).toEqual({ message: 'Missing Permissions', code: 50013 });
    expect(http.fake.channelMessages().map((m) => m.content)).toEqual(['m2']);
  });

  it('applies the rate limits first: a rate-limited request is a 429 and the refusal waits for the next one', async () => {
    http = await startFakeHttp({ rateLimits: true });
    for (let i = 0; i < 5; i++) expect((await http.call('POST', http.channelMessages, { content: `m${i}` })).status).toBe(200);
    http.fake.refuseNext(/^POST \/channels\/\d+\/messages$/, 50006);
    expect((await http.call('POST', http.channelMessages, { content: 'over' })).status).toBe(429);
    expect(http.fake.refusals()).toEqual([]);
  });

  it('still validates bodies it does not refuse, and refuses unknown codes and counts when injected', async () => {
    http = await startFakeHttp();
    expect(() => http!.fake.refuseNext(/x/, 12345 as never)).toThrow(/no injectable refusal with code 12345/);
    expect(() => http!.fake.refuseNext(/x/, 50035, 0)).toThrow(/positive integer/);
    const bad = await http.call('POST', http.channelMessages, { content: 'x'.repeat(2001) });
    expect(bad.status).toBe(400);
    expect(http.fake.unexpectedRefusals()).toHaveLength(1);
  });
});
