import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MOVE_TARGETS_SCRIPT, moveTargetsArgs, type FleetTargetState } from '../../../shared/fleet.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../../helpers/redis.js';

/**
 * The one script that moves fleet targets, against a real Redis: every writer (a worker
 * starting or finishing a target, a Cancel, a host given up) goes through it, so a
 * settled target is never overwritten, whoever comes second.
 */
let redis: TestRedis;
let client: Redis;
let key: string;

beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis(redis.url);
});

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

async function targets(states: FleetTargetState[]): Promise<void> {
  key = `${uniquePrefix('moves')}:fleet:abcdef:targets`;
  await client.hset(key, Object.fromEntries(states.map((state, index) => [String(index), JSON.stringify(state)])));
}

async function move(state: FleetTargetState, indexes: number[]): Promise<string[]> {
  return (await client.eval(MOVE_TARGETS_SCRIPT, 1, key, ...moveTargetsArgs(state, indexes))) as string[];
}

async function stateOf(index: number): Promise<string> {
  return (JSON.parse((await client.hget(key, String(index)))!) as FleetTargetState).state;
}

describe('moving fleet targets', () => {
  it('cancels only the targets that have not started, and says what the others are', async () => {
    await targets([{ state: 'queued' }, { state: 'running', at: 1 }, { state: 'done', at: 2, durationMs: 5, note: null }]);
    expect(await move({ state: 'cancelled', at: 3 }, [0, 1, 2, 9])).toEqual(['ok', 'running', 'done', 'missing']);
    expect(await stateOf(0)).toBe('cancelled');
    expect(await stateOf(1)).toBe('running');
  });

  it('keeps a target given up with its host failed when its worker reports done afterwards', async () => {
    await targets([{ state: 'running', at: 1 }]);
    expect(await move({ state: 'failed', at: 2, code: 'HOST_OFFLINE', message: 'gone' }, [0])).toEqual(['ok']);
    expect(await move({ state: 'done', at: 3, durationMs: 5, note: null }, [0])).toEqual(['failed']);
    expect(await stateOf(0)).toBe('failed');
  });

  it('records done a target still queued when its job finishes: the record of it running was lost in a Redis failover', async () => {
    await targets([{ state: 'queued' }, { state: 'cancelled', at: 1 }]);
    expect(await move({ state: 'done', at: 2, durationMs: 5, note: null }, [0, 1])).toEqual(['ok', 'cancelled']);
    expect(await stateOf(0)).toBe('done');
  });

  it('refuses to start a cancelled target, and lets a running one start again after a crash', async () => {
    await targets([{ state: 'cancelled', at: 1 }, { state: 'running', at: 1 }]);
    expect(await move({ state: 'running', at: 2 }, [0, 1])).toEqual(['cancelled', 'ok']);
  });

  it('lets exactly one of a Cancel and a start win when they race', async () => {
    await targets(Array.from({ length: 50 }, () => ({ state: 'queued' as const })));
    const indexes = Array.from({ length: 50 }, (_, index) => index);
    const [cancel, ...starts] = await Promise.all([move({ state: 'cancelled', at: 1 }, indexes), ...indexes.map((index) => move({ state: 'running', at: 1 }, [index]))]);
    for (const index of indexes) {
      const cancelled = cancel![index] === 'ok';
      const started = starts[index]![0] === 'ok';
      expect(cancelled !== started).toBe(true);
    }
  });
});
