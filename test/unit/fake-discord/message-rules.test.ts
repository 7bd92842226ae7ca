/**
 * Message rules of the fake, through HTTP on the channel routes (POST and PATCH):
 * content, embeds and their 6,000-character total, blank fields, empty messages,
 * attachments and the upload limit, flags, strict bodies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorsAt, startFakeHttp, type FakeHttp } from './fake-http.js';

let http: FakeHttp;
beforeAll(async () => {
  http = await startFakeHttp({ uploadLimitBytes: 64 * 1024 });
});
afterAll(async () => {
  await http.stop();
});

const post = (body: unknown, files?: Array<{ name: string; data: Buffer }>) => http.call('POST', http.channelMessages, body, files ? { files } : {});
const embed = (extra: Record<string, unknown>) => ({ title: 'web-01', ...extra });
const field = (name: string, value: string) => ({ name, value });

/** [rule, body, dotted error path, code]. */
const refusals: Array<[string, unknown, string, string]> = [
  ['content over 2,000', { content: 'x'.repeat(2001) }, 'content', 'BASE_TYPE_MAX_LENGTH'],
  ['11 embeds', { embeds: Array.from({ length: 11 }, () => embed({})) }, 'embeds', 'BASE_TYPE_MAX_LENGTH'],
  ['a title over 256', { embeds: [embed({ title: 't'.repeat(257) })] }, 'embeds.0.title', 'BASE_TYPE_MAX_LENGTH'],
  ['a description over 4,096', { embeds: [embed({ description: 'd'.repeat(4097) })] }, 'embeds.0.description', 'BASE_TYPE_MAX_LENGTH'],
  ['26 fields', { embeds: [embed({ fields: Array.from({ length: 26 }, (_, i) => field(`f${i}`, 'v')) })] }, 'embeds.0.fields', 'BASE_TYPE_MAX_LENGTH'],
  ['a field name over 256', { embeds: [embed({ fields: [field('n'.repeat(257), 'v')] })] }, 'embeds.0.fields.0.name', 'BASE_TYPE_MAX_LENGTH'],
  ['a field value over 1,024', { embeds: [embed({ fields: [field('n', 'v'.repeat(1025))] })] }, 'embeds.0.fields.0.value', 'BASE_TYPE_MAX_LENGTH'],
  ['an empty field value', { embeds: [embed({ fields: [field('n', '')] })] }, 'embeds.0.fields.0.value', 'BASE_TYPE_REQUIRED'],
  ['a whitespace-only field value', { embeds: [embed({ fields: [field('n', ' \n ')] })] }, 'embeds.0.fields.0.value', 'BASE_TYPE_REQUIRED'],
  ['a blank field name', { embeds: [embed({ fields: [field('  ', 'v')] })] }, 'embeds.0.fields.0.name', 'BASE_TYPE_REQUIRED'],
  ['a footer over 2,048', { embeds: [embed({ footer: { text: 'f'.repeat(2049) } })] }, 'embeds.0.footer.text', 'BASE_TYPE_MAX_LENGTH'],
  ['an author name over 256', { embeds: [embed({ author: { name: 'a'.repeat(257) } })] }, 'embeds.0.author.name', 'BASE_TYPE_MAX_LENGTH'],
  ['over 6,000 characters across embeds', { embeds: [embed({ description: 'a'.repeat(4000) }), embed({ description: 'b'.repeat(2000) })] }, 'embeds', 'MAX_EMBED_SIZE_EXCEEDED'],
  ['the ephemeral flag on a channel message', { content: 'hi', flags: 64 }, 'flags', 'MESSAGE_FLAGS_INVALID'],
  ['IS_COMPONENTS_V2 (snapbot does not use it)', { content: 'hi', flags: 1 << 15 }, 'flags', 'MESSAGE_FLAGS_INVALID'],
  ['an unknown field', { content: 'hi', ephemeral: true }, 'ephemeral', 'UNKNOWN_FIELD'],
  ['content of the wrong type', { content: 42 }, 'content', 'BASE_TYPE_STRING'],
  ['an embed colour beyond 0xFFFFFF', { embeds: [embed({ color: 0x1000000 })] }, 'embeds.0.color', 'NUMBER_TYPE_MAX'],
  ['an unknown embed field', { embeds: [embed({ colour: 1 })] }, 'embeds.0.colour', 'UNKNOWN_FIELD'],
  ['11 attachment entries', { content: 'x', attachments: Array.from({ length: 11 }, (_, i) => ({ id: String(i) })) }, 'attachments', 'BASE_TYPE_MAX_LENGTH'],
];

