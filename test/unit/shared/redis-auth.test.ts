import { describe, expect, it } from 'vitest';
import { isRedisAuthError, redactRedisUrl, redisAuthMessage, redisOptionsFromUrl } from '../../../shared/redis.js';

/** Trust issue, finding 1: Redis URLs with passwords, shown without them; refused passwords said plainly. */
const SECRET = 'Zx9-Qm_4uV2rT8yWc0pLk3nB7eHd1sGf5aJ6oI9hXwE';

describe('redactRedisUrl', () => {
  it.each([
    [`redis://:${SECRET}@127.0.0.1:6380`, 'redis://:***@127.0.0.1:6380'],
    [`redis://snapbot-worker-kvm-07:${SECRET}@redis.example:6379/2`, 'redis://snapbot-worker-kvm-07:***@redis.example:6379/2'],
    [`rediss://:${SECRET}@redis.example`, 'rediss://:***@redis.example'],
    [`redis://redis.example:6379/?password=${SECRET}`, 'redis://redis.example:6379/?password=***'],
    ['redis://127.0.0.1:6380', 'redis://127.0.0.1:6380'],
  ])('%s', (url, expected) => {
    expect(redactRedisUrl(url)).toBe(expected);
    expect(redactRedisUrl(url)).not.toContain(SECRET);
  });

  it('says nothing of an unparseable URL', () => {
    expect(redactRedisUrl(`redis://:${SECRET}@[bad`)).toBe('(unparseable REDIS_URL)');
  });
});

describe('refused passwords', () => {
  it('recognises NOAUTH and WRONGPASS, not other failures', () => {
    expect(isRedisAuthError(new Error('NOAUTH Authentication required.'))).toBe(true);
    expect(isRedisAuthError(new Error('WRONGPASS invalid username-password pair or user is disabled.'))).toBe(true);
    expect(isRedisAuthError(new Error('ERR invalid password'))).toBe(true);
    expect(isRedisAuthError(new Error('connect ECONNREFUSED 127.0.0.1:6380'))).toBe(false);
    expect(isRedisAuthError(new Error('Connection is closed.'))).toBe(false);
  });

  it('names the redacted URL and where the password comes from, never the password', () => {
    const wrong = redisAuthMessage(`redis://:${SECRET}@127.0.0.1:6380`, new Error('WRONGPASS invalid username-password pair or user is disabled.'));
    expect(wrong).toBe(
      'Redis at redis://:***@127.0.0.1:6380 refused the password (REDIS_URL / data/redis.password): WRONGPASS invalid username-password pair or user is disabled.',
    );
    const none = redisAuthMessage('redis://127.0.0.1:6380', new Error('NOAUTH Authentication required.'));
    expect(none).toMatch(/^Redis at redis:\/\/127\.0\.0\.1:6380 refused the password \(none was given\) \(REDIS_URL \/ data\/redis\.password\): NOAUTH/);
  });

  it('decodes a password that needed escaping in the URL', () => {
    const url = new URL('redis://127.0.0.1:6380');
    url.password = 'p@ss:w/rd';
    expect(redisOptionsFromUrl(url.toString())).toMatchObject({ password: 'p@ss:w/rd', port: 6380 });
  });
});
