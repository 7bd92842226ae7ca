/**
 * The fake's rate limits: per-route buckets keyed by channel or interaction token,
 * the global 50/s that interaction endpoints do not count against, and Discord's
 * headers on every response and on 429s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../fixtures/fake-discord/rate-limits.js';
import { startFakeHttp, type FakeHttp } from './fake-http.js';

const channel = '/channels/111111111111111111/messages';
const otherChannel = '/channels/222222222222222222/messages';
const tokenA = '/webhooks/333333333333333333/tokenA';
const tokenB = '/webhooks/333333333333333333/tokenB';

describe('RateLimiter', () => {
  it('lets 5 channel posts through per 5 s per channel, then 429 with Discord’s headers and body', () => {
    const limiter = new RateLimiter();
    const t0 = 1_000_000;
    for (let i = 0; i < 5; i++) {
      const { headers, limited } = limiter.take('POST', channel, t0 + i);
      expect(limited).toBeUndefined();
      expect(headers).toMatchObject({ 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': String(4 - i) });
    }
    const { limited } = limiter.take('POST', channel, t0 + 1_000);
    expect(limited?.status).toBe(429);
    expect(limited?.body).toEqual({ message: 'You are being rate limited.', retry_after: 4, global: false });
    expect(limited?.headers).toMatchObject({ 'retry-after': '4', 'x-ratelimit-scope': 'user', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': '4.000', 'x-ratelimit-reset': ((t0 + 5_000) / 1000).toFixed(3) });
    expect(limited?.headers?.['x-ratelimit-bucket']).toMatch(/^[0-9a-f]{32}$/);
    // Another channel has its own bucket (same bucket hash); the window resets after 5 s.
    expect(limiter.take('POST', otherChannel, t0 + 1_000).limited).toBeUndefined();
    expect(limiter.take('POST', otherChannel, t0).headers['x-ratelimit-bucket']).toBe(limited?.headers?.['x-ratelimit-bucket']);
    expect(limiter.take('POST', channel, t0 + 5_000).limited).toBeUndefined();
  });

  it('limits channel edits apart from posts: 5 per 5 s per channel', () => {
    const limiter = new RateLimiter();
    for (let i = 0; i < 5; i++) expect(limiter.take('POST', channel, i).limited).toBeUndefined();
    for (let i = 0; i < 5; i++) expect(limiter.take('PATCH', `${channel}/444444444444444444`, i).limited).toBeUndefined();
    expect(limiter.take('PATCH', `${channel}/555555555555555555`, 10).limited?.status).toBe(429);
  });

  it('shares 5 follow-ups or edits per 2 s per interaction token', () => {
    const limiter = new RateLimiter();
    for (let i = 0; i < 3; i++) expect(limiter.take('POST', tokenA, i).limited).toBeUndefined();
    for (let i = 0; i < 2; i++) expect(limiter.take('PATCH', `${tokenA}/messages/@original`, i).limited).toBeUndefined();
    expect(limiter.take('PATCH', `${tokenA}/messages/@original`, 100).limited?.status).toBe(429);
    expect(limiter.take('PATCH', `${tokenB}/messages/@original`, 100).limited).toBeUndefined();
    expect(limiter.take('PATCH', `${tokenA}/messages/@original`, 2_000).limited).toBeUndefined();
  });

  it('applies a global 50 requests/s, not counting interaction endpoints', () => {
    const limiter = new RateLimiter();
    for (let i = 0; i < 50; i++) expect(limiter.take('GET', `/channels/${100000000000000000 + i}/messages/1${i}`, 0).limited).toBeUndefined();
    const global = limiter.take('GET', '/users/@me', 10).limited;
    expect(global?.status).toBe(429);
    expect(global?.body).toMatchObject({ global: true });
    expect(global?.headers).toMatchObject({ 'x-ratelimit-global': 'true', 'x-ratelimit-scope': 'global' });
    expect(limiter.take('POST', '/interactions/666666666666666666/tok/callback', 10).limited).toBeUndefined();
    expect(limiter.take('PATCH', `${tokenA}/messages/@original`, 10).limited).toBeUndefined();
    expect(limiter.take('GET', '/users/@me', 1_000).limited).toBeUndefined();
  });
});

describe('fake Discord: rate-limit headers over HTTP', () => {
  let http: FakeHttp;
  beforeAll(async () => {
    http = await startFakeHttp({ rateLimits: true });
  });
  afterAll(async () => {
    await http.stop();
  });

  it('sends X-RateLimit-* on every response, and a 429 when a bucket is spent', async () => {
    const me = await http.call('GET', '/users/@me');
    for (const header of ['limit', 'remaining', 'reset', 'reset-after', 'bucket']) expect(me.headers.get(`x-ratelimit-${header}`)).not.toBeNull();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await http.call('POST', http.channelMessages, { content: `m${i}` })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const last = http.fake.requests().at(-1);
    expect(last?.status).toBe(429);
    // 429s are not refusals: the client is expected to wait.
    expect(http.fake.refusals()).toEqual([]);
  });

  it('still honours rateLimitNext injections', async () => {
    http.fake.rateLimitNext(/^GET \/users\/@me$/, 300);
    const limited = await http.call('GET', '/users/@me');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.headers.get('x-ratelimit-reset-after')).toBe('0.300');
    expect((await http.call('GET', '/users/@me')).status).toBe(200);
  });
});
