import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  botEnvSchema,
  clientEnvSchema,
  commonEnvSchema,
  controlEnvSchema,
  parseEnv,
  redisUrlOf,
  redisUrlProblem,
  workerEnvSchema,
} from '../../../shared/config.js';
import { SnapbotError } from '../../../shared/errors.js';
import { redisOptionsFromUrl } from '../../../shared/redis.js';

/**
 * Issue 12, "Config": an empty value means unset; every error is VALIDATION and names its
 * variable; REDIS_URL says what a URL without a port or host means; the worker's timings
 * are checked against each other and against sensible minimums.
 */

const BOT = { DISCORD_TOKEN: 'token', DISCORD_APP_ID: '123456789012345678', DISCORD_GUILD_ID: '223456789012345678' };

const SCHEMAS = {
  common: commonEnvSchema,
  worker: workerEnvSchema,
  client: clientEnvSchema,
  control: controlEnvSchema,
  bot: botEnvSchema,
} as const;

/** Every variable a schema reads (the worker's is refined, so its shape is one level in). */
function variablesOf(schema: z.ZodType): string[] {
  const shaped = schema as unknown as { shape?: Record<string, unknown>; def?: { in?: { shape?: Record<string, unknown> } } };
  return Object.keys(shaped.shape ?? shaped.def?.in?.shape ?? {});
}

