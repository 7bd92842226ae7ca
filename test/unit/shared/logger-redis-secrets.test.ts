import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, scrubSecrets } from '../../../shared/logger.js';

/**
 * Trust issue, finding 1: Redis now has a password (the managed one in
 * data/redis.password, the compose one in REDIS_PASSWORD). It reaches logs only as `***`,
 * in every form a Redis URL can carry it.
 */
const SECRET = 'Zx9-Qm_4uV2rT8yWc0pLk3nB7eHd1sGf5aJ6oI9hXwE';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter((line) => line !== ''));
      done();
    },
  });
  return { logger: createLogger('test', 'info', stream), text: () => lines.join('\n') };
}

describe('scrubSecrets and Redis passwords', () => {
  it.each([
    [`redis://:${SECRET}@127.0.0.1:6380`, 'redis://:***@127.0.0.1:6380'],
    [`redis://snapbot-control:${SECRET}@redis.example:6379/0`, 'redis://snapbot-control:***@redis.example:6379/0'],
    [`rediss://default:${SECRET}@redis.example:6380`, 'rediss://default:***@redis.example:6380'],
    [`redis://127.0.0.1:6379?password=${SECRET}`, 'redis://127.0.0.1:6379?password=***'],
    [`redis://127.0.0.1:6379/0?db=1&password=${SECRET}&family=4`, 'redis://127.0.0.1:6379/0?db=1&password=***&family=4'],
    [`redis://u:p@ss${SECRET}@h:1`, 'redis://u:***@h:1'],
    [`redis-sentinel://:${SECRET}@a:26379,b:26380/main?sentinelPassword=${SECRET}`, 'redis-sentinel://:***@a:26379,b:26380/main?sentinelPassword=***'],
    [`redis-cluster://snapbot:${SECRET}@a:7000,b:7001`, 'redis-cluster://snapbot:***@a:7000,b:7001'],
  ])('%s', (url, expected) => {
    expect(scrubSecrets(`connect ${url} failed`)).toBe(`connect ${expected} failed`);
  });

  it('does not swallow the text after a URL without a password', () => {
    expect(scrubSecrets('redis://127.0.0.1:6380 (mail admin@example.org)')).toBe('redis://127.0.0.1:6380 (mail admin@example.org)');
    expect(scrubSecrets('{"url":"redis://:pw@h:1","by":"a@b"}')).toBe('{"url":"redis://:***@h:1","by":"a@b"}');
  });

  it('keeps the password out of log lines: keys, strings, errors and their causes', () => {
    const { logger, text } = capture();
    logger.info({ REDIS_PASSWORD: SECRET, REDISCLI_AUTH: SECRET, config: { requirepass: SECRET } }, 'env');
    logger.info({ url: `redis://:${SECRET}@127.0.0.1:6380` }, 'managed redis-server started');
    logger.warn('connecting to %s', `redis://127.0.0.1:6380/?password=${SECRET}`);
    logger.error({ err: new Error('outer', { cause: new Error(`redis://w:${SECRET}@h:1 WRONGPASS`) }) }, 'failed');
    expect(text()).not.toContain(SECRET);
    expect(text()).toContain('redis://:***@127.0.0.1:6380');
  });
});