describe('fake Discord: message rules on the channel routes', () => {
  it('accepts content, embeds at their limits, allowed_mentions and the fields discord.js adds', async () => {
    const body = {
      content: 'c'.repeat(2000),
      tts: false,
      enforce_nonce: false,
      allowed_mentions: { parse: [] },
      embeds: [
        // Limits count without leading and trailing whitespace.
        { title: `  ${'t'.repeat(256)}  `, description: 'd'.repeat(1000), fields: [field('n', 'v'.repeat(1024))], footer: { text: 'f' }, author: { name: 'a' }, color: 0xffffff, timestamp: new Date().toISOString() },
        { description: 'e'.repeat(4096 - 1000 - 256 - 1024 - 3) },
      ],
    };
    const reply = await post(body);
    expect(reply.status).toBe(200);
  });

  it('counts lengths in code points, as Discord does: 2,000 emoji fit, 2,001 do not', async () => {
    expect((await post({ content: '😀'.repeat(2000) })).status).toBe(200);
    expect(errorsAt((await post({ content: '😀'.repeat(2001) })).body, 'content')).toEqual(['BASE_TYPE_MAX_LENGTH']);
    expect((await post({ embeds: [embed({ title: '🖥️'.repeat(128) })] })).status).toBe(200);
  });

  it.each(refusals)('refuses %s with 400 / 50035 at the bad value', async (_rule, body, path, code) => {
    const reply = await post(body);
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({ code: 50035, message: 'Invalid Form Body' });
    expect(errorsAt(reply.body, path)).toContain(code);
  });

  it('refuses an empty message with 50006: nothing, blank content, or empty lists', async () => {
    for (const body of [{}, { content: '' }, { content: '   ' }, { content: null, embeds: [], components: [] }]) {
      expect(await post(body)).toMatchObject({ status: 400, body: { code: 50006, message: 'Cannot send an empty message' } });
    }
  });

  it('refuses an edit that would leave the message empty, and accepts one that leaves something', async () => {
    const created = (await post({ content: 'host-a: 3 jobs', embeds: [embed({})] })).body as { id: string };
    const path = `${http.channelMessages}/${created.id}`;
    expect((await http.call('PATCH', path, { embeds: [] })).status).toBe(200);
    expect(await http.call('PATCH', path, { content: '' })).toMatchObject({ status: 400, body: { code: 50006 } });
    expect(await http.call('PATCH', path, { content: null, attachments: [] })).toMatchObject({ status: 400, body: { code: 50006 } });
    expect((await http.call('PATCH', path, { content: 'host-a: 2 jobs' })).status).toBe(200);
  });

  it('applies the embed rules to edits too', async () => {
    const created = (await post({ content: 'x' })).body as { id: string };
    const reply = await http.call('PATCH', `${http.channelMessages}/${created.id}`, { embeds: [embed({ title: 't'.repeat(300) })] });
    expect(errorsAt(reply.body, 'embeds.0.title')).toEqual(['BASE_TYPE_MAX_LENGTH']);
  });

  it('takes files up to the upload limit, refuses a bigger one with 413 / 40005, and at most 10 attachments', async () => {
    const limit = 64 * 1024;
    const fits = await post({ attachments: [{ id: '0', description: 'log' }] }, [{ name: 'job.log', data: Buffer.alloc(limit) }]);
    expect(fits.status).toBe(200);
    expect(await post({ content: 'x' }, [{ name: 'big.log', data: Buffer.alloc(limit + 1) }])).toMatchObject({ status: 413, body: { code: 40005 } });
    const eleven = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}.txt`, data: Buffer.from('x') }));
    const reply = await post({ content: 'x' }, eleven);
    expect(errorsAt(reply.body, 'attachments')).toEqual(['BASE_TYPE_MAX_LENGTH']);
  });

  it('defaults the upload limit to Discord’s 10 MiB', async () => {
    const fake = await startFakeHttp();
    try {
      const over = await fake.call('POST', fake.channelMessages, { content: 'x' }, { files: [{ name: 'big.bin', data: Buffer.alloc(10 * 1024 * 1024 + 1) }] });
      expect(over).toMatchObject({ status: 413, body: { code: 40005, message: 'Request entity too large' } });
    } finally {
      await fake.stop();
    }
  });

  it('answers unknown messages and channels with Discord’s 404 codes', async () => {
    expect(await http.call('PATCH', `${http.channelMessages}/1234567890123456789`, { content: 'x' })).toMatchObject({ status: 404, body: { code: 10008 } });
    expect(await http.call('POST', '/channels/1234567890123456789/messages', { content: 'x' })).toMatchObject({ status: 404, body: { code: 10003 } });
  });

  it('fetches a posted message with GET', async () => {
    const created = (await post({ content: 'x' })).body as { id: string };
    const reply = await http.call('GET', `${http.channelMessages}/${created.id}`);
    expect(reply.status).toBe(200);
  });
});