/** The VALIDATION error parseEnv throws for `env` (fails the test when it parses). */
function refusal(schema: z.ZodType, env: Record<string, string>): SnapbotError {
  try {
    parseEnv(schema, env);
  } catch (error) {
    expect(error).toBeInstanceOf(SnapbotError);
    expect((error as SnapbotError).code).toBe('VALIDATION');
    expect((error as SnapbotError).message).toMatch(/^Invalid configuration: /);
    return error as SnapbotError;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

describe('an empty value', () => {
  for (const [label, schema] of Object.entries(SCHEMAS)) {
    it(`means unset for every variable of the ${label} schema, numbers included`, () => {
      const names = variablesOf(schema);
      expect(names.length).toBeGreaterThan(3);
      const required = label === 'bot' ? BOT : {};
      const unset = parseEnv(schema, required);
      for (const blank of ['', '   ', '\t']) {
        const env = Object.fromEntries(names.map((name) => [name, blank]));
        expect(parseEnv(schema, { ...env, ...required })).toEqual(unset);
      }
    });
  }

  it('leaves a required variable missing, and the error says so', () => {
    expect(refusal(botEnvSchema, { ...BOT, DISCORD_APP_ID: '' }).message).toBe(
      'Invalid configuration: DISCORD_APP_ID is required: the application id from the Discord developer portal (General Information → Application ID), 15 to 21 digits',
    );
  });
});

describe('every error names its variable', () => {
  const cases: Array<[keyof typeof SCHEMAS, Record<string, string>, string]> = [
    ['client', { REDIS_URL: 'http://redis:6379' }, 'REDIS_URL must start with redis://, rediss:// or unix://'],
    ['client', { LOG_LEVEL: 'verbose' }, 'LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent'],
    ['worker', { HOST_ID: 'kvm 1' }, 'HOST_ID: host id may contain only letters'],
    ['worker', { LIBVIRT_URI: 'system' }, 'LIBVIRT_URI: expected a libvirt URI such as qemu:///system'],
    ['worker', { WORKER_CONCURRENCY: '0' }, 'WORKER_CONCURRENCY: must be at least 1, got 0'],
    ['worker', { WORKER_CONCURRENCY: '5000' }, 'WORKER_CONCURRENCY: must be at most 1000, got 5000'],
    ['control', { BOT_JOB_TIMEOUT_MS: '30m' }, 'BOT_JOB_TIMEOUT_MS: expected a whole number of milliseconds such as 1800000, got "30m"'],
    ['bot', { ...BOT, DISCORD_TOKEN: '' }, 'DISCORD_TOKEN is required: the bot token from the Discord developer portal'],
    ['bot', { ...BOT, DISCORD_APP_ID: 'snapbot' }, 'DISCORD_APP_ID must be a Discord id: 15 to 21 digits'],
    ['bot', { ...BOT, DISCORD_CHANNEL_ID: '#general' }, 'DISCORD_CHANNEL_ID must be a Discord id: 15 to 21 digits'],
    ['bot', { ...BOT, DISCORD_API_URL: 'discord.com/api' }, 'DISCORD_API_URL: expected an http(s) URL'],
    ['bot', { ...BOT, DISCORD_API_URL: 'ftp://discord.com/api' }, 'DISCORD_API_URL: expected an http(s) URL'],
  ];
  for (const [label, env, expected] of cases) {
    it(`${label}: ${JSON.stringify(env)}`, () => {
      expect(refusal(SCHEMAS[label], env).message).toContain(`Invalid configuration: ${expected}`);
    });
  }

  it('names the variable once, even when its message starts with it', () => {
    const { message } = refusal(botEnvSchema, { DISCORD_TOKEN: 'token' });
    expect(message).not.toMatch(/(DISCORD_\w+): \1/);
    expect(message).toContain('DISCORD_APP_ID is required: the application id from the Discord developer portal');
    expect(message).toContain('DISCORD_GUILD_ID is required: snapbot serves one guild');
  });

  it('lists every wrong variable in one message', () => {
    const { message } = refusal(workerEnvSchema, { LOG_LEVEL: 'loud', JOB_LOCK_MS: 'x', REDIS_URL: 'redis://' });
    expect(message).toMatch(/REDIS_URL has no host.*; LOG_LEVEL: .*; JOB_LOCK_MS: /);
  });
});

describe('REDIS_URL', () => {
  it('with a port out of range says so and names it, instead of an internal "Invalid URL"', () => {
    expect(refusal(clientEnvSchema, { REDIS_URL: 'redis://h:99999' }).message).toBe(
      "Invalid configuration: REDIS_URL's port 99999 is out of range: ports go from 1 to 65535",
    );
    expect(refusal(clientEnvSchema, { REDIS_URL: 'redis://h:0' }).message).toContain("REDIS_URL's port 0 is out of range");
    expect(refusal(clientEnvSchema, { REDIS_URL: 'redis://h:63b9' }).message).toContain("REDIS_URL's port is not a number from 1 to 65535");
  });

  it('without a host is refused, saying what a missing port and an unset REDIS_URL mean', () => {
    for (const url of ['redis://', 'redis:///0', 'rediss://:6379']) {
      const { message } = refusal(clientEnvSchema, { REDIS_URL: url });
      expect(message, url).toContain('REDIS_URL has no host: write redis://host[:port] (the port is 6379 when left out, as for redis-cli)');
      expect(message, url).toContain('leave REDIS_URL unset to use the managed Redis of `npm start` on 127.0.0.1:6380');
    }
  });

  it('without a port means Redis\'s own 6379; unset means the managed Redis on 6380', () => {
    const { REDIS_URL } = parseEnv(clientEnvSchema, { REDIS_URL: 'redis://redis.internal' });
    expect(redisOptionsFromUrl(redisUrlOf({ REDIS_URL, SNAPBOT_DATA_DIR: '/nonexistent' }))).toMatchObject({ host: 'redis.internal', port: 6379 });
    const unset = parseEnv(clientEnvSchema, { REDIS_URL: '' });
    expect(unset.REDIS_URL).toBeUndefined();
    expect(redisOptionsFromUrl(redisUrlOf({ ...unset, SNAPBOT_DATA_DIR: '/nonexistent' }))).toMatchObject({ host: '127.0.0.1', port: 6380 });
  });

  it('refuses what the connection would silently ignore: a ? or # part, a path that is not a database number', () => {
    expect(refusal(clientEnvSchema, { REDIS_URL: 'redis://h:6379?password=secret' }).message).toContain('REDIS_URL has a ? or # part, which is not read');
    expect(refusal(clientEnvSchema, { REDIS_URL: 'redis://h:6379/cache' }).message).toContain("REDIS_URL's path must be a database number");
  });

  it('takes unix sockets only with an absolute path', () => {
    expect(parseEnv(clientEnvSchema, { REDIS_URL: 'unix:///run/redis/redis.sock' }).REDIS_URL).toBe('unix:///run/redis/redis.sock');
    expect(refusal(clientEnvSchema, { REDIS_URL: 'unix://run/redis.sock' }).message).toContain('REDIS_URL: a unix socket needs an absolute path after three slashes');
    expect(refusal(clientEnvSchema, { REDIS_URL: 'unix://' }).message).toContain('REDIS_URL has no socket path');
  });

  it('accepts the usual forms', () => {
    for (const url of ['redis://127.0.0.1:6380', 'redis://:p%40ss@redis:6379/2', 'rediss://snapbot:pw@redis.example', 'REDIS://h/0']) {
      expect(redisUrlProblem(url), url).toBeUndefined();
    }
  });

  it('never repeats the URL, which may hold a password', () => {
    for (const url of ['redis://:s3cr3t#x@h:6379', 'redis://u:s3cr3t@h:99999', 'redis://:s3cr3t/@h', 'redis://:s3cr3t@', 'redis://h:6379?password=s3cr3t']) {
      expect(refusal(clientEnvSchema, { REDIS_URL: url }).message, url).not.toContain('s3cr3t');
    }
  });

  it('says how to write special characters of a password when the URL does not parse', () => {
    expect(refusal(clientEnvSchema, { REDIS_URL: 'redis://:pa#ss@h:6379' }).message).toContain('write @ : / ? # % as %40 %3A %2F %3F %23 %25');
  });
});

describe('numbers', () => {
  it('are whole numbers in digits: no exponent, hex, fraction, sign or unit', () => {
    for (const value of ['1e3', '0x10', '1.5', '-1', '+5', '10s', 'NaN', 'Infinity', '1_000']) {
      expect(refusal(workerEnvSchema, { WORKER_CONCURRENCY: value }).message, value).toContain(
        `WORKER_CONCURRENCY: expected a whole number such as 4, got ${JSON.stringify(value)}`,
      );
    }
    expect(parseEnv(workerEnvSchema, { WORKER_CONCURRENCY: ' 8 ' }).WORKER_CONCURRENCY).toBe(8);
  });

  it('stay within what Node timers keep (a longer delay would fire at once)', () => {
    expect(refusal(workerEnvSchema, { VIRSH_TIMEOUT_MS: '3000000000' }).message).toContain(
      "VIRSH_TIMEOUT_MS: must be at most 2147483647 ms (about 24.8 days, the longest delay Node's timers keep), got 3000000000",
    );
    expect(parseEnv(workerEnvSchema, { VIRSH_TIMEOUT_MS: '2147483647' }).VIRSH_TIMEOUT_MS).toBe(2_147_483_647);
  });

  it('have minimums that say why', () => {
    expect(refusal(workerEnvSchema, { JOB_LOCK_MS: '1' }).message).toBe(
      'Invalid configuration: JOB_LOCK_MS: must be at least 2000 ms, got 1: BullMQ renews the lock of a running job every JOB_LOCK_MS / 2, ' +
        'and a job whose renewal does not reach Redis before the lock expires is taken as stalled and run again by another worker',
    );
    expect(refusal(workerEnvSchema, { JOB_STALLED_CHECK_MS: '10' }).message).toContain('JOB_STALLED_CHECK_MS: must be at least 500 ms, got 10: each stall check');
    expect(refusal(workerEnvSchema, { VIRSH_TIMEOUT_MS: '50' }).message).toContain('VIRSH_TIMEOUT_MS: must be at least 1000 ms, got 50');
    expect(refusal(workerEnvSchema, { VIRSH_QUERY_TIMEOUT_MS: '50' }).message).toContain('VIRSH_QUERY_TIMEOUT_MS: must be at least 1000 ms');
    expect(refusal(workerEnvSchema, { HEARTBEAT_INTERVAL_MS: '10' }).message).toContain('HEARTBEAT_INTERVAL_MS: must be at least 100 ms');
    expect(refusal(workerEnvSchema, { INVENTORY_INTERVAL_MS: '10' }).message).toContain('INVENTORY_INTERVAL_MS: must be at least 1000 ms');
    expect(refusal(workerEnvSchema, { SHUTDOWN_GRACE_MS: '0' }).message).toContain('SHUTDOWN_GRACE_MS: must be at least 1 ms');
    expect(refusal(controlEnvSchema, { BOT_JOB_TIMEOUT_MS: '5' }).message).toContain('BOT_JOB_TIMEOUT_MS: must be at least 1000 ms');
  });

  it('keep their defaults when unset', () => {
    expect(parseEnv(workerEnvSchema, {})).toMatchObject({
      WORKER_CONCURRENCY: 4,
      VIRSH_TIMEOUT_MS: 300_000,
      VIRSH_QUERY_TIMEOUT_MS: 30_000,
      HEARTBEAT_INTERVAL_MS: 5_000,
      HEARTBEAT_TTL_MS: 15_000,
      SHUTDOWN_GRACE_MS: 60_000,
      JOB_LOCK_MS: 30_000,
      JOB_STALLED_CHECK_MS: 30_000,
    });
    expect(parseEnv(controlEnvSchema, {}).BOT_JOB_TIMEOUT_MS).toBe(1_800_000);
  });
});

describe('the worker\'s timings against each other', () => {
  it('want a heartbeat TTL of at least two intervals, naming both values', () => {
    for (const [interval, ttl] of [['5000', '5000'], ['5000', '3000'], ['5000', '9999']] as const) {
      expect(refusal(workerEnvSchema, { HEARTBEAT_INTERVAL_MS: interval, HEARTBEAT_TTL_MS: ttl }).message).toBe(
        `Invalid configuration: HEARTBEAT_TTL_MS (${ttl} ms) must be at least twice HEARTBEAT_INTERVAL_MS (${interval} ms): ` +
          'a host counts as offline once its last heartbeat is older than the TTL, so one late heartbeat would mark a live host offline',
      );
    }
    expect(parseEnv(workerEnvSchema, { HEARTBEAT_INTERVAL_MS: '5000', HEARTBEAT_TTL_MS: '10000' }).HEARTBEAT_TTL_MS).toBe(10_000);
  });

  it('check the TTL against the default interval too', () => {
    expect(refusal(workerEnvSchema, { HEARTBEAT_TTL_MS: '6000' }).message).toContain('HEARTBEAT_TTL_MS (6000 ms) must be at least twice HEARTBEAT_INTERVAL_MS (5000 ms)');
  });

  it('need no order between JOB_LOCK_MS and JOB_STALLED_CHECK_MS (a stall check takes only jobs whose lock expired)', () => {
    // BullMQ's own defaults are equal; the tests' workers check more often than their lock.
    expect(parseEnv(workerEnvSchema, { JOB_LOCK_MS: '30000', JOB_STALLED_CHECK_MS: '30000' })).toMatchObject({ JOB_LOCK_MS: 30_000 });
    expect(parseEnv(workerEnvSchema, { JOB_LOCK_MS: '2000', JOB_STALLED_CHECK_MS: '1000' })).toMatchObject({ JOB_STALLED_CHECK_MS: 1_000 });
    expect(parseEnv(workerEnvSchema, { JOB_LOCK_MS: '15000', JOB_STALLED_CHECK_MS: '60000' })).toMatchObject({ JOB_STALLED_CHECK_MS: 60_000 });
  });

  it('accept what the tests and the chaos runs give their workers', () => {
    const quick = { HEARTBEAT_INTERVAL_MS: '300', HEARTBEAT_TTL_MS: '1500', INVENTORY_INTERVAL_MS: '5000', JOB_LOCK_MS: '2000', JOB_STALLED_CHECK_MS: '1000', VIRSH_TIMEOUT_MS: '1500' };
    expect(() => parseEnv(workerEnvSchema, quick)).not.toThrow();
    expect(() => parseEnv(workerEnvSchema, { HEARTBEAT_INTERVAL_MS: '500', HEARTBEAT_TTL_MS: '5000', JOB_LOCK_MS: '15000', JOB_STALLED_CHECK_MS: '5000' })).not.toThrow();
  });
});

describe('the register command\'s subset of the bot schema', () => {
  it('names a missing DISCORD_APP_ID the same way', () => {
    const subset = botEnvSchema.pick({ DISCORD_TOKEN: true, DISCORD_APP_ID: true, DISCORD_GUILD_ID: true, DISCORD_API_URL: true });
    expect(refusal(subset, { DISCORD_TOKEN: 'token', DISCORD_GUILD_ID: BOT.DISCORD_GUILD_ID, DISCORD_API_URL: '' }).message).toContain('DISCORD_APP_ID is required');
  });
});
