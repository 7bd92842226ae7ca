import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, scrubSecrets } from '../../../shared/logger.js';

/** A logger writing JSON lines into memory, as the worker's would on stderr. */
function capture(level = 'info') {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter((line) => line !== ''));
      done();
    },
  });
  const logger = createLogger('test', level, stream);
  return { logger, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

const BOT_TOKEN = 'MTA4ODk2NjQ1NTk2ODA5MDM0Mw.GZ2fPq.abcdefghijklmnopqrstuvwxyz012345';
const INTERACTION_TOKEN = 'aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpzZWNyZXQ';

describe('scrubSecrets', () => {
  it('replaces the token of interaction callback URLs', () => {
    expect(scrubSecrets(`POST https://discord.com/api/v10/interactions/1234567890/${INTERACTION_TOKEN}/callback: 404`)).toBe(
      'POST https://discord.com/api/v10/interactions/1234567890/[redacted]/callback: 404',
    );
  });

  it('replaces the token of webhook URLs, keeping the application id and the rest of the path', () => {
    expect(scrubSecrets(`PATCH /api/v10/webhooks/111222333444555666/${INTERACTION_TOKEN}/messages/@original?wait=true`)).toBe(
      'PATCH /api/v10/webhooks/111222333444555666/[redacted]/messages/@original?wait=true',
    );
  });

  it('replaces the password of Redis URLs, with or without a user', () => {
    expect(scrubSecrets('connect redis://snapbot:s3cr%40t@10.0.0.5:6379/2 failed')).toBe('connect redis://snapbot:***@10.0.0.5:6379/2 failed');
    expect(scrubSecrets('rediss://:hunter2@redis.example:6380')).toBe('rediss://:***@redis.example:6380');
    expect(scrubSecrets('redis://127.0.0.1:6380')).toBe('redis://127.0.0.1:6380');
  });

  it('replaces Authorization values written out', () => {
    expect(scrubSecrets(`Authorization: Bot ${BOT_TOKEN}`)).toBe('Authorization: Bot [redacted]');
  });

  it('leaves ordinary text alone', () => {
    const text = 'virsh snapshot-revert --domain=0f6c… failed: Bot is not a token here; /webhooks/ alone';
    expect(scrubSecrets(text)).toBe(text);
  });
});

describe('createLogger redaction', () => {
  it('redacts token, password and authorization keys at any depth', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        token: 't0',
        request: { headers: { Authorization: `Bot ${BOT_TOKEN}`, authorization: 'x' }, body: { password: 'p1' } },
        deep: { a: { b: { c: { d: { token: 't5', password: 'p5' } } } } },
        list: [{ token: 'in-array' }],
        env: { DISCORD_TOKEN: 'dt', REDIS_URL: 'redis://:pw@h:1' },
      },
      'request',
    );
    const line = lines.join('\n');
    for (const secret of ['t0', BOT_TOKEN, 'p1', 't5', 'p5', 'in-array', '"dt"', 'pw@']) expect(line).not.toContain(secret);
    expect(line.match(/\[redacted\]/g)?.length).toBeGreaterThanOrEqual(9);
  });

  it('scrubs tokens and Redis passwords from messages, string fields and interpolated arguments', () => {
    const { logger, lines } = capture();
    logger.warn({ url: `https://discord.com/api/v10/webhooks/42/${INTERACTION_TOKEN}/messages/@original` }, 'edit failed');
    logger.warn('redis at %s is down', 'redis://u:pw-123@h:6379');
    logger.info(`callback https://discord.com/api/v10/interactions/42/${INTERACTION_TOKEN}/callback`);
    const text = lines.join('\n');
    expect(text).not.toContain(INTERACTION_TOKEN);
    expect(text).not.toContain('pw-123');
    expect(text).toContain('/webhooks/42/[redacted]/messages/@original');
    expect(text).toContain('redis://u:***@h:6379');
    expect(text).toContain('/interactions/42/[redacted]/callback');
  });

  it('scrubs errors: message, stack, custom fields and causes, logged alone or under err at any depth', () => {
    const { logger, lines, records } = capture();
    const cause = new Error('connect redis://admin:cause-pw@10.1.1.1:6379 refused');
    const error = Object.assign(new Error(`404 on https://discord.com/api/v10/interactions/9/${INTERACTION_TOKEN}/callback`, { cause }), {
      url: `/webhooks/1/${INTERACTION_TOKEN}`,
      requestBody: { json: { token: 'nested-token' } },
    });
    logger.error(error);
    logger.warn({ err: error }, 'reply failed');
    logger.warn({ detail: { failure: error } }, 'nested');
    const text = lines.join('\n');
    for (const secret of [INTERACTION_TOKEN, 'cause-pw', 'nested-token']) expect(text).not.toContain(secret);
    const [alone, underErr, nested] = records();
    expect(alone!.msg).toBe('404 on https://discord.com/api/v10/interactions/9/[redacted]/callback');
    // pino appends causes to the stack ("caused by: …").
    expect(alone!.err).toMatchObject({ type: 'Error', stack: expect.stringContaining('caused by: Error: connect redis://admin:***@10.1.1.1:6379 refused') });
    expect(underErr!.err).toMatchObject({ message: expect.stringContaining('[redacted]'), stack: expect.stringContaining('[redacted]') });
    expect(nested!.detail).toMatchObject({ failure: { type: 'Error', url: '/webhooks/1/[redacted]' } });
  });

  it('keeps ordinary fields as they were and survives cycles', () => {
    const { logger, records } = capture();
    const cyclic: Record<string, unknown> = { name: 'web-01' };
    cyclic.self = cyclic;
    logger.info({ jobId: 'j1', durationMs: 12, at: new Date(0), cyclic }, 'job done');
    expect(records()[0]).toMatchObject({ jobId: 'j1', durationMs: 12, at: '1970-01-01T00:00:00.000Z', cyclic: { name: 'web-01', self: '[circular]' }, msg: 'job done' });
  });
});
